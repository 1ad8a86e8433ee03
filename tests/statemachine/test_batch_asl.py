"""The batch state machine's definition: every transition lands on a state that exists, and every
`${...}` the definition uses is given by the template's DefinitionSubstitutions (neither moto nor
cfn-lint checks these)."""
from __future__ import annotations

import json
import re

import pytest

from bbconnect_local.template import load_template


@pytest.fixture(scope="module")
def definition(repo_root):
    return json.loads((repo_root / "statemachine" / "batch.asl.json").read_text())


def _state_blocks(block):
    yield block
    for state in block["States"].values():
        if "ItemProcessor" in state:
            yield from _state_blocks(state["ItemProcessor"])
        if "Iterator" in state:
            yield from _state_blocks(state["Iterator"])
        for branch in state.get("Branches", []):
            yield from _state_blocks(branch)


def test_given_the_definition_when_following_every_transition_then_each_target_state_exists(definition):
    for block in _state_blocks(definition):
        names = set(block["States"])
        assert block["StartAt"] in names
        for name, state in block["States"].items():
            targets = [state.get("Next"), state.get("Default")]
            targets += [choice.get("Next") for choice in state.get("Choices", [])]
            targets += [catch.get("Next") for catch in state.get("Catch", [])]
            for target in filter(None, targets):
                assert target in names, f"{name} points to {target}, which is not a state of its block"
            if state["Type"] not in ("Choice", "Succeed", "Fail"):
                assert state.get("End") or state.get("Next"), f"{name} neither ends nor goes on"


def test_given_the_definition_when_substituted_then_every_placeholder_comes_from_the_template(repo_root):
    text = (repo_root / "statemachine" / "batch.asl.json").read_text()
    template = load_template(repo_root / "template.yaml")
    machine = template["Resources"]["BatchStateMachine"]["Properties"]
    used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
    assert used == set(machine["DefinitionSubstitutions"]), "placeholders and DefinitionSubstitutions differ"
    assert machine["DefinitionUri"] == "statemachine/batch.asl.json"


def test_given_the_chunk_processor_then_it_is_a_distributed_map_of_standard_children(definition):
    processor = definition["States"]["ProcessChunks"]["ItemProcessor"]["ProcessorConfig"]
    assert processor == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    send = definition["States"]["ProcessChunks"]["ItemProcessor"]["States"]["Send"]
    assert send["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"

"""A batch through the services in memory: the state machine's path (statemachine/batch.asl.json) for
one file, each task called as its state calls it, on the fakes of `tests.fakes`. For the decisions
that only need the steps in order; the state machine itself runs in tests/e2e."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bbconnect.service import keys
from bbconnect.service.fallback import fallback
from bbconnect.service.finalize import finalize
from bbconnect.service.ingest import ingest
from bbconnect.service.render import render
from bbconnect.service.results import await_result
from bbconnect.service.send import Sender
from bbconnect.service.subscriptions import check_subscriptions

from . import World

TAX_ROW = {
    "sender": "lv", "stream": "AANSLAG", "subject": "Aanslag gemeentelijke belastingen 2027",
    "text": "Geachte heer, mevrouw,\n\nHierbij uw aanslag.", "act_before": "2027-04-30",
    "data": {"tax_year": 2027, "dagtekening": "2027-02-26", "vervaldag": "2027-04-30",
             "lines": [{"code": "OZBE", "description": "Onroerende-zaakbelasting eigenaren", "period": "2027", "basis": "226000",
                        "amount": "192.55"}], "total": "192.55"},
    "address": {"name": "J. Jansen", "street": "Raadhuisplein", "house_number": "1", "postcode": "2260 BA",
                "city": "Leidschendam"},
}

_POOL: list[str] = []


def bsn(seed: int) -> str:
    """The seed-th BSN passing the 11-test in 999800000-: test numbers, apart from the e2e tests' own."""
    if not _POOL:
        for candidate in range(999_800_000, 999_810_000):
            digits = [int(c) for c in str(candidate)]
            if (sum(d * w for d, w in zip(digits[:8], range(9, 1, -1))) - digits[8]) % 11 == 0:
                _POOL.append(str(candidate))
    return _POOL[seed]


def rows(letters: list[tuple[str, str]], **overrides: Any) -> list[dict[str, Any]]:
    """Tax letters from (reference, bsn) pairs, as a batch file's rows."""
    return [{**TAX_ROW, "reference": reference, "bsn": number,
             "data": {**TAX_ROW["data"], "assessment_number": reference[-10:].rjust(10, "0")}, **overrides}
            for reference, number in letters]


def drop(world: World, tenant: str, name: str, content: bytes | list[dict[str, Any]],
         attachments: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Put a batch file (and its attachments) in the inbox: the execution's input."""
    data = content if isinstance(content, bytes) else "".join(json.dumps(row) + "\n" for row in content).encode()
    key = f"{tenant}/{name}" if tenant else name
    world.inbox.put(key, data)
    for attachment, pdf in (attachments or {}).items():
        world.inbox.put(keys.attachment(key, attachment), pdf)
    return {"bucket": "inbox", "key": key, "batch_id": f"{(tenant or 'x')}-{abs(hash((key, data))):x}"[:60], "etag": "",
            "size": len(data)}


def run_chunk(world: World, batch: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """One chunk's child execution: CheckSubscriptions, Render, Send, AwaitResult, Fallback."""
    state: dict[str, Any] = {"tenant": batch["tenant"], "batch_id": batch["batch_id"], "timing": batch["timing"], "chunk": item}
    state["subscriptions"] = {"routes": check_subscriptions(state, world.services, sleep=lambda seconds: None)}
    if state["subscriptions"]["routes"]["waiting"]:
        raise AssertionError("the chunk waits for its subscription check: not a case for the in-memory run")
    state["render"] = {"rendered": render(state, world.services)}
    if state["render"]["rendered"]["digital"] > 0:
        sender = Sender(world.services)
        sender.handle({"tenant": batch["tenant"], "batch_id": batch["batch_id"], "chunk": item, "task_token": f"token-{item['index']}"})
        told = [answer for answer in world.executions.told if answer["token"] == f"token-{item['index']}"]
        state["send"] = {k: v for k, v in told[-1].items() if k != "token"}
        if state["send"]["sent"]:
            _deliver_result(world, item["globe_batch_id"])
            result = await_result(state, world.services)
            state["result"] = {k: result[k] for k in ("status", "checked_at", "next_check_seconds")}
    return fallback(state, world.services)


def _deliver_result(world: World, globe_id: str) -> None:
    message = next(m for m in reversed(world.logius.posted) if m.conversation_id == globe_id)
    key = keys.result(globe_id, f"result-{globe_id}")
    world.work.put(key, world.logius.result_for(message), "application/xml")
    world.batches.record_result(globe_id, key, f"result-{globe_id}")


def run_batch(world: World, execution_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The batch execution: Ingest, its chunks, Finalize. Returns Finalize's answer and the report."""
    batch = ingest(execution_input, world.services)
    if batch["chunk_count"] > 0:
        for item in world.work.get_json(batch["manifest"]["key"]):
            run_chunk(world, batch, item)
    answer = finalize(batch, world.services)
    report = world.outbox.get_json_or_none(answer["report"])
    return answer, report


def fixture_path(name: str) -> Path:
    return Path(__file__).resolve().parent / name

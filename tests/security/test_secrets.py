"""Secrets only from Secrets Manager: the template passes references, never secret material; in the
Lambda runtime (and in the local run's functions) a `file:` reference is refused; and the repository
holds no private key, password or access key (the test PKI is generated at run time)."""
from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bbconnect import runtime
from bbconnect.adapters import transport
from bbconnect.adapters.references import ReferenceError_, read_reference
from bbconnect.adapters.tenant_configs import TenantConfigStore
from bbconnect.runtime import file_references_allowed
from bbconnect.tenants import TenantConfigError
from bbconnect_local.template import load_template

# Parameters and variables whose name says they point at secret material.
_SECRETISH_NAME = re.compile(r"(key|secret|certificate|cert|password|passwd|token|credential|ca_?bundle)", re.IGNORECASE)
_SECRET_MATERIAL = [
    re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # an AWS access key id
    re.compile(r"(?i)(password|passwd|secret|token)\s*[=:]\s*\S"),
]
_REFERENCE = re.compile(r"secretsmanager:[A-Za-z0-9/_+=.@-]{1,512}")


@pytest.fixture(scope="module")
def template(repo_root) -> dict:
    return load_template(repo_root / "template.yaml")


def _template_findings(template: dict) -> list[str]:
    """Secret material (or a secret-looking value that is not a reference) passed to a function."""
    findings = []
    parameters = template.get("Parameters") or {}
    for name, spec in parameters.items():
        default = str(spec.get("Default", ""))
        if any(p.search(default) for p in _SECRET_MATERIAL):
            findings.append(f"parameter {name}: its default is secret material")
        if _SECRETISH_NAME.search(name) and not name.endswith("Prefix") and default and not _REFERENCE.fullmatch(default):
            findings.append(f"parameter {name}: default {default!r} is not a secretsmanager: reference")
    sources = [("Globals", ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {})]
    sources += [(name, (r.get("Properties") or {}).get("Environment") or {}) for name, r in template["Resources"].items()
                if r["Type"] == "AWS::Serverless::Function"]
    for owner, environment in sources:
        for variable, value in (environment.get("Variables") or {}).items():
            if variable.startswith(("AWS_LAMBDA_", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT")):
                findings.append(f"{owner}: sets {variable}")
            if isinstance(value, dict):
                # A parameter may be passed only when it is a reference (its default says what it holds).
                (kind, target), = value.items()
                if kind == "Ref" and target in parameters and _SECRETISH_NAME.search(target):
                    default = str(parameters[target].get("Default", ""))
                    if default and not _REFERENCE.fullmatch(default):
                        findings.append(f"{owner}: {variable} passes parameter {target}, which is no reference")
                continue
            text = str(value)
            if any(p.search(text) for p in _SECRET_MATERIAL):
                findings.append(f"{owner}: {variable} is secret material")
            elif _SECRETISH_NAME.search(variable) and not _REFERENCE.fullmatch(text):
                findings.append(f"{owner}: {variable}={text!r} is not a secretsmanager: reference")
    return findings


def test_given_the_template_then_no_function_gets_secret_material_in_its_environment_or_parameters(template, repo_root):
    # Given the template's parameters and every function's environment
    # Then each secret is passed as a secretsmanager: reference, never as material, and no function
    # pretends the Lambda runtime's own variables
    assert _template_findings(template) == []
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["LOGIUS_CA_BUNDLE"] == {"Ref": "LogiusCaBundle"}
    assert template["Parameters"]["LogiusCaBundle"]["Default"].startswith("secretsmanager:")
    assert template["Resources"]["FallbackFunction"]["Properties"]["Environment"]["Variables"]["PROOF_SIGNING_KEY"] == {"Ref": "ProofSigningKey"}


@pytest.mark.parametrize("where, value, expected", [
    ("global", "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n", "secret material"),
    ("global", "AKIAABCDEFGHIJKLMNOP", "secret material"),
    ("function", "file:/var/task/client.pem", "not a secretsmanager: reference"),
    ("parameter", "-----BEGIN CERTIFICATE-----", "secret material"),
])
def test_given_secret_material_in_the_template_then_the_scan_finds_it(template, where, value, expected):
    # The scan above can fail: the template with secret material put where a reference belongs
    doctored = copy.deepcopy(template)
    if where == "global":
        doctored["Globals"]["Function"]["Environment"]["Variables"]["DB_PASSWORD_VALUE"] = value
    elif where == "function":
        doctored["Resources"]["SendFunction"]["Properties"]["Environment"]["Variables"]["CLIENT_CERTIFICATE"] = value
    else:
        doctored["Parameters"]["LogiusCaBundle"]["Default"] = value
    findings = _template_findings(doctored)
    assert any(expected in finding for finding in findings), findings


def test_given_a_function_that_sets_the_runtimes_variables_then_the_scan_finds_it(template):
    doctored = copy.deepcopy(template)
    doctored["Resources"]["SendFunction"]["Properties"]["Environment"]["Variables"]["AWS_LAMBDA_FUNCTION_NAME"] = "x"
    assert _template_findings(doctored) == ["SendFunction: sets AWS_LAMBDA_FUNCTION_NAME"]


# ---------------------------------------------------------------------- file: references
@pytest.fixture
def lambda_runtime(monkeypatch):
    """This process as the Lambda runtime sees it (the variables Lambda always sets)."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "bbconnect-SendFunction-abc")
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.13")


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "client.pem"
    path.write_bytes(b"not really a key")
    return path


def test_given_the_lambda_runtime_when_a_file_reference_is_read_then_it_is_refused(lambda_runtime, secret_file):
    assert not file_references_allowed()
    with pytest.raises(ReferenceError_, match="refused in the Lambda runtime"):
        read_reference(f"file:{secret_file}")
    # A path that does not exist gets the same refusal: nothing is looked at
    with pytest.raises(ReferenceError_, match="refused in the Lambda runtime"):
        read_reference("file:/proc/self/environ")


def test_given_the_lambda_runtime_when_a_secretsmanager_reference_is_read_then_it_comes_from_secrets_manager(lambda_runtime):
    asked = []

    class Secrets:
        def get_secret_value(self, SecretId):
            asked.append(SecretId)
            return {"SecretString": "pem"}

    assert read_reference("secretsmanager:bbconnect/gemeente-lv/lv-logius", lambda: Secrets()) == b"pem"
    assert asked == ["bbconnect/gemeente-lv/lv-logius"]


def test_given_the_lambda_runtime_when_the_transport_is_given_file_references_then_it_makes_no_context(lambda_runtime, secret_file):
    with pytest.raises(ReferenceError_, match="refused in the Lambda runtime"):
        transport.tls_context(f"file:{secret_file}", f"file:{secret_file}.ca")


def test_given_the_lambda_runtime_when_a_connection_names_a_file_cpa_then_it_is_refused(lambda_runtime, repo_root, secret_file):
    store = TenantConfigStore(directory=str(repo_root / "config" / "tenants"))
    connection = store.get("gemeente-lv").connections["lv-logius"].model_copy(update={"cpa": f"file:{secret_file}"})
    with pytest.raises(TenantConfigError, match="refused in the Lambda runtime"):
        store.cpa("gemeente-lv", connection)


def test_given_a_function_of_the_local_run_when_a_file_reference_is_read_then_it_is_refused_as_on_aws(secret_file):
    # The local run gives each function the runtime's variables in its container (not the process's)
    runtime.set_container_environment("SendFunction", {"AWS_LAMBDA_FUNCTION_NAME": "bbconnect-local-SendFunction"})
    try:
        with runtime.running_in("SendFunction"):
            with pytest.raises(ReferenceError_, match="refused in the Lambda runtime"):
                read_reference(f"file:{secret_file}")
        assert read_reference(f"file:{secret_file}") == b"not really a key"  # the harness, outside any function
    finally:
        runtime.reset()


def test_given_no_lambda_runtime_then_file_references_are_read(monkeypatch, secret_file):
    # Tests and the CLI run outside Lambda: files are what they have.
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT"):
        monkeypatch.delenv(name, raising=False)
    assert read_reference(f"file:{secret_file}") == b"not really a key"


# ---------------------------------------------------------------------- the repository
_PEM_PRIVATE = re.compile(rb"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----(.*?)-----END \1-----", re.DOTALL)
_PRIVATE_MARKER = re.compile(rb"BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY")
_PASSWORD_LITERAL = re.compile(rb"""(?i)\b(?:password|passwd|pwd)\s*=\s*(?:[rbuf]{0,2})["'][^"']+["']""")
_ACCESS_KEY = re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
# Files that hold a private-key marker on purpose, and why; the block must still not load as a key.
_KEY_MARKER_ALLOWED = {
    "tests/domain/test_proof.py": "a deliberately broken key (base64 of 'secret') to test the signing error",
}


def _repo_findings(files: dict[str, bytes]) -> list[str]:
    findings = []
    for path, data in files.items():
        for match in _PEM_PRIVATE.finditer(data):
            try:
                serialization.load_pem_private_key(match.group(0), password=None)
                findings.append(f"{path}: a private key")
                continue
            except (ValueError, TypeError):
                pass
            if path not in _KEY_MARKER_ALLOWED:
                findings.append(f"{path}: a {match.group(1).decode()} block")
        if _PRIVATE_MARKER.search(data) and not _PEM_PRIVATE.search(data) and path not in _KEY_MARKER_ALLOWED:
            findings.append(f"{path}: a private-key marker")
        if _PASSWORD_LITERAL.search(data):
            findings.append(f"{path}: a password literal")
        if _ACCESS_KEY.search(data):
            findings.append(f"{path}: an AWS access key id")
    return findings


@pytest.fixture(scope="module")
def tracked_files(repo_root) -> dict[str, bytes]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo_root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    names = [name for name in listed.decode().split("\0") if name]
    return {name: (repo_root / name).read_bytes() for name in names if (repo_root / name).is_file()}


def test_given_the_tracked_files_then_none_holds_a_private_key_password_or_access_key(tracked_files):
    # Given every file git tracks (the test PKI writes its keys at run time, into temporary folders)
    assert len(tracked_files) > 100 and "local/bbconnect_local/pki.py" in tracked_files
    # Then none holds a private key, a password literal or an AWS access key id (this file aside: it
    # holds the markers it looks for, and the examples that show the scan can fail)
    others = {path: data for path, data in tracked_files.items() if path != "tests/security/test_secrets.py"}
    assert _repo_findings(others) == []


def test_given_a_real_key_or_a_password_in_a_file_then_the_repository_scan_finds_it():
    # The scan can fail: a freshly made key (even in an allowed file), a password, an access key
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    assert _repo_findings({"tests/domain/test_proof.py": b"KEY = " + key}) == ["tests/domain/test_proof.py: a private key"]
    assert _repo_findings({"a.py": b'connect(user="x", password="hunter2")'}) == ["a.py: a password literal"]
    assert _repo_findings({"a.py": b"load_pem_private_key(data, password=None)"}) == []
    assert _repo_findings({"b.txt": b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE"}) == ["b.txt: an AWS access key id"]
    assert _repo_findings({"c.pem": b"-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n"}) == [
        "c.pem: a RSA PRIVATE KEY block"]


def test_given_a_signing_identity_read_once_when_the_local_run_starts_anew_with_new_certificates_then_the_new_one_is_read(tmp_path):
    # Given a connection's certificate and key, read (and kept) by a function's container
    first, second = tmp_path / "first.pem", tmp_path / "second.pem"
    for path, name in ((first, "ONE"), (second, "TWO")):
        path.write_bytes(f"-----BEGIN PRIVATE KEY-----\n{name}\n-----END PRIVATE KEY-----\n"
                         f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n".encode())
    reference = f"file:{tmp_path / 'current.pem'}"
    (tmp_path / "current.pem").write_bytes(first.read_bytes())
    with runtime.running_in("SendFunction"):
        assert b"ONE" in transport.signing_identity(reference)[1]
    # When the local run starts again (new certificates under the same reference) and resets the containers
    (tmp_path / "current.pem").write_bytes(second.read_bytes())
    transport.reset()
    # Then the function signs with the new one, not the one an earlier run left in memory
    with runtime.running_in("SendFunction"):
        assert b"TWO" in transport.signing_identity(reference)[1]
    # And another container never shares the first's cache
    with runtime.running_in("RefreshSubscriptionsFunction"):
        assert b"TWO" in transport.signing_identity(reference)[1]

"""Tenant isolation at the domain level: a file under tenant A's prefix is validated against A's
configuration only, so it can name neither another tenant's sender (by id or by OIN) nor another
connection; and a tenant configuration can name only secrets in its own folder.

The end-to-end counterpart (a file dropped under gemeente-lv/ in the local pipeline, and what reached
the Logius simulator) is tests/e2e/test_tenant_isolation.py.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bbconnect import letters as L
from bbconnect.adapters.tenant_configs import TenantConfigStore
from bbconnect.batchfile import RawRow
from bbconnect.letters import Letter, Rejection
from bbconnect.tenants import TenantConfigError, load_tenant_config
from bbconnect.validation import validate_row

NOW = datetime(2027, 2, 26, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
TENANT_A = "gemeente-lv"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "tenants"


def _shipped_configs() -> dict[str, dict]:
    """Every shipped tenant configuration, as JSON documents."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(CONFIG_DIR.glob("*.json"))}


@pytest.fixture(scope="module")
def configs() -> dict[str, dict]:
    return _shipped_configs()


@pytest.fixture(scope="module")
def tenant_a(configs):
    return load_tenant_config(json.dumps(configs[TENANT_A]).encode(), source=f"{TENANT_A}.json")


@pytest.fixture(scope="module")
def sample_row(repo_root) -> dict:
    """The first row of the sample tax run for tenant A (sender `lv`)."""
    sample = repo_root / "events" / "batches" / "gemeente-lv" / "aanslagen-2027.jsonl"
    return json.loads(sample.read_text(encoding="utf-8").splitlines()[0])


def _other_tenants_senders(configs) -> list[tuple[str, str, str]]:
    """(tenant, what, value) for every organisation id and OIN of every other shipped tenant."""
    own = configs[TENANT_A]["organisations"]
    own_ids, own_oins = set(own), {org["oin"] for org in own.values()}
    found = []
    for tenant, config in configs.items():
        if tenant == TENANT_A:
            continue
        for org_id, org in config["organisations"].items():
            if org_id not in own_ids:
                found.append((tenant, "id", org_id))
            if org["oin"] not in own_oins:
                found.append((tenant, "oin", org["oin"]))
        for connection in config.get("connections", {}).values():
            if connection["oin"] not in own_oins:
                found.append((tenant, "connection oin", connection["oin"]))
    return found


def test_given_a_row_of_tenant_a_naming_its_own_sender_then_it_is_accepted_and_sends_over_as_own_connection(
        tenant_a, sample_row):
    # Given the sample row as it is (the control for the rejections below)
    # When it is validated against tenant A's configuration
    letter = validate_row(RawRow(line=1, fields=copy.deepcopy(sample_row)), tenant_a, now=NOW)
    # Then it is a letter of A's organisation, over A's connection, with A's OIN
    assert isinstance(letter, Letter), letter
    connection = tenant_a.connection_for(letter.sender)
    assert connection is not None and connection.id == "lv-logius"
    assert tenant_a.organisations[letter.sender].oin == connection.oin == "00000001899410741000"


def test_given_the_shipped_tenants_then_another_tenants_senders_exist_to_try(configs):
    # Guard: the parametrised checks below must have other tenants' senders to try.
    senders = _other_tenants_senders(configs)
    assert len({tenant for tenant, _, _ in senders}) >= 4
    assert {what for _, what, _ in senders} == {"id", "oin", "connection oin"}


@pytest.mark.parametrize("tenant, what, value", _other_tenants_senders(_shipped_configs()))
def test_given_a_row_under_tenant_a_naming_another_tenants_sender_when_validated_then_it_is_rejected_unknown_sender(
        tenant_a, sample_row, tenant, what, value):
    # Given the sample row of tenant A with another tenant's organisation id or OIN as its sender
    row = {**copy.deepcopy(sample_row), "sender": value}
    # When it is validated against tenant A's configuration
    result = validate_row(RawRow(line=7, fields=row), tenant_a, now=NOW)
    # Then it is rejected as UNKNOWN_SENDER, and an OIN is not echoed in the reason
    assert isinstance(result, Rejection), f"{tenant}'s {what} {value} was accepted under {TENANT_A}"
    assert result.code == L.UNKNOWN_SENDER
    assert result.line == 7 and result.reference == sample_row["reference"]
    if what != "id":
        assert value not in result.reason


@pytest.mark.parametrize("field, value", [
    ("oin", "00000001856629388000"),
    ("sender_oin", "00000001856629388000"),
    ("connection", "tilburg-belastingen"),
    ("certificate", "secretsmanager:bbconnect/gemeente-tilburg/tilburg-belastingen"),
    ("cpa", "CPA-GLOBE-00000001856629388000-01"),
    ("tenant", "gemeente-tilburg"),
])
def test_given_a_row_that_tries_to_choose_its_own_oin_connection_or_tenant_when_validated_then_it_is_rejected(
        tenant_a, sample_row, field, value):
    # Given tenant A's row with a field that would pick another identity or route
    row = {**copy.deepcopy(sample_row), field: value}
    # When it is validated / Then the row is rejected: only the tenant configuration decides these
    result = validate_row(RawRow(line=3, fields=row), tenant_a, now=NOW)
    assert isinstance(result, Rejection) and result.code == L.UNKNOWN_FIELD, result


# ---------------------------------------------------------------------- secret references
def _with_connection(configs, **changes) -> bytes:
    document = copy.deepcopy(configs[TENANT_A])
    document["connections"]["lv-logius"].update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize("reference", [
    "secretsmanager:bbconnect/gemeente-lv/lv-logius",
    "secretsmanager:prod/bbconnect/gemeente-lv/lv-logius.pem",
])
def test_given_a_connection_naming_a_secret_in_its_own_tenants_folder_then_the_configuration_loads(configs, reference):
    config = load_tenant_config(_with_connection(configs, certificate=reference), source="a.json")
    assert config.connections["lv-logius"].certificate == reference


@pytest.mark.parametrize("reference", [
    "secretsmanager:bbconnect/gemeente-tilburg/tilburg-belastingen",  # another tenant's client certificate
    "secretsmanager:bbconnect/gemeente-lv-async/lv-logius",  # a tenant whose id starts with A's
    "secretsmanager:bbconnect/gemeente-tilburg/gemeente-lv",  # A's id as the secret's name, not its folder
    "secretsmanager:bbconnect/proof-signing",  # a shared secret of the deployment
    "secretsmanager:bbconnect/logius-ca-bundle",
    "secretsmanager:gemeente-lv/lv-logius",  # no prefix: outside the functions' secret folder
    "secretsmanager:bbconnect//gemeente-lv/x/../../gemeente-tilburg/tilburg-belastingen",
])
def test_given_a_connection_naming_a_secret_outside_its_tenants_folder_then_the_configuration_is_refused(configs, reference):
    # Given tenant A's connection pointed at a secret that is not A's
    # When the configuration is loaded / Then it is refused, naming the field
    with pytest.raises(TenantConfigError) as refused:
        load_tenant_config(_with_connection(configs, certificate=reference), source="a.json")
    assert "connections.lv-logius.certificate" in str(refused.value) and "own folder" in str(refused.value)


@pytest.mark.parametrize("field", ["certificate", "ca_bundle", "authorization"])
def test_given_an_ebms_adapter_naming_another_tenants_secret_then_the_configuration_is_refused(configs, field):
    adapter = {"base_url": "https://adapter.gemeente-lv.example/service/rest/v19/ebms",
               field: "secretsmanager:bbconnect/gemeente-tilburg/adapter-token"}
    with pytest.raises(TenantConfigError) as refused:
        load_tenant_config(_with_connection(configs, adapter=adapter), source="a.json")
    assert f"connections.lv-logius.adapter.{field}" in str(refused.value)
    # And the same adapter with A's own secret loads
    adapter[field] = "secretsmanager:bbconnect/gemeente-lv/adapter-token"
    assert load_tenant_config(_with_connection(configs, adapter=adapter), source="a.json").connections["lv-logius"].adapter


def test_given_a_configuration_stored_under_tenant_a_that_declares_tenant_b_then_the_store_refuses_it(configs, tmp_path):
    # Given tenant B's configuration copied into tenant A's file (it would send with B's identities)
    (tmp_path / f"{TENANT_A}.json").write_text(json.dumps(configs["gemeente-tilburg"]), encoding="utf-8")
    # When tenant A's configuration is asked for / Then it is refused
    with pytest.raises(TenantConfigError, match="declares tenant 'gemeente-tilburg'"):
        TenantConfigStore(directory=str(tmp_path)).get(TENANT_A)

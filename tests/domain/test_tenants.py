"""Tenant configuration: the examples load, the cross-checks hold, errors are readable."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from bbconnect.tenants import (
    DEFAULT_LOGIUS_OIN,
    PostalAddress,
    TenantConfig,
    TenantConfigError,
    load_tenant_config,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "tenants"
EXAMPLES = sorted(CONFIG_DIR.glob("*.json"))


def _load(name: str) -> TenantConfig:
    path = CONFIG_DIR / name
    return load_tenant_config(path.read_bytes(), source=str(path))


def _base() -> dict:
    return json.loads((CONFIG_DIR / "gemeente-lv.json").read_text(encoding="utf-8"))


def _raw(document: dict) -> bytes:
    return json.dumps(document).encode("utf-8")


def _problems(document: dict) -> str:
    with pytest.raises(TenantConfigError) as caught:
        load_tenant_config(_raw(document), source="tenants/test.json")
    return str(caught.value)


def test_the_expected_examples_exist():
    names = {path.name for path in EXAMPLES}
    assert {"gemeente-lv.json", "gemeente-tilburg.json", "cgm.json", "etten-leur.json", "saas-vendor.json"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path: Path):
    config = load_tenant_config(path.read_bytes(), source=str(path))
    assert config.tenant == path.stem
    for org in config.organisations.values():
        assert len(org.oin) == 20 and org.oin.isalnum()
        assert " " not in org.iban
    for connection in config.connections.values():
        assert connection.certificate.startswith("file:")
        assert connection.logius_oin == DEFAULT_LOGIUS_OIN


def test_demo_tenant_lv():
    config = _load("gemeente-lv.json")
    assert list(config.streams) == ["AANSLAG"]
    stream = config.streams["AANSLAG"]
    assert (stream.template, stream.policy, stream.bsn_lawful, stream.active) == ("aanslag", "digital_first", True, True)
    assert config.connection_for("lv").id == "lv-logius"
    assert config.may_send("lv", "AANSLAG")
    assert not config.may_send("lv", "NOPE")
    assert not config.may_send("nobody", "AANSLAG")
    lv = config.organisations["lv"]
    assert lv.iban == "NL86BNGH9963334018"  # written with spaces in the file, stored compact
    assert lv.iban_formatted == "NL86 BNGH 9963 3340 18"
    assert lv.address.po_box == "1005" and lv.address.postcode == "2260 BA"
    assert config.retention_days == 90


def test_tilburg_two_connections_for_two_streams():
    config = _load("gemeente-tilburg.json")
    assert len(config.connections) == 2
    taxes, civil = config.connection_for("tilburg-belastingen"), config.connection_for("tilburg-burgerzaken")
    assert taxes is not None and civil is not None and taxes.id != civil.id
    assert config.may_send("tilburg-belastingen", "BELAST")
    assert not config.may_send("tilburg-belastingen", "BURGZAKN")
    assert config.may_send("tilburg-burgerzaken", "BURGZAKN")
    assert not config.may_send("tilburg-burgerzaken", "BELAST")
    assert config.organisations["tilburg-belastingen"].address.postcode == "5000 LE"  # "5000LE" in the file


def test_cgm_three_municipalities_over_two_adapters():
    config = _load("cgm.json")
    assert len(config.organisations) == 3 and len(config.connections) == 2
    used = {config.connection_for(org).id for org in config.organisations}
    assert used == {"cgm-adapter-1", "cgm-adapter-2"}
    assert all(config.may_send(org, "AANSLAG") for org in config.organisations)  # empty senders = all
    assert not config.may_send("mill-en-sint-hubert", "VERGUNN")


def test_etten_leur_sends_for_tholen():
    config = _load("etten-leur.json")
    assert config.connection_for("tholen") is config.connection_for("etten-leur")
    assert config.may_send("tholen", "AANSLAG")
    assert not config.may_send("tholen", "PARKEER")
    assert config.streams["PARKEER"].subject_for("Uw vergunning") == "Parkeren: Uw vergunning"


def test_saas_vendor_has_every_policy():
    config = _load("saas-vendor.json")
    assert {s.policy for s in config.streams.values()} == {"digital_first", "digital_and_paper", "paper_only"}
    assert config.may_send("waterschap-lage-landen", "WSBELAST")
    assert not config.may_send("duinwijk", "WSBELAST")
    assert not config.streams["KWIJTSCH"].active
    assert not config.streams["NIEUWSBR"].bsn_lawful


def test_unknown_sender_reference_fails_readably():
    document = _base()
    document["streams"]["AANSLAG"]["senders"] = ["lv", "nobody"]
    message = _problems(document)
    assert message.startswith("tenants/test.json: invalid tenant configuration")
    assert "streams.AANSLAG.senders: unknown organisation 'nobody'" in message


def test_unknown_sender_on_a_connection():
    document = _base()
    document["connections"]["lv-logius"]["senders"] = ["ghost"]
    assert "connections.lv-logius.senders: unknown organisation 'ghost'" in _problems(document)


def test_an_organisation_is_on_at_most_one_connection():
    document = _base()
    second = copy.deepcopy(document["connections"]["lv-logius"])
    second["id"] = "lv-second"
    document["connections"]["lv-second"] = second
    message = _problems(document)
    assert "already on connection 'lv-logius'" in message


def test_ids_must_match_keys():
    document = _base()
    document["organisations"]["lv"]["id"] = "other"
    document["streams"]["AANSLAG"]["code"] = "OTHER"
    message = _problems(document)
    assert "organisations.lv.id: is 'other', must equal its key 'lv'" in message
    assert "streams.AANSLAG.code" in message


def test_the_seeds_iban_fails_mod_97():
    # NL57BNGH0295071076 as printed in the Logius training does not pass ISO 13616 mod-97.
    document = _base()
    document["organisations"]["lv"]["iban"] = "NL57BNGH0295071076"
    message = _problems(document)
    assert "organisations.lv.iban: not a valid IBAN" in message


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("organisations", "lv", "oin"), "0000000100123456700", "organisations.lv.oin"),
        (("organisations", "lv", "oin"), "00000001001234567abc", "organisations.lv.oin"),
        (("organisations", "lv", "address", "postcode"), "0123 AB", "organisations.lv.address"),
        (("organisations", "lv", "logo"), "/etc/logo.png", "organisations.lv.logo"),
        (("organisations", "lv", "logo"), "../logo.png", "organisations.lv.logo"),
        (("streams", "AANSLAG", "policy"), "email", "streams.AANSLAG.policy"),
        (("streams", "AANSLAG", "template"), "fancy", "streams.AANSLAG.template"),
        (("connections", "lv-logius", "endpoint"), "http://ebms.logius.example/", "connections.lv-logius.endpoint"),
        (("connections", "lv-logius", "wus_endpoint"), "not a url", "connections.lv-logius.wus_endpoint"),
        (("connections", "lv-logius", "certificate"), "/path/cert.pem", "connections.lv-logius.certificate"),
        (("connections", "lv-logius", "max_send_rate"), 0, "connections.lv-logius.max_send_rate"),
        (("tenant",), "Gemeente_LV", "tenant"),
        (("version",), 0, "version"),
    ],
)
def test_field_errors_name_the_field(path, value, fragment):
    document = _base()
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert f"{fragment}" in _problems(document)


def test_stream_code_is_at_most_eight_characters():
    document = _base()
    stream = document["streams"].pop("AANSLAG")
    stream["code"] = "BURGZAKEN"
    document["streams"]["BURGZAKEN"] = stream
    assert "streams.BURGZAKEN.code" in _problems(document)


def test_unknown_keys_are_forbidden():
    document = _base()
    document["organisations"]["lv"]["colour"] = "green"
    assert "organisations.lv.colour: Extra inputs are not permitted" in _problems(document)


def test_secretsmanager_certificate_reference_is_fine():
    document = _base()
    document["connections"]["lv-logius"]["certificate"] = "secretsmanager:bbconnect/gemeente-lv/pkio"
    config = load_tenant_config(_raw(document), source="x")
    assert config.connections["lv-logius"].certificate.startswith("secretsmanager:")


def test_not_json_duplicate_keys_and_not_utf8():
    with pytest.raises(TenantConfigError, match=r"(?s)x\.json: .*not valid JSON"):
        load_tenant_config(b"{", source="x.json")
    with pytest.raises(TenantConfigError, match="duplicate key 'tenant'"):
        load_tenant_config(b'{"tenant": "a1", "tenant": "b2"}', source="x.json")
    with pytest.raises(TenantConfigError, match="not UTF-8"):
        load_tenant_config(b'{"name": "\xff"}', source="x.json")
    with pytest.raises(TenantConfigError, match="must be a JSON object"):
        load_tenant_config(b"[]", source="x.json")


def test_utf8_bom_is_accepted():
    config = load_tenant_config(b"\xef\xbb\xbf" + _raw(_base()), source="x")
    assert config.tenant == "gemeente-lv"


def test_config_is_frozen():
    config = _load("gemeente-lv.json")
    with pytest.raises(ValidationError):
        config.name = "other"  # type: ignore[misc]


def test_postcode_is_normalised():
    address = PostalAddress(street="Dorpsstraat", house_number="1", postcode=" 1234ab ", city="Ergens")
    assert address.postcode == "1234 AB"
    foreign = PostalAddress(street="Rue", house_number="2", postcode="B-1000", city="Bruxelles", country="BE")
    assert foreign.postcode == "B-1000"


def test_paper_only_tenant_without_connections_is_fine():
    document = _base()
    document["connections"] = {}
    document["streams"]["AANSLAG"]["policy"] = "paper_only"
    config = load_tenant_config(_raw(document), source="x")
    assert config.connection_for("lv") is None


def test_error_with_a_plain_message():
    error = TenantConfigError("x.json: declares tenant 'a', but is stored as 'b'")
    assert str(error) == "x.json: declares tenant 'a', but is stored as 'b'"
    assert error.source is None and error.problems == [str(error)]
    structured = TenantConfigError("x.json", ["tenant: bad"])
    assert structured.source == "x.json" and structured.problems == ["tenant: bad"]


# ---------------------------------------------------------------------- the connections' CPAs
def _lv_config():
    from bbconnect.tenants import load_tenant_config

    return load_tenant_config((CONFIG_DIR / "gemeente-lv.json").read_bytes(), source="gemeente-lv.json")


def _lv_cpa(**replacements: bytes) -> bytes:
    xml = (CONFIG_DIR.parent / "cpa" / "gemeente-lv.xml").read_bytes()
    for old, new in replacements.items():
        xml = xml.replace(old.encode(), new)
    return xml


def test_given_the_demo_tenants_cpa_when_checked_then_it_is_usable():
    from bbconnect.tenants import cpa_problems

    assert cpa_problems(_lv_config(), lambda connection: _lv_cpa()) == []


@pytest.mark.parametrize(("replacements", "fragment"), [
    ({"</tns:ebXMLReceiverBinding>": b"<tns:ReceiverDigitalEnvelope><tns:DigitalEnvelopeProtocol tns:version=\"2.0\">XMLENC"
      b"</tns:DigitalEnvelopeProtocol><tns:EncryptionAlgorithm>http://www.w3.org/2009/xmlenc11#aes256-gcm"
      b"</tns:EncryptionAlgorithm></tns:ReceiverDigitalEnvelope></tns:ebXMLReceiverBinding>"},
     "asks for encryption (party 'Gemeente Leidschendam-Voorburg' DocExchange 'SR_docExchange_osb-rm' has a "
     "ReceiverDigitalEnvelope"),
    ({'tns:isConfidential="transient"': b'tns:isConfidential="transient-and-persistent"'},
     "isConfidential='transient-and-persistent'"),
    ({"CPA-GLOBE-00000001899410741000-01": b"CPA-OTHER"}, "the CPA's cpaid is 'CPA-OTHER'"),
    ({"<tns:Start>": b"<tns:Begin>"}, "CPA"),
])
def test_given_a_cpa_bbconnect_cannot_honour_when_the_configuration_is_loaded_then_it_is_refused_naming_why(
        replacements, fragment):
    from bbconnect.tenants import cpa_problems

    problems = cpa_problems(_lv_config(), lambda connection: _lv_cpa(**replacements))

    assert problems and all(p.startswith("connections.lv-logius.cpa: ") for p in problems)
    assert any(fragment in p for p in problems), problems
    if "encryption" in fragment or "isConfidential" in fragment:
        assert any("will not send them in clear" in p and "osb-rm, osb-rm-s or osb-be" in p for p in problems)


def test_given_a_tenant_whose_cpa_asks_for_encryption_when_the_store_loads_it_then_loading_fails_with_the_reason(tmp_path):
    import shutil

    from bbconnect.adapters.tenant_configs import TenantConfigStore
    from bbconnect.tenants import TenantConfigError

    tenants = tmp_path / "tenants"
    tenants.mkdir()
    shutil.copy(CONFIG_DIR / "gemeente-lv.json", tenants / "gemeente-lv.json")
    (tmp_path / "cpa").mkdir()
    (tmp_path / "cpa" / "gemeente-lv.xml").write_bytes(
        _lv_cpa(**{'tns:isConfidential="transient"': b'tns:isConfidential="persistent"'}))

    with pytest.raises(TenantConfigError, match="asks for encryption") as refused:
        TenantConfigStore(directory=str(tenants)).get("gemeente-lv")
    assert "gemeente-lv.json" in str(refused.value)

"""bbconnect.ebms.cpa: CPP/A 2.0 agreements, resolved into what a sender and a receiver need."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

from bbconnect.ebms.cpa import (
    Cpa,
    CpaError,
    check_connection,
    parse_cpa,
    parse_xs_duration,
)
from bbconnect.ebms.message import (
    ACTION_A_REQUEST,
    ACTION_BV_REQUEST,
    ACTION_BV_RESULT,
    BERICHTENBOX_SERVICE,
    SERVICE_TYPE,
    Party,
)
from bbconnect.tenants import load_tenant_config

OUR_OIN = "00000001899410741000"
LOGIUS_OIN = "00000004003214345001"
CPA_ID = "CPA-GLOBE-00000001899410741000-01"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ACTION_A_RESULT = "GLOBE-R-A-Result"
EX_OVERHEID = "00000000000000000001"
EX_DIGIPOORT = "00000000000000000000"
EX_NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


class LocalCatalog(etree.Resolver):
    """Resolves schema imports by file name from the folder holding the schemas; never the network."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def resolve(self, system_url, public_id, context):
        name = (system_url or "").rsplit("/", 1)[-1]
        candidate = self.folder / name
        if name and candidate.is_file():
            return self.resolve_filename(str(candidate), context)
        return None


@pytest.fixture(scope="module")
def cpa_schema(shared_dir: Path) -> etree.XMLSchema:
    folder = shared_dir / "ebms"
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(LocalCatalog(folder))
    return etree.XMLSchema(etree.parse(str(folder / "cpp-cpa-2_0.xsd"), parser))


@pytest.fixture(scope="module")
def example_xml(shared_dir: Path) -> bytes:
    return (shared_dir / "ebms" / "examples" / "cpa-digikoppeling-rm-unsigned.xml").read_bytes()


def cpa_bytes(repo_root: Path, name: str) -> bytes:
    return (repo_root / "config" / "cpa" / name).read_bytes()


@pytest.fixture(scope="module")
def lv_xml(repo_root: Path) -> bytes:
    return cpa_bytes(repo_root, "gemeente-lv.xml")


@pytest.fixture(scope="module")
def lv(lv_xml: bytes) -> Cpa:
    return parse_cpa(lv_xml)


# --------------------------------------------------------------------------------------------------
# The shared example CPA (ebms2.md §5.3)
# --------------------------------------------------------------------------------------------------


def test_given_the_shared_example_cpa_when_parsed_then_header_parties_and_channels_are_read(example_xml):
    cpa = parse_cpa(example_xml)

    assert cpa.cpa_id == "cpaStubEBF.rm.http.unsigned"
    assert cpa.status == "agreed"
    assert cpa.start == datetime(2011, 1, 1, tzinfo=UTC)
    assert cpa.end == datetime(2031, 1, 1, tzinfo=UTC)
    logius, overheid = cpa.parties
    assert (logius.party_name, overheid.party_name) == ("Logius", "Overheid")
    assert [(p.value, p.type) for p in overheid.party_ids] == [(EX_OVERHEID, "urn:osb:oin")]
    assert overheid.roles == ("OVERHEID",)
    assert logius.default_msh_channel_id == "DIGIPOORT_defaultDeliveryChannel_ProfileBestEffortSigned"
    assert sorted(b.action for b in overheid.action_bindings("send")) == ["aanleveren", "bevestigAfleveren"]
    assert sorted(b.action for b in overheid.action_bindings("receive")) == ["afleveren", "bevestigAanleveren"]
    rm_channel = overheid.delivery_channels["OVERHEID_defaultDeliveryChannel_ProfileReliableMessaging"]
    assert rm_channel.messaging.ack_requested == "always"
    assert rm_channel.messaging.duplicate_elimination == "always"
    assert rm_channel.messaging.sync_reply_mode == "none"
    sender = overheid.doc_exchanges["OVERHEID_ReliableMessaging"].sender_binding
    assert sender.reliable_messaging.retries == 5
    assert sender.reliable_messaging.retry_interval == timedelta(minutes=5)
    assert sender.reliable_messaging.message_order_semantics == "NotGuaranteed"
    assert sender.persist_duration == timedelta(minutes=30)
    assert sender.non_repudiation is None
    assert overheid.transports["OVERHEID_transport_HTTP"].endpoints[0].uri == "http://localhost:8088/ebms"
    assert cpa.certificates == {}


def test_given_the_shared_example_when_overheid_sends_aanleveren_then_the_worked_example_of_5_3_results(example_xml):
    cpa = parse_cpa(example_xml)

    channel = cpa.send_channel(EX_OVERHEID, "osb:aanleveren:1.1$1.0", "urn:osb:services", "aanleveren", now=EX_NOW)

    assert channel.cpa_id == "cpaStubEBF.rm.http.unsigned"
    assert channel.from_party == Party(EX_OVERHEID, "OVERHEID", "urn:osb:oin")
    assert channel.to_party == Party(EX_DIGIPOORT, "DIGIPOORT", "urn:osb:oin")
    assert channel.endpoint == "http://localhost:8888/ebms"
    assert (channel.retries, channel.retry_interval) == (5, timedelta(minutes=5))
    assert channel.persist_duration == timedelta(minutes=30)
    assert channel.time_to_live == timedelta(minutes=30)
    assert channel.ttl(EX_NOW) == EX_NOW + timedelta(minutes=30)
    assert channel.ack_requested and channel.duplicate_elimination
    assert not channel.ack_signature_requested and not channel.signed
    assert channel.sync_reply_mode == "none" and not channel.sync_reply
    assert channel.reply_endpoint == "http://localhost:8088/ebms"
    assert channel.receive_channel_id == "DIGIPOORT_defaultDeliveryChannel_ProfileReliableMessaging"
    # the example leaves no margin between TTL and PersistDuration (ebms2.md §5.3): a warning says so
    assert any("PersistDuration" in w for w in channel.warnings)


def test_given_the_shared_example_when_overheid_receives_afleveren_then_digipoort_sends_it_and_acks_go_back_to_it(
    example_xml,
):
    cpa = parse_cpa(example_xml)

    channel = cpa.receive_channel(EX_OVERHEID, "osb:afleveren:1.1$1.0", "urn:osb:services", "afleveren", now=EX_NOW)

    assert channel.from_party == Party(EX_DIGIPOORT, "DIGIPOORT", "urn:osb:oin")
    assert channel.to_party == Party(EX_OVERHEID, "OVERHEID", "urn:osb:oin")
    assert channel.endpoint == "http://localhost:8088/ebms"
    assert channel.ack_endpoint == "http://localhost:8888/ebms"
    assert channel.ack_requested and channel.duplicate_elimination and not channel.signed
    assert channel.retention == timedelta(minutes=30)
    assert channel.client_certificates == ()


# --------------------------------------------------------------------------------------------------
# Our CPAs for the demo tenant
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gemeente-lv.xml", "gemeente-lv-async.xml", "gemeente-lv-signed.xml", "example-osb-rm-s.xml"])
def test_given_our_example_cpas_when_validated_against_cpp_cpa_2_0_then_they_are_valid(cpa_schema, repo_root, name):
    document = etree.fromstring(cpa_bytes(repo_root, name))

    valid = cpa_schema.validate(document)

    assert valid, str(cpa_schema.error_log)


@pytest.mark.parametrize("name", ["gemeente-lv.xml", "gemeente-lv-async.xml", "gemeente-lv-signed.xml", "example-osb-rm-s.xml"])
def test_given_our_example_cpas_when_read_then_a_comment_says_the_retry_interval_is_only_for_the_local_demo(
    repo_root, name
):
    comments = [c.text for c in etree.fromstring(cpa_bytes(repo_root, name)).iter(etree.Comment)]

    assert any("PT2S" in c and "local demo" in c for c in comments)


@pytest.mark.parametrize("action", [ACTION_BV_REQUEST, ACTION_A_REQUEST])
def test_given_the_gemeente_lv_cpa_when_we_send_a_request_then_sr_sends_reliably_and_synchronously_to_logius_sp(
    lv, action
):
    channel = lv.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, action, now=NOW)

    assert channel.cpa_id == CPA_ID
    assert channel.from_party == Party(OUR_OIN, "SR", "urn:osb:oin")
    assert channel.to_party == Party(LOGIUS_OIN, "SP", "urn:osb:oin")
    assert (channel.service, channel.service_type, channel.action) == (BERICHTENBOX_SERVICE, SERVICE_TYPE, action)
    assert channel.endpoint == "https://ebms.logius.example/globe/ebms"
    assert channel.retries == 5
    assert channel.retry_interval == timedelta(seconds=2)
    assert channel.persist_duration == timedelta(hours=1)
    assert channel.time_to_live == timedelta(seconds=12)
    assert channel.ack_requested and channel.duplicate_elimination
    assert channel.sync_reply_mode == "mshSignalsOnly"
    assert not channel.signed and not channel.ack_signature_requested
    assert channel.warnings == ()


@pytest.mark.parametrize("action", [ACTION_BV_RESULT, ACTION_A_RESULT])
def test_given_the_gemeente_lv_cpa_when_we_receive_a_result_then_only_logius_in_role_sp_may_send_it(lv, action):
    channel = lv.receive_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, action, now=NOW)

    assert channel.from_party == Party(LOGIUS_OIN, "SP", "urn:osb:oin")
    assert channel.to_party == Party(OUR_OIN, "SR", "urn:osb:oin")
    assert channel.ack_requested and channel.duplicate_elimination
    assert channel.sync_reply_mode == "mshSignalsOnly"
    assert channel.retention == timedelta(hours=1)
    assert channel.endpoint == "https://bbconnect.gemeente-lv.example/ebms"


def test_given_the_gemeente_lv_cpa_when_we_try_to_send_a_result_then_it_is_refused_naming_what_we_may_send(lv):
    with pytest.raises(CpaError, match="may not send action 'GLOBE-R-BV-Result'") as caught:
        lv.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_RESULT, now=NOW)

    assert ACTION_BV_REQUEST in str(caught.value)


def test_given_the_gemeente_lv_cpa_when_the_service_type_is_left_out_then_no_binding_matches(lv):
    with pytest.raises(CpaError, match="may not send"):
        lv.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, None, ACTION_BV_REQUEST, now=NOW)


def test_given_the_async_cpa_when_we_send_then_the_acknowledgment_comes_as_a_separate_message(repo_root):
    cpa = parse_cpa(cpa_bytes(repo_root, "gemeente-lv-async.xml"))

    channel = cpa.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=NOW)

    assert channel.sync_reply_mode == "none"
    assert not channel.sync_reply
    assert channel.reply_endpoint == "https://bbconnect.gemeente-lv.example/ebms"
    assert (channel.retries, channel.retry_interval) == (5, timedelta(seconds=2))


def test_given_the_signed_cpa_when_we_send_then_it_is_signed_rsa_sha256_with_signed_acks_and_cpa_certificates(repo_root):
    cpa = parse_cpa(cpa_bytes(repo_root, "example-osb-rm-s.xml"))

    channel = cpa.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=NOW)
    inbound = cpa.receive_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_RESULT, now=NOW)

    assert channel.signed and channel.ack_signature_requested
    assert channel.hash_function == "http://www.w3.org/2001/04/xmlenc#sha256"
    assert channel.signature_algorithm == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    ours = x509.load_der_x509_certificate(channel.signing_certificate)
    assert ours.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == OUR_OIN
    assert channel.client_certificate == channel.signing_certificate
    logius_certs = [x509.load_der_x509_certificate(c) for c in channel.server_certificates]
    assert {c.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value for c in logius_certs} == {LOGIUS_OIN}
    assert inbound.signed and inbound.signature_algorithms == (channel.signature_algorithm,)
    theirs = x509.load_der_x509_certificate(inbound.signing_certificate)
    assert theirs.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == LOGIUS_OIN
    assert inbound.client_certificates[0] == inbound.signing_certificate
    assert set(cpa.certificates) == {"SR_cert", "SP_cert"}


def test_given_the_gemeente_lv_cpa_when_asking_for_our_msh_channel_then_it_is_the_reliable_channel(lv):
    msh = lv.msh_channel(OUR_OIN)

    assert msh.channel_id == "SR_channel_osb-rm"
    assert msh.endpoint == "https://bbconnect.gemeente-lv.example/ebms"
    assert msh.sync_reply_mode == "mshSignalsOnly"
    assert not msh.signed


# --------------------------------------------------------------------------------------------------
# Connection cross-check
# --------------------------------------------------------------------------------------------------


def test_given_the_demo_tenant_connection_when_checked_against_its_cpa_then_they_agree_and_a_moved_endpoint_is_named(
    lv, repo_root
):
    config = load_tenant_config((repo_root / "config" / "tenants" / "gemeente-lv.json").read_bytes(), source="test")
    connection = config.connections["lv-logius"]

    as_configured = check_connection(
        lv, cpa_id=connection.cpa_id, oin=connection.oin, logius_oin=connection.logius_oin, endpoint=connection.endpoint
    )
    moved = check_connection(
        lv, cpa_id=connection.cpa_id, oin=connection.oin, logius_oin=connection.logius_oin,
        endpoint="https://localhost:443/ebms/",
    )

    assert as_configured == []
    assert len(moved) == 1 and "endpoint" in moved[0]


def test_given_a_contradicting_connection_when_checked_then_every_contradiction_is_named(lv):
    problems = check_connection(
        lv,
        cpa_id="CPA-OTHER",
        oin="00000009999999999000",
        logius_oin="00000004003214345001",
        endpoint="https://elsewhere.example/ebms",
    )

    text = " | ".join(problems)
    assert len(problems) == 3
    assert "'CPA-OTHER'" in text and CPA_ID in text
    assert "our OIN 00000009999999999000 is not a party" in text
    assert "https://elsewhere.example/ebms" in text


def test_given_a_connection_whose_logius_oin_is_not_the_other_party_when_checked_then_that_is_named(lv):
    problems = check_connection(
        lv, cpa_id=CPA_ID, oin=OUR_OIN, logius_oin="00000004000000000001", endpoint="https://ebms.logius.example/globe/ebms"
    )

    assert problems == [
        f"the other party of the CPA is {LOGIUS_OIN}, not Logius' OIN 00000004000000000001"
    ]


def test_given_a_cpa_with_other_party_ids_when_checked_then_our_oin_and_logius_are_both_missing(example_xml):
    problems = check_connection(
        parse_cpa(example_xml), cpa_id="cpaStubEBF.rm.http.unsigned", oin=OUR_OIN, logius_oin=LOGIUS_OIN,
        endpoint="http://localhost:8888/ebms",
    )

    assert any("our OIN" in p for p in problems)
    assert any("Logius' OIN" in p for p in problems)


# --------------------------------------------------------------------------------------------------
# Validity and refusal
# --------------------------------------------------------------------------------------------------


def test_given_an_expired_cpa_when_a_channel_is_asked_then_it_is_refused(lv):
    with pytest.raises(CpaError, match="has expired"):
        lv.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=datetime(2031, 1, 1, tzinfo=UTC))


def test_given_a_cpa_that_is_not_valid_yet_when_a_channel_is_asked_then_it_is_refused(lv):
    with pytest.raises(CpaError, match="not valid yet"):
        lv.receive_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_RESULT, now=datetime(2024, 12, 31, tzinfo=UTC))


def test_given_an_expired_cpa_when_parsed_with_now_then_it_is_refused_and_without_now_it_is_read(lv_xml):
    late = datetime(2031, 6, 1, tzinfo=UTC)

    with pytest.raises(CpaError, match="has expired"):
        parse_cpa(lv_xml, now=late)
    assert not parse_cpa(lv_xml).is_valid(late)


def test_given_a_proposed_cpa_when_a_channel_is_asked_then_it_is_refused(lv_xml):
    cpa = parse_cpa(lv_xml.replace(b'tns:value="agreed"', b'tns:value="proposed"'))

    with pytest.raises(CpaError, match="status 'proposed'"):
        cpa.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=NOW)


def test_given_an_oin_that_is_not_a_party_when_a_channel_is_asked_then_the_parties_are_listed(lv):
    with pytest.raises(CpaError, match="is not a party") as caught:
        lv.send_channel("00000009999999999000", BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=NOW)

    assert LOGIUS_OIN in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<not-closed",
        b"<tns:CollaborationProtocolAgreement xmlns:tns='urn:wrong' tns:cpaid='x'/>",
    ],
)
def test_given_malformed_or_foreign_xml_when_parsed_then_a_cpa_error_is_raised(data):
    with pytest.raises(CpaError):
        parse_cpa(data)


def test_given_an_xxe_cpa_when_parsed_then_it_is_refused_without_reading_the_file(lv_xml):
    hostile = lv_xml.replace(
        b"<tns:CollaborationProtocolAgreement",
        b'<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n<tns:CollaborationProtocolAgreement',
        1,
    ).replace(b"<tns:Status", b"<tns:Comment>&secret;</tns:Comment><tns:Status", 1)

    with pytest.raises(CpaError, match="refused") as caught:
        parse_cpa(hostile)

    assert "root:" not in str(caught.value)


def test_given_a_billion_laughs_cpa_when_parsed_then_it_is_refused():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<l>&b;</l>"
    )

    with pytest.raises(CpaError, match="refused"):
        parse_cpa(bomb)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b'tns:cpaid="CPA-GLOBE-00000001899410741000-01"', b"", "cpaid"),
        (b"<tns:Start>2025-01-01T00:00:00Z</tns:Start>", b"<tns:Start>someday</tns:Start>", "Start"),
        (b"<tns:End>2030-12-31T23:59:59Z</tns:End>", b"<tns:End>2024-01-01T00:00:00Z</tns:End>", "before it starts"),
        (b"<tns:ChannelId>SR_channel_osb-rm</tns:ChannelId>", b"<tns:ChannelId>nowhere</tns:ChannelId>", "nowhere"),
        (b"<tns:RetryInterval>PT2S</tns:RetryInterval>", b"<tns:RetryInterval>soon</tns:RetryInterval>", "duration"),
        (b"<tns:Retries>5</tns:Retries>", b"<tns:Retries>five</tns:Retries>", "Retries"),
    ],
)
def test_given_a_cpa_lacking_or_garbling_a_needed_value_when_parsed_then_the_error_names_it(lv_xml, old, new, message):
    assert old in lv_xml

    with pytest.raises(CpaError, match=message):
        parse_cpa(lv_xml.replace(old, new, 1))


def test_given_a_cpa_with_one_party_when_parsed_then_it_is_refused(lv_xml):
    start = lv_xml.index(b'<tns:PartyInfo tns:partyName="Logius"')
    end = lv_xml.index(b"</tns:PartyInfo>", start) + len(b"</tns:PartyInfo>")

    with pytest.raises(CpaError, match="exactly two PartyInfo"):
        parse_cpa(lv_xml[:start] + lv_xml[end:])


def test_given_a_channel_with_a_sync_reply_mode_digikoppeling_does_not_use_when_sending_then_it_is_refused(lv_xml):
    cpa = parse_cpa(lv_xml.replace(b'tns:syncReplyMode="mshSignalsOnly"', b'tns:syncReplyMode="signalsOnly"'))

    with pytest.raises(CpaError, match="signalsOnly"):
        cpa.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=NOW)


def test_given_a_reliable_channel_without_retry_values_when_sending_then_it_is_refused(lv_xml):
    stripped = lv_xml.replace(b"<tns:Retries>5</tns:Retries>", b"").replace(
        b"<tns:RetryInterval>PT2S</tns:RetryInterval>", b""
    )
    cpa = parse_cpa(stripped)

    with pytest.raises(CpaError, match="Retries and RetryInterval"):
        cpa.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=NOW)


def test_given_a_per_message_channel_with_a_retry_schedule_when_sending_then_bbconnect_asks_for_an_acknowledgment(lv_xml):
    # perMessage (here: the attribute left out) leaves the choice to the sending application
    cpa = parse_cpa(lv_xml.replace(b' tns:ackRequested="always"', b"", 1))

    channel = cpa.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=NOW)

    assert channel.ack_requested and channel.duplicate_elimination and not channel.ack_signature_requested
    assert (channel.retries, channel.retry_interval) == (5, timedelta(seconds=2))
    assert any("perMessage" in w and "chooses yes" in w for w in channel.warnings)


def test_given_a_per_message_channel_without_a_retry_schedule_when_sending_then_it_goes_best_effort(lv_xml):
    stripped = lv_xml.replace(b' tns:ackRequested="always"', b"", 1).replace(b"<tns:Retries>5</tns:Retries>", b"")
    cpa = parse_cpa(stripped)

    channel = cpa.send_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_REQUEST, now=NOW)

    assert not channel.ack_requested and not channel.reliable
    assert (channel.retries, channel.retry_interval, channel.ttl(NOW)) == (0, None, None)
    assert any("perMessage" in w and "chooses no" in w for w in channel.warnings)


def test_given_a_per_message_sender_when_receiving_then_the_modes_say_either_is_accepted(lv_xml):
    cpa = parse_cpa(lv_xml.replace(b'tns:ackRequested="always"', b'tns:ackRequested="perMessage"'))

    channel = cpa.receive_channel(OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BV_RESULT, now=NOW)

    assert channel.ack_requested_mode == "perMessage" and channel.duplicate_elimination_mode == "always"
    assert [p.value for p in channel.from_party_ids] == [LOGIUS_OIN]
    assert [(p.value, p.type) for p in channel.to_party_ids] == [(OUR_OIN, "urn:osb:oin")]


@pytest.mark.parametrize(("old", "new", "where"), [
    (b"</tns:ebXMLReceiverBinding>", b"<tns:ReceiverDigitalEnvelope><tns:DigitalEnvelopeProtocol tns:version=\"2.0\">"
     b"XMLENC</tns:DigitalEnvelopeProtocol><tns:EncryptionAlgorithm>http://www.w3.org/2009/xmlenc11#aes128-gcm"
     b"</tns:EncryptionAlgorithm></tns:ReceiverDigitalEnvelope></tns:ebXMLReceiverBinding>", "ReceiverDigitalEnvelope"),
    (b'tns:isConfidential="transient"', b'tns:isConfidential="persistent"', "isConfidential='persistent'"),
])
def test_given_a_cpa_that_asks_for_encryption_when_read_then_the_requirement_is_named(lv_xml, old, new, where):
    from bbconnect.ebms.cpa import encryption_requirements

    assert encryption_requirements(parse_cpa(lv_xml)) == []
    found = encryption_requirements(parse_cpa(lv_xml.replace(old, new, 1)))
    assert found and where in found[0]


def test_given_a_certificate_that_is_not_base64_der_when_parsed_then_it_is_refused(repo_root):
    signed = cpa_bytes(repo_root, "example-osb-rm-s.xml")
    start = signed.index(b"<ds:X509Certificate>") + len(b"<ds:X509Certificate>")
    end = signed.index(b"</ds:X509Certificate>", start)

    with pytest.raises(CpaError, match="SR_cert"):
        parse_cpa(signed[:start] + b"bm90IGEgY2VydGlmaWNhdGU=" + signed[end:])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT5M", timedelta(minutes=5)),
        ("PT2S", timedelta(seconds=2)),
        ("P1D", timedelta(days=1)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("P1DT3H", timedelta(days=1, hours=3)),
        ("P1Y2M", timedelta(days=365 + 60)),
    ],
)
def test_given_an_xs_duration_when_parsed_then_it_becomes_a_timedelta(text, expected):
    assert parse_xs_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "-PT1M", "5M", "PT1H5", "P1H"])
def test_given_something_that_is_not_a_positive_xs_duration_when_parsed_then_it_is_refused(text):
    with pytest.raises(ValueError):
        parse_xs_duration(text)

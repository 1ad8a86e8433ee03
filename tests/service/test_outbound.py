"""service/channels.py and service/outbound.py: an outbound ebMS message is what the connection's CPA
says: its PartyId types and roles, best effort without TimeToLive or acknowledgements, signed
(ebMS 2.0 §4.1, checked by xmlsec1) with a signed acknowledgement asked for where the CPA wants one;
a CPA that asks for encryption, or names another signing certificate than ours, is refused."""
from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from bbconnect.ebms import message as ebms
from bbconnect.ebms.signing import verify_ebms
from bbconnect.service.channels import ChannelError, channel_for
from bbconnect.service.contracts.sending import AttemptOutcome
from bbconnect.service.outbound import build_message
from bbconnect.service.records import GlobeRecord
from bbconnect.tenants import load_tenant_config
from bbconnect_local.cpa_local import localised_cpa
from bbconnect_local.pki import TestPKI

REPO = Path(__file__).resolve().parents[2]
SENDER_OIN = "00000001899410741000"
LOGIUS_OIN = "00000004003214345001"
NOW = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)
NS = {"SOAP": ebms.SOAP_NS, "eb": ebms.EB_NS, "ds": "http://www.w3.org/2000/09/xmldsig#"}
PAYLOAD = ebms.Payload("batch-1@bbconnect", "application/xml", b"<Berichten/>")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pki = TestPKI(tmp_path_factory.mktemp("pki"), key_type="rsa")
    ours, logius, stranger = (pki.issue("ours", oin=SENDER_OIN), pki.issue("logius", oin=LOGIUS_OIN),
                              pki.issue("stranger", oin=SENDER_OIN))
    return ours, logius, stranger


def _connection(cpa_id: str):
    config = json.loads((REPO / "config" / "tenants" / "gemeente-lv.json").read_text())
    config["connections"]["lv-logius"]["cpa_id"] = cpa_id
    return load_tenant_config(json.dumps(config).encode(), source="test").connections["lv-logius"]


def _cpa(name: str, pki=None, **replacements: bytes) -> bytes:
    xml = (REPO / "config" / "cpa" / name).read_bytes()
    for old, new in replacements.items():
        xml = xml.replace(old.encode(), new)
    if pki is not None:
        xml = localised_cpa(xml, endpoints={}, certificates={SENDER_OIN: pki[0].cert_pem, LOGIUS_OIN: pki[1].cert_pem})
    return xml


def _header(body: bytes, headers: dict) -> etree._Element:
    soap, _ = ebms.split_message(headers["Content-Type"], body)
    return etree.fromstring(soap)


def test_given_a_cpa_with_other_party_id_types_when_a_message_is_built_then_the_header_carries_them():
    kind = b"urn:oasis:names:tc:ebcore:partyid-type:iso6523:0106"
    cpa = _cpa("gemeente-lv.xml", **{'tns:type="urn:osb:oin">00000004003214345001': kind.join(
        [b'tns:type="', b'">00000004003214345001'])})
    channel = channel_for(_connection("CPA-GLOBE-00000001899410741000-01"), ebms.ACTION_BV_REQUEST, cpa, now=NOW)

    built = build_message(channel, action=ebms.ACTION_BV_REQUEST, conversation_id="c", payloads=(PAYLOAD,), now=NOW,
                          attempt_seconds=10)

    root = _header(built.body, built.headers)
    to = root.find("SOAP:Header/eb:MessageHeader/eb:To/eb:PartyId", NS)
    sender = root.find("SOAP:Header/eb:MessageHeader/eb:From/eb:PartyId", NS)
    assert (to.text, to.get(f"{{{ebms.EB_NS}}}type")) == (LOGIUS_OIN, kind.decode())
    assert sender.get(f"{{{ebms.EB_NS}}}type") == "urn:osb:oin"


def test_given_a_best_effort_cpa_when_a_message_is_built_then_it_asks_no_acknowledgement_and_has_no_time_to_live():
    # osb-be: ackRequested and duplicateElimination never, no ReliableMessaging
    cpa = _cpa("gemeente-lv.xml", **{'tns:ackRequested="always"': b'tns:ackRequested="never"',
                                     'tns:duplicateElimination="always"': b'tns:duplicateElimination="never"',
                                     'tns:syncReplyMode="mshSignalsOnly"': b'tns:syncReplyMode="none"'})
    channel = channel_for(_connection("CPA-GLOBE-00000001899410741000-01"), ebms.ACTION_BV_REQUEST, cpa, now=NOW)

    built = build_message(channel, action=ebms.ACTION_BV_REQUEST, conversation_id="c", payloads=(PAYLOAD,), now=NOW,
                          attempt_seconds=10)

    assert not channel.reliable and channel.policy.retries == 0
    message = built.message
    assert (message.ack_requested, message.duplicate_elimination, message.sync_reply, message.time_to_live) == (
        False, False, False, None)
    root = _header(built.body, built.headers)
    assert root.find("SOAP:Header/eb:AckRequested", NS) is None
    assert root.find("SOAP:Header/eb:MessageHeader/eb:MessageData/eb:TimeToLive", NS) is None


def test_given_a_signing_cpa_when_a_message_is_built_then_xmlsec1_verifies_envelope_and_payload(pki, tmp_path):
    cpa = _cpa("gemeente-lv-signed.xml", pki)
    channel = channel_for(_connection("CPA-GLOBE-00000001899410741000-S1"), ebms.ACTION_BV_REQUEST, cpa, now=NOW)
    ours = pki[0]

    built = build_message(channel, action=ebms.ACTION_BV_REQUEST, conversation_id="c", payloads=(PAYLOAD,), now=NOW,
                          attempt_seconds=10, signing_identity=lambda: (ours.key_path.read_bytes(), ours.cert_pem))

    soap, parts = ebms.split_message(built.headers["Content-Type"], built.body)
    references = verify_ebms(soap, {cid: p.data for cid, p in parts.items()}, ours.cert_pem)
    assert [r.uri for r in references] == ["", "cid:batch-1@bbconnect"]
    # the acknowledgement must be signed by Logius and name both references
    assert [uri for uri, _ in built.ack_references] == ["", "cid:batch-1@bbconnect"]
    assert built.ack_certificate and b"AckRequested" in soap and b'eb:signed="true"' in soap
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        pytest.skip("xmlsec1 is not installed (the independent verifier)")
    (tmp_path / "message.xml").write_bytes(soap)
    (tmp_path / "part.xml").write_bytes(PAYLOAD.data)
    (tmp_path / "ours.pem").write_bytes(ours.cert_pem)
    (tmp_path / "theirs.pem").write_bytes(pki[1].cert_pem)
    command = [xmlsec1, "--verify", "--pubkey-cert-pem", str(tmp_path / "ours.pem"),
               "--url-map:cid:batch-1@bbconnect", str(tmp_path / "part.xml"), str(tmp_path / "message.xml")]
    assert subprocess.run(command, capture_output=True, text=True, timeout=60, check=False).returncode == 0
    # and not with another key (the check can fail)
    command[3] = str(tmp_path / "theirs.pem")
    assert subprocess.run(command, capture_output=True, text=True, timeout=60, check=False).returncode != 0


def test_given_a_key_that_is_not_the_cpas_signing_certificate_when_signing_then_it_is_refused(pki):
    cpa = _cpa("gemeente-lv-signed.xml", pki)
    channel = channel_for(_connection("CPA-GLOBE-00000001899410741000-S1"), ebms.ACTION_BV_REQUEST, cpa, now=NOW)
    stranger = pki[2]

    with pytest.raises(ChannelError, match="names signing certificate"):
        build_message(channel, action=ebms.ACTION_BV_REQUEST, conversation_id="c", payloads=(PAYLOAD,), now=NOW,
                      attempt_seconds=10, signing_identity=lambda: (stranger.key_path.read_bytes(), stranger.cert_pem))


def test_given_a_cpa_that_asks_for_encryption_when_a_channel_is_resolved_then_nothing_is_sent_in_clear():
    cpa = _cpa("gemeente-lv.xml", **{'tns:isConfidential="transient"': b'tns:isConfidential="persistent"'})

    with pytest.raises(ChannelError, match="asks for encryption.*will not send them in clear"):
        channel_for(_connection("CPA-GLOBE-00000001899410741000-01"), ebms.ACTION_BV_REQUEST, cpa, now=NOW)


# ---------------------------------------------------------------------- what an attempt's answer means
class _Answering:
    def __init__(self, status: int, body: bytes = b"", content_type: str = "text/xml; charset=UTF-8") -> None:
        from bbconnect.adapters.transport import HttpAnswer

        self.answer = HttpAnswer(status, {"Content-Type": content_type}, body)

    def post_ebms(self, headers, body, *, endpoint=None):
        return self.answer


def _attempt(record: dict, answering: _Answering) -> AttemptOutcome:
    """What GLOBE's answer to the GLOBE batch's message means (`send.meaning_of`, as each attempt asks it)."""
    from bbconnect.service import send

    globe = GlobeRecord(globe_batch_id="g-1", batch_id="b-1", chunk=0, tenant="gemeente-lv", connection="lv-logius",
                        cpa_id="CPA-1", from_oin=SENDER_OIN, to_oin=LOGIUS_OIN, **record)
    return send.meaning_of(answering.answer, globe, now=NOW)


@pytest.mark.parametrize(("reliable", "sync_reply", "expected"), [
    (False, False, "ack"),  # osb-be: taken is sent
    (True, False, "sent"),  # osb-rm, asynchronous: the acknowledgement comes on its own
    (True, True, "retry"),  # osb-rm, synchronous: an empty answer is no acknowledgement
])
def test_given_an_empty_2xx_when_an_attempt_is_answered_then_the_profile_decides_what_it_means(reliable, sync_reply, expected):
    record = {"message_id": "m-1@bbconnect", "reliable": reliable, "sync_reply": sync_reply, "headers": {}, "endpoint": "x"}
    assert _attempt(record, _Answering(204)).result == expected


def test_given_we_asked_for_a_signed_acknowledgment_when_an_unsigned_one_comes_then_it_does_not_count(pki):
    business = ebms.EbmsMessage(
        cpa_id="CPA-1", conversation_id="c", service=ebms.BERICHTENBOX_SERVICE, service_type=ebms.SERVICE_TYPE,
        action=ebms.ACTION_BV_REQUEST, from_party=ebms.Party(SENDER_OIN, "SR"), to_party=ebms.Party(LOGIUS_OIN, "SP"),
        message_id="m-1@bbconnect", timestamp=NOW)
    headers, body = ebms.serialize(ebms.acknowledgment_for(business, host="logius", now=NOW))
    record = {"message_id": "m-1@bbconnect", "reliable": True, "sync_reply": True, "headers": {}, "endpoint": "x",
              "ack_references": [["", "abc="], ["cid:batch-1@bbconnect", "def="]],
              "ack_certificate": pki[1].cert_pem.decode()}

    outcome = _attempt(record, _Answering(200, body, headers["Content-Type"]))

    assert outcome.result == "retry" and "signed acknowledgement does not hold" in outcome.detail

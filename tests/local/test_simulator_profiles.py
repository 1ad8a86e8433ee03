"""The simulator as a strict counterpart under a CPA: it checks our messages by the CPA it was given
(PartyId types, the acknowledgement mode, the signature with xmlsec1), answers as the CPA says, and
under WUS 2W-be-S checks our signed calls and signs its answers (both with xmlsec1), which
bbconnect's own verifier then checks. bbconnect's sending code builds the messages here, so each
side holds the other to the rules."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bbconnect.adapters import transport
from bbconnect.adapters.logius import LogiusConnection, LogiusUnavailable
from bbconnect.ebms import message as ebms
from bbconnect.service.channels import channel_for
from bbconnect.service.outbound import build_message
from bbconnect.tenants import load_tenant_config
from bbconnect_local.cpa_local import localised_cpa
from bbconnect_local.mtls_server import https_post
from bbconnect_local.pki import TestPKI
from bbconnect_local.simulator import LogiusSimulator, SimulatorConfig
from bbconnect_local.simulator.xmldsig import xmlsec1

REPO = Path(__file__).resolve().parents[2]
SENDER_OIN = "00000001899410741000"
LOGIUS_OIN = "00000004003214345001"
SUBSCRIBED, NOT_SUBSCRIBED = "999990019", "999990032"

pytestmark = pytest.mark.skipif(xmlsec1() is None, reason="xmlsec1 is the simulator's signature tool")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"), key_type="rsa")


@pytest.fixture(scope="module")
def simulator(pki):
    simulator = LogiusSimulator(SimulatorConfig(subscribed={SUBSCRIBED}, authorised_senders={SENDER_OIN: {SENDER_OIN}},
                                                result_delay_seconds=60), pki)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def ours(pki, tmp_path_factory):
    identity = pki.issue("gemeente-lv", oin=SENDER_OIN, server=False)
    bundle = tmp_path_factory.mktemp("bundle") / "bundle.pem"
    bundle.write_bytes(identity.cert_pem + identity.key_path.read_bytes())
    return identity, f"file:{bundle}"


def _connection(simulator, ours, **changes):
    config = json.loads((REPO / "config" / "tenants" / "gemeente-lv.json").read_text())
    config["connections"]["lv-logius"].update(endpoint=simulator.ebms_url, wus_endpoint=simulator.wus_url,
                                              certificate=ours[1], **changes)
    return load_tenant_config(json.dumps(config).encode(), source="test").connections["lv-logius"]


def test_given_wus_2w_be_s_when_subscriptions_are_checked_then_both_signatures_hold(simulator, ours, pki):
    connection = _connection(simulator, ours, wus_profile="2W-be-S",
                             logius_signing_certificate=f"file:{simulator.identity.cert_path}")
    before = simulator.signed_wus_calls

    answer = LogiusConnection(connection, ca_bundle=f"file:{pki.ca_cert_path}", timeout=10).validate_subscriptions(
        SENDER_OIN, "AANSLAG", [SUBSCRIBED, NOT_SUBSCRIBED])

    assert answer == {SUBSCRIBED: True, NOT_SUBSCRIBED: False}
    assert simulator.signed_wus_calls == before + 1


def test_given_wus_2w_be_s_when_the_answer_is_signed_by_another_key_then_it_is_not_trusted(simulator, ours, pki):
    stranger = pki.issue("not-logius", oin=LOGIUS_OIN)
    connection = _connection(simulator, ours, wus_profile="2W-be-S", logius_signing_certificate=f"file:{stranger.cert_path}")

    with pytest.raises(LogiusUnavailable, match="signature does not hold"):
        LogiusConnection(connection, ca_bundle=f"file:{pki.ca_cert_path}", timeout=10).validate_subscriptions(
            SENDER_OIN, "AANSLAG", [SUBSCRIBED])


def _signed_setup(simulator, ours, *, tamper=None):
    cpa = localised_cpa((REPO / "config" / "cpa" / "gemeente-lv-signed.xml").read_bytes(),
                        endpoints={LOGIUS_OIN: simulator.ebms_url, SENDER_OIN: "https://127.0.0.1:9/ebms"},
                        certificates={LOGIUS_OIN: simulator.identity.cert_pem, SENDER_OIN: ours[0].cert_pem})
    simulator.register_cpa(cpa)
    connection = _connection(simulator, ours, cpa_id="CPA-GLOBE-00000001899410741000-S1")
    channel = channel_for(connection, ebms.ACTION_BV_REQUEST, cpa)
    payload = _berichten()
    built = build_message(channel, action=ebms.ACTION_BV_REQUEST, conversation_id="c-1", now=datetime.now(UTC),
                          payloads=(ebms.Payload("batch@bbconnect", "application/xml", payload),), attempt_seconds=10,
                          signing_identity=lambda: transport.signing_identity(connection.certificate))
    body = tamper(built.body) if tamper else built.body
    return built, https_post(simulator.ebms_url, body, built.headers, identity=ours[0], ca_path=simulator.ca_cert_path)


def _berichten() -> bytes:
    """A GLOBE batch as far as the simulator looks at it on receipt (it judges it later, and not here)."""
    import uuid

    return (b'<b:Berichten xmlns:b="http://schemas.rdw.nl/GEB/BerichtVerwerkService/Types/2009/01"><BatchInformatie>'
            b"<BatchID>" + str(uuid.uuid4()).encode() + b"</BatchID></BatchInformatie></b:Berichten>")


def test_given_a_signing_cpa_when_we_send_a_batch_then_the_simulator_verifies_it_and_signs_its_acknowledgment(
        simulator, ours):
    from bbconnect.service.outbound import acknowledgment_holds

    built, answer = _signed_setup(simulator, ours)

    assert answer.status == 200, answer.body[:500]
    signal = ebms.parse(answer.header("Content-Type"), answer.body)
    assert signal.acknowledgment_ref == built.message.message_id, answer.body[:500]
    batch = next(b for b in simulator.received_batches if b.message_id == built.message.message_id)
    assert batch.signed and batch.sync_reply
    # Logius' signed acknowledgement holds by our own check: its signature and our references
    soap, _ = ebms.split_message(answer.header("Content-Type"), answer.body)
    assert acknowledgment_holds(soap, signal, references=built.ack_references, certificate_pem=built.ack_certificate) is None


def test_given_a_signing_cpa_when_the_payload_is_changed_after_signing_then_the_simulator_refuses_it(simulator, ours):
    _built, answer = _signed_setup(simulator, ours, tamper=lambda body: body.replace(b"<BatchID>", b"<BatchID> ", 1))

    signal = ebms.parse(answer.header("Content-Type"), answer.body)
    assert [e.code for e in signal.errors] == ["SecurityFailure"]


def test_given_registered_cpas_when_a_message_names_another_cpaid_then_only_a_known_connection_without_cpa_is_taken(
        simulator, ours):
    # (registered CPAs make the simulator strict about CPAIds, as a real MSH is: "CPA not found")
    _signed_setup(simulator, ours)
    connection = _connection(simulator, ours, cpa_id="CPA-WITHOUT-FILE-01", cpa=None)
    channel = channel_for(connection, ebms.ACTION_BV_REQUEST, None)

    def post():
        built = build_message(channel, action=ebms.ACTION_BV_REQUEST, conversation_id="c", now=datetime.now(UTC),
                              payloads=(ebms.Payload("b@bbconnect", "application/xml", _berichten()),), attempt_seconds=10)
        return https_post(simulator.ebms_url, built.body, built.headers, identity=ours[0], ca_path=simulator.ca_cert_path)

    unknown = post()
    assert unknown.status == 500 and b"CPA CPA-WITHOUT-FILE-01 not found" in unknown.body
    simulator.config.default_cpa_ids.add("CPA-WITHOUT-FILE-01")
    known = post()
    assert known.status == 200 and ebms.parse(known.header("Content-Type"), known.body).acknowledgment_ref

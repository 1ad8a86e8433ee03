"""bbconnect.ebms.message: Ping/Pong, MessageStatus (ebMS2 §7-8) and classify_errors (ebms2.md §3)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from bbconnect.ebms.message import (
    ACTION_BATCH_REQUEST,
    ACTION_PING,
    ACTION_PONG,
    ACTION_STATUS_REQUEST,
    ACTION_STATUS_RESPONSE,
    BERICHTENBOX_SERVICE,
    MESSAGE_STATUSES,
    MSH_SERVICE,
    SERVICE_TYPE,
    EbmsError,
    EbmsMessage,
    EbmsParseError,
    Party,
    Payload,
    acknowledgment_for,
    classify_errors,
    envelope_of,
    message_error_for,
    parse,
    ping,
    pong_for,
    serialize,
    status_request,
    status_response_for,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
EB = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
NS = {"SOAP": SOAP, "eb": EB}
OURS = Party("00000001899410741000", "SR")
LOGIUS = Party("00000004003214345001", "SP")
CPA_ID = "CPA-GLOBE-00000001899410741000-01"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=3)


class LocalCatalog(etree.Resolver):
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
def ebms_schema(shared_dir: Path) -> etree.XMLSchema:
    folder = shared_dir / "ebms"
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(LocalCatalog(folder))
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:import namespace="{SOAP}" schemaLocation="envelope.xsd"/>
      <xs:import namespace="{EB}" schemaLocation="msg-header-2_0.xsd"/>
    </xs:schema>""".encode()
    return etree.XMLSchema(etree.fromstring(wrapper, parser, base_url=str(folder / "wrapper.xsd")))


def roundtrip(message: EbmsMessage) -> tuple[etree._Element, EbmsMessage]:
    headers, body = serialize(message)
    assert headers["Content-Type"].startswith("text/xml")
    return etree.fromstring(body), parse(headers["Content-Type"], body)


def assert_schema_valid(schema: etree.XMLSchema, document: etree._Element) -> None:
    """SOAP Header and Body take lax wildcards, so the ebMS blocks are checked against
    msg-header-2_0.xsd's declarations."""
    assert schema.validate(document), str(schema.error_log)


def test_given_a_status_response_without_its_required_status_when_validated_then_the_schema_refuses_it(ebms_schema):
    received = status_request(CPA_ID, LOGIUS, OURS, "m@x", host="logius.example", now=NOW)
    _, body = serialize(status_response_for(received, "NotRecognized", host="x", now=LATER))

    document = etree.fromstring(body.replace(b' eb:messageStatus="NotRecognized"', b""))

    assert not ebms_schema.validate(document)


# --------------------------------------------------------------------------------------------------
# Ping / Pong
# --------------------------------------------------------------------------------------------------


def test_given_a_ping_when_serialized_then_it_is_an_msh_signal_without_role_ack_or_dedupe(ebms_schema):
    message = ping(CPA_ID, OURS, LOGIUS, host="bbconnect.example", now=NOW)

    document, parsed = roundtrip(message)

    assert_schema_valid(ebms_schema, document)
    assert document.findtext(".//eb:Service", namespaces=NS) == MSH_SERVICE
    assert document.find(".//eb:Service", NS).get(f"{{{EB}}}type") is None
    assert document.findtext(".//eb:Action", namespaces=NS) == ACTION_PING
    assert document.find(".//eb:Role", NS) is None
    assert document.find(".//eb:AckRequested", NS) is None
    assert document.find(".//eb:DuplicateElimination", NS) is None
    assert document.find(".//eb:SyncReply", NS) is None
    assert parsed.is_signal and parsed.action == ACTION_PING
    assert parsed.from_party == Party(OURS.oin, None) and parsed.to_party == Party(LOGIUS.oin, None)
    assert parsed.message_id.endswith("@bbconnect.example")


def test_given_a_synchronous_msh_channel_when_pinging_then_sync_reply_is_requested():
    message = ping(CPA_ID, OURS, LOGIUS, host="bbconnect.example", now=NOW, sync_reply=True, conversation_id="c-1")

    document, parsed = roundtrip(message)

    assert document.find(".//eb:SyncReply", NS) is not None
    assert parsed.sync_reply and parsed.conversation_id == "c-1"


def test_given_a_received_ping_when_answered_then_the_pong_refers_to_it_in_the_same_conversation(ebms_schema):
    received = roundtrip(ping(CPA_ID, LOGIUS, OURS, host="logius.example", now=NOW))[1]

    pong = pong_for(received, host="bbconnect.example", now=LATER)
    document, parsed = roundtrip(pong)

    assert_schema_valid(ebms_schema, document)
    assert parsed.action == ACTION_PONG and parsed.is_signal
    assert parsed.ref_to_message_id == received.message_id
    assert parsed.conversation_id == received.conversation_id
    assert parsed.from_party.oin == OURS.oin and parsed.to_party.oin == LOGIUS.oin
    assert parsed.timestamp == LATER


def test_given_a_business_message_when_answered_with_a_pong_then_it_is_refused():
    business = EbmsMessage(
        cpa_id=CPA_ID, conversation_id="c", service=BERICHTENBOX_SERVICE, service_type=SERVICE_TYPE,
        action=ACTION_BATCH_REQUEST, from_party=OURS, to_party=LOGIUS, message_id="m@x", timestamp=NOW,
    )

    with pytest.raises(ValueError, match="expected an MSH Ping"):
        pong_for(business, host="x", now=NOW)


def test_given_a_ping_when_an_acknowledgment_is_asked_for_it_then_it_is_refused():
    received = ping(CPA_ID, LOGIUS, OURS, host="logius.example", now=NOW)

    with pytest.raises(ValueError, match="never answered with an Acknowledgment"):
        acknowledgment_for(received, host="x", now=NOW)


def test_given_a_ping_with_a_problem_when_answered_then_a_message_error_refers_to_it():
    # (the endpoint once crashed here: a Ping from the wrong certificate gave a ValueError and HTTP 500)
    received = ping(CPA_ID, LOGIUS, OURS, host="logius.example", now=NOW)

    error = message_error_for(received, [EbmsError("SecurityFailure", description="not this party")], host="x", now=NOW)

    assert (error.action, error.ref_to_message_id, error.errors[0].code) == ("MessageError", received.message_id,
                                                                              "SecurityFailure")


# --------------------------------------------------------------------------------------------------
# MessageStatus
# --------------------------------------------------------------------------------------------------


def test_given_a_status_request_when_serialized_then_the_body_names_the_message_asked_about(ebms_schema):
    message = status_request(CPA_ID, OURS, LOGIUS, "asked-1@bbconnect.example", host="bbconnect.example", now=NOW)

    document, parsed = roundtrip(message)

    assert_schema_valid(ebms_schema, document)
    request = document.find("SOAP:Body/eb:StatusRequest", NS)
    assert request is not None and request.get(f"{{{EB}}}version") == "2.0"
    assert request.findtext("eb:RefToMessageId", namespaces=NS) == "asked-1@bbconnect.example"
    assert document.find(".//eb:AckRequested", NS) is None
    assert parsed.action == ACTION_STATUS_REQUEST
    assert parsed.status_request_ref == "asked-1@bbconnect.example"
    assert parsed.status_response is None


@pytest.mark.parametrize("status", ["Received", "Processed"])
def test_given_a_known_message_when_the_status_is_answered_then_status_and_receipt_time_are_returned(
    ebms_schema, status
):
    received = roundtrip(status_request(CPA_ID, LOGIUS, OURS, "m-7@logius.example", host="logius.example", now=NOW))[1]
    receipt = NOW - timedelta(minutes=5)

    answer = status_response_for(received, status, receipt, host="bbconnect.example", now=LATER)
    document, parsed = roundtrip(answer)

    assert_schema_valid(ebms_schema, document)
    body = document.find("SOAP:Body/eb:StatusResponse", NS)
    assert body.get(f"{{{EB}}}messageStatus") == status
    assert body.findtext("eb:RefToMessageId", namespaces=NS) == "m-7@logius.example"
    assert body.findtext("eb:Timestamp", namespaces=NS) == "2026-06-01T11:55:00Z"
    assert parsed.action == ACTION_STATUS_RESPONSE
    assert parsed.ref_to_message_id == received.message_id
    assert parsed.status_request_ref == "m-7@logius.example"
    assert parsed.status_response == (status, receipt)


def test_given_an_unknown_message_when_the_status_is_answered_then_not_recognized_has_no_timestamp():
    received = status_request(CPA_ID, LOGIUS, OURS, "never-seen@x", host="logius.example", now=NOW)

    document, parsed = roundtrip(status_response_for(received, "NotRecognized", host="bbconnect.example", now=LATER))

    assert document.find("SOAP:Body/eb:StatusResponse/eb:Timestamp", NS) is None
    assert parsed.status_response == ("NotRecognized", None)


def test_given_a_forwarded_message_when_answered_then_the_timestamp_is_optional():
    received = status_request(CPA_ID, LOGIUS, OURS, "m@x", host="logius.example", now=NOW)

    _, parsed = roundtrip(status_response_for(received, "Forwarded", host="bbconnect.example", now=LATER))

    assert parsed.status_response == ("Forwarded", None)


@pytest.mark.parametrize(
    ("status", "timestamp", "message"),
    [
        ("Received", None, "needs the Timestamp"),
        ("Processed", None, "needs the Timestamp"),
        ("NotRecognized", NOW, "carries no Timestamp"),
        ("UnAuthorized", NOW, "carries no Timestamp"),
        ("Lost", None, "messageStatus must be one of"),
    ],
)
def test_given_an_inconsistent_status_answer_when_built_then_it_is_refused(status, timestamp, message):
    received = status_request(CPA_ID, LOGIUS, OURS, "m@x", host="logius.example", now=NOW)

    with pytest.raises(ValueError, match=message):
        status_response_for(received, status, timestamp, host="x", now=LATER)


def test_given_a_ping_when_a_status_response_is_built_for_it_then_it_is_refused():
    with pytest.raises(ValueError):
        status_response_for(ping(CPA_ID, LOGIUS, OURS, host="l", now=NOW), "NotRecognized", host="x", now=NOW)


def test_given_an_inbound_status_response_with_an_unknown_status_when_parsed_then_it_is_refused():
    received = status_request(CPA_ID, LOGIUS, OURS, "m@x", host="logius.example", now=NOW)
    headers, body = serialize(status_response_for(received, "NotRecognized", host="x", now=LATER))

    with pytest.raises(EbmsParseError) as caught:
        parse(headers["Content-Type"], body.replace(b'eb:messageStatus="NotRecognized"', b'eb:messageStatus="Lost"'))

    assert caught.value.code == "ValueNotRecognized"


def test_given_a_status_request_with_a_payload_when_serialized_then_it_is_refused():
    request = status_request(CPA_ID, OURS, LOGIUS, "m@x", host="x", now=NOW)
    bad = EbmsMessage(**{**request.__dict__, "payloads": (Payload("p@x", "text/xml", b"<a/>"),)})

    with pytest.raises(ValueError, match="carries no payload"):
        serialize(bad)


def test_the_message_statuses_are_those_of_the_schema(shared_dir):
    xsd = etree.parse(str(shared_dir / "ebms" / "msg-header-2_0.xsd"))
    XS = "http://www.w3.org/2001/XMLSchema"

    values = xsd.xpath(
        "//xs:simpleType[@name='messageStatus.type']//xs:enumeration/@value", namespaces={"xs": XS}
    )

    assert tuple(values) == MESSAGE_STATUSES


# --------------------------------------------------------------------------------------------------
# Signed-profile header and the envelope hook
# --------------------------------------------------------------------------------------------------


def test_given_a_signed_profile_message_when_serialized_then_ack_requested_is_signed_true_and_read_back():
    message = EbmsMessage(
        cpa_id=CPA_ID, conversation_id="c", service=BERICHTENBOX_SERVICE, service_type=SERVICE_TYPE,
        action=ACTION_BATCH_REQUEST, from_party=OURS, to_party=LOGIUS, message_id="m@x", timestamp=NOW,
        ack_requested=True, ack_signature_requested=True,
    )

    headers, body = serialize(message)
    parsed = parse(headers["Content-Type"], body)

    assert b'eb:signed="true"' in body
    assert parsed.ack_signature_requested
    assert parsed.soap_envelope == body
    assert envelope_of(message) == body


def test_given_ack_signature_without_ack_requested_when_serialized_then_it_is_refused():
    message = EbmsMessage(
        cpa_id=CPA_ID, conversation_id="c", service=BERICHTENBOX_SERVICE, service_type=SERVICE_TYPE,
        action=ACTION_BATCH_REQUEST, from_party=OURS, to_party=LOGIUS, message_id="m@x", timestamp=NOW,
        ack_signature_requested=True,
    )

    with pytest.raises(ValueError, match="needs ack_requested"):
        serialize(message)


# --------------------------------------------------------------------------------------------------
# classify_errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["SecurityFailure", "Inconsistent", "ValueNotRecognized", "NotSupported", "OtherXml", "MimeProblem",
     "TimeToLiveExpired"],
)
@pytest.mark.parametrize("severity", ["Error", "Warning"])
def test_given_an_error_no_resend_can_cure_when_classified_then_it_is_permanent(code, severity):
    assert classify_errors([EbmsError(code, severity)]) == "permanent"


def test_given_a_delivery_failure_warning_when_classified_then_a_retry_is_worthwhile():
    assert classify_errors([EbmsError("DeliveryFailure", "Warning")]) == "retry"


def test_given_only_warnings_with_unknown_codes_when_classified_then_retry():
    assert classify_errors([EbmsError("Unknown", "Warning"), EbmsError("SomethingNew", "Warning")]) == "retry"


@pytest.mark.parametrize("code", ["DeliveryFailure", "Unknown", "SomethingNew"])
def test_given_any_error_of_severity_error_when_classified_then_it_is_permanent(code):
    assert classify_errors([EbmsError(code, "Error")]) == "permanent"


def test_given_a_retryable_warning_next_to_a_permanent_error_when_classified_then_permanent_wins():
    errors = [EbmsError("DeliveryFailure", "Warning"), EbmsError("Inconsistent", "Warning")]

    assert classify_errors(errors) == "permanent"
    assert classify_errors(reversed(errors)) == "permanent"


def test_given_a_message_error_without_errors_when_classified_then_it_is_permanent():
    assert classify_errors([]) == "permanent"


def test_given_a_parsed_message_error_when_its_errors_are_classified_then_the_answer_follows_them():
    business = EbmsMessage(
        cpa_id=CPA_ID, conversation_id="c", service=BERICHTENBOX_SERVICE, service_type=SERVICE_TYPE,
        action=ACTION_BATCH_REQUEST, from_party=OURS, to_party=LOGIUS, message_id="m@x", timestamp=NOW,
    )
    from bbconnect.ebms.message import message_error_for

    headers, body = serialize(message_error_for(business, [EbmsError("DeliveryFailure", "Warning")], host="l", now=NOW))

    assert classify_errors(parse(headers["Content-Type"], body).errors) == "retry"

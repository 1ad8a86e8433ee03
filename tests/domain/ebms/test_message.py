"""bbconnect.ebms.message: ebMS 2.0 envelopes (Digikoppeling osb-rm), checked against the OASIS schemas."""
from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from lxml import etree

from bbconnect.ebms import message as ebms
from bbconnect.ebms.message import (
    ACTION_ACKNOWLEDGMENT,
    ACTION_BATCH_REQUEST,
    ACTION_BATCH_RESULT,
    ACTION_MESSAGE_ERROR,
    BERICHTENBOX_SERVICE,
    MSH_SERVICE,
    ROLE_LOGIUS,
    ROLE_SENDER,
    SERVICE_TYPE,
    EbmsError,
    EbmsMessage,
    EbmsParseError,
    Party,
    Payload,
    acknowledgment_for,
    is_ebms_soap_action,
    message_error_for,
    new_message_id,
    parse,
    serialize,
    ttl_for,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
EB = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
XLINK = "http://www.w3.org/1999/xlink"
NS = {"SOAP": SOAP, "eb": EB, "xlink": XLINK}
SENDER_OIN = "00000001234567890000"
LOGIUS_OIN = "00000004003214345001"
NOW = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
BATCH_XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<Berichten xmlns="urn:x">\r\n  <a>1</a>\n</Berichten>\n'
PDF = b"%PDF-1.7\r\n%\xe2\xe3\xcf\xd3\r\n--not-a-boundary\r\n\x00\x01\x02\xff" + bytes(range(256))


class LocalCatalog(etree.Resolver):
    """Resolves schema imports by file name from the folder holding the ebMS schemas; never the network."""

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
    """SOAP 1.1 envelope.xsd + msg-header-2_0.xsd: ebMS header blocks are validated through the
    envelope's lax wildcards."""
    folder = shared_dir / "ebms"
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(LocalCatalog(folder))
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:import namespace="{SOAP}" schemaLocation="envelope.xsd"/>
      <xs:import namespace="{EB}" schemaLocation="msg-header-2_0.xsd"/>
    </xs:schema>""".encode()
    return etree.XMLSchema(etree.fromstring(wrapper, parser, base_url=str(folder / "wrapper.xsd")))


def assert_valid(schema: etree.XMLSchema, envelope: bytes) -> etree._Element:
    document = etree.fromstring(envelope)
    if not schema.validate(document):
        raise AssertionError(f"schema-invalid: {schema.error_log}")
    return document


def mime_parts(headers: dict[str, str], body: bytes) -> list:
    """Split with the standard library's MIME parser, independent of the code under test."""
    raw = f"Content-Type: {headers['Content-Type']}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = message_from_bytes(raw, policy=policy.HTTP)
    assert message.is_multipart()
    return list(message.iter_parts())


def business_message(**overrides) -> EbmsMessage:
    values = dict(
        cpa_id="BB_00000001234567890000_00000004003214345001_1",
        conversation_id="conv-6f1c6c8e",
        service=BERICHTENBOX_SERVICE,
        service_type=SERVICE_TYPE,
        action=ACTION_BATCH_REQUEST,
        from_party=Party(SENDER_OIN, ROLE_SENDER),
        to_party=Party(LOGIUS_OIN, ROLE_LOGIUS),
        message_id="6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001@bbconnect.example.nl",
        timestamp=NOW,
        time_to_live=NOW + timedelta(minutes=30),
        ack_requested=True,
        duplicate_elimination=True,
        payloads=(Payload("batch-1@bbconnect.example.nl", "text/xml", BATCH_XML),),
    )
    values.update(overrides)
    return EbmsMessage(**values)


def soap_part(headers: dict[str, str], body: bytes) -> bytes:
    if headers["Content-Type"].startswith("text/xml"):
        return body
    return mime_parts(headers, body)[0].get_payload(decode=True)


def header_blocks(envelope: bytes) -> list[str]:
    root = etree.fromstring(envelope)
    return [etree.QName(child).localname for child in root.find(f"{{{SOAP}}}Header")]


# --------------------------------------------------------------------------------------------------
# Serialising a business message
# --------------------------------------------------------------------------------------------------


def test_business_message_is_multipart_with_a_schema_valid_envelope(ebms_schema) -> None:
    # Given a GLOBE batch request with one payload
    msg = business_message()
    # When serialised
    headers, body = serialize(msg)
    # Then the HTTP headers are the ebMS ones
    assert headers["SOAPAction"] == '"ebXML"'
    content_type = headers["Content-Type"]
    assert content_type.startswith("multipart/related; boundary=")
    assert 'type="text/xml"' in content_type
    assert f'start="<{msg.message_id}>"' in content_type
    # And the first part is the envelope, with the MessageId as Content-ID
    parts = mime_parts(headers, body)
    assert len(parts) == 2
    assert parts[0]["Content-ID"] == f"<{msg.message_id}>"
    assert parts[0].get_content_type() == "text/xml"
    # And the envelope validates against envelope.xsd + msg-header-2_0.xsd
    root = assert_valid(ebms_schema, parts[0].get_payload(decode=True))
    mh = root.find("SOAP:Header/eb:MessageHeader", NS)
    assert mh.get(f"{{{EB}}}version") == "2.0"
    assert mh.get(f"{{{SOAP}}}mustUnderstand") == "1"
    assert mh.findtext("eb:From/eb:PartyId", namespaces=NS) == SENDER_OIN
    assert mh.find("eb:From/eb:PartyId", NS).get(f"{{{EB}}}type") == "urn:osb:oin"
    assert mh.findtext("eb:From/eb:Role", namespaces=NS) == "SR"
    assert mh.findtext("eb:To/eb:Role", namespaces=NS) == "SP"
    assert mh.find("eb:Service", NS).get(f"{{{EB}}}type") == "urn:osb:services"
    assert mh.findtext("eb:Service", namespaces=NS) == "MIJNOVERHEID.ebMS.BB.2.0"
    assert mh.findtext("eb:Action", namespaces=NS) == "GLOBE-R-BV-Request"
    assert mh.findtext("eb:MessageData/eb:Timestamp", namespaces=NS) == "2025-03-01T10:00:00Z"
    assert mh.findtext("eb:MessageData/eb:TimeToLive", namespaces=NS) == "2025-03-01T10:30:00Z"
    assert mh.find("eb:DuplicateElimination", NS) is not None
    ack = root.find("SOAP:Header/eb:AckRequested", NS)
    assert ack.get(f"{{{SOAP}}}actor") == "urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"
    assert ack.get(f"{{{EB}}}signed") == "false"
    # And the Manifest references the payload part by cid:
    reference = root.find("SOAP:Body/eb:Manifest/eb:Reference", NS)
    assert reference.get(f"{{{XLINK}}}href") == "cid:batch-1@bbconnect.example.nl"
    assert reference.get(f"{{{XLINK}}}type") == "simple"
    assert parts[1]["Content-ID"] == "<batch-1@bbconnect.example.nl>"
    assert parts[1].get_content_type() == "text/xml"


def test_the_schema_check_really_bites(ebms_schema) -> None:
    # Given a valid envelope with eb:version removed from the MessageHeader
    headers, body = serialize(business_message())
    envelope = soap_part(headers, body).replace(b'<eb:MessageHeader eb:version="2.0"', b"<eb:MessageHeader", 1)
    # When validated, Then the schema refuses it
    assert not ebms_schema.validate(etree.fromstring(envelope))


def test_mime_structure_uses_crlf_line_ends() -> None:
    # Given payload bytes without any line break
    msg = business_message(payloads=(Payload("p@h", "application/xml", b"<a/>"),))
    # When serialised, Then every line feed in the body is part of a CRLF
    _, body = serialize(msg)
    assert body.count(b"\n") == body.count(b"\r\n") > 0
    assert body.endswith(b"--\r\n")


def test_serialisation_is_deterministic() -> None:
    assert serialize(business_message()) == serialize(business_message())


def test_signal_without_payload_is_plain_text_xml(ebms_schema) -> None:
    # Given a message without payloads
    msg = business_message(payloads=(), action="Ping", ack_requested=False)
    # When serialised, Then it is a bare SOAP envelope, without Manifest
    headers, body = serialize(msg)
    assert headers == {"SOAPAction": '"ebXML"', "Content-Type": "text/xml; charset=UTF-8"}
    root = assert_valid(ebms_schema, body)
    assert root.find("SOAP:Body/eb:Manifest", NS) is None
    assert len(root.find("SOAP:Body", NS)) == 0


def test_header_blocks_come_in_the_documented_order(ebms_schema) -> None:
    # Given a message with SyncReply, AckRequested and an ErrorList
    msg = business_message(
        sync_reply=True,
        ref_to_message_id="earlier@h",
        errors=(EbmsError("DeliveryFailure", "Warning", "uncertain", "earlier@h"),),
    )
    # When serialised
    headers, body = serialize(msg)
    envelope = soap_part(headers, body)
    # Then the blocks are MessageHeader, SyncReply, AckRequested, ErrorList, and the envelope is valid
    assert header_blocks(envelope) == ["MessageHeader", "SyncReply", "AckRequested", "ErrorList"]
    root = assert_valid(ebms_schema, envelope)
    sync = root.find("SOAP:Header/eb:SyncReply", NS)
    assert sync.get(f"{{{SOAP}}}actor") == "http://schemas.xmlsoap.org/soap/actor/next"


# --------------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------------


def test_round_trip_keeps_every_field_and_the_exact_payload_bytes() -> None:
    # Given a message using every optional field, with an XML and a binary payload
    msg = business_message(
        ref_to_message_id="request-1@logius.example",
        sync_reply=True,
        payloads=(
            Payload("batch-1@bbconnect.example.nl", "text/xml; charset=UTF-8", BATCH_XML),
            Payload("brief/2@bbconnect.example.nl", "application/pdf", PDF),
        ),
    )
    # When serialised and parsed back
    headers, body = serialize(msg)
    parsed = parse(headers["Content-Type"], body)
    # Then it is equal field for field
    assert parsed == msg
    assert parsed.payloads[1].data == PDF
    # And the binary part was marked as such, with a cid: URL-encoded in the Manifest
    assert b"Content-Transfer-Encoding: binary" in body
    assert b'xlink:href="cid:brief%2F2@bbconnect.example.nl"' in body


def test_standard_mime_parser_reads_the_same_payload_bytes() -> None:
    headers, body = serialize(business_message(payloads=(Payload("x@h", "application/pdf", PDF),)))
    assert mime_parts(headers, body)[1].get_payload(decode=True) == PDF


def test_payload_containing_the_default_boundary_gets_another_one() -> None:
    # Given a payload that contains exactly the boundary serialize would pick for it
    probe = business_message(payloads=(Payload("p@h", "application/octet-stream", b"x" * 200),))
    boundary = re.search(r'boundary="([^"]+)"', serialize(probe)[0]["Content-Type"]).group(1)
    evil = (b"\r\n--" + boundary.encode() + b"\r\n").ljust(200, b"y")
    msg = replace(probe, payloads=(Payload("p@h", "application/octet-stream", evil),))
    # When serialised, Then another boundary is used and the payload survives
    headers, body = serialize(msg)
    assert boundary not in headers["Content-Type"]
    assert parse(headers["Content-Type"], body) == msg


def test_timestamps_with_offsets_parse_to_the_same_instant() -> None:
    # Given a message whose timestamp is in +01:00
    cet = timezone(timedelta(hours=1))
    msg = business_message(timestamp=datetime(2025, 3, 1, 11, 0, tzinfo=cet))
    # When round-tripped, Then the instant is the same (written as UTC)
    headers, body = serialize(msg)
    assert b"<eb:Timestamp>2025-03-01T10:00:00Z</eb:Timestamp>" in soap_part(headers, body)
    assert parse(headers["Content-Type"], body).timestamp == NOW


# --------------------------------------------------------------------------------------------------
# Acknowledgment and MessageError
# --------------------------------------------------------------------------------------------------


def test_acknowledgment_swaps_parties_and_refers_to_the_message(ebms_schema) -> None:
    # Given a received reliable business message (an inbound GLOBE result)
    received = business_message(
        action=ACTION_BATCH_RESULT,
        from_party=Party(LOGIUS_OIN, ROLE_LOGIUS),
        to_party=Party(SENDER_OIN, ROLE_SENDER),
        message_id="result-1@logius.example",
    )
    # When acknowledged
    ack = acknowledgment_for(received, host="bbconnect.example.nl", now=NOW + timedelta(seconds=3))
    # Then the parties are swapped without Role, and it points at the received message
    assert ack.from_party == Party(SENDER_OIN, None)
    assert ack.to_party == Party(LOGIUS_OIN, None)
    assert (ack.cpa_id, ack.conversation_id) == (received.cpa_id, received.conversation_id)
    assert (ack.service, ack.service_type, ack.action) == (MSH_SERVICE, None, ACTION_ACKNOWLEDGMENT)
    assert ack.ref_to_message_id == ack.acknowledgment_ref == received.message_id
    assert ack.message_id.endswith("@bbconnect.example.nl") and ack.message_id != received.message_id
    assert not ack.ack_requested and not ack.duplicate_elimination and ack.payloads == ()
    # And on the wire: plain text/xml, a valid envelope without AckRequested, with eb:Acknowledgment
    headers, body = serialize(ack)
    assert headers["Content-Type"] == "text/xml; charset=UTF-8"
    root = assert_valid(ebms_schema, body)
    assert header_blocks(body) == ["MessageHeader", "Acknowledgment"]
    assert root.find("SOAP:Header/eb:MessageHeader/eb:From/eb:Role", NS) is None
    block = root.find("SOAP:Header/eb:Acknowledgment", NS)
    assert block.get(f"{{{SOAP}}}actor") == "urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"
    assert block.findtext("eb:Timestamp", namespaces=NS) == "2025-03-01T10:00:03Z"
    assert block.findtext("eb:RefToMessageId", namespaces=NS) == "result-1@logius.example"
    assert block.findtext("eb:From/eb:PartyId", namespaces=NS) == SENDER_OIN
    assert root.findtext("SOAP:Header/eb:MessageHeader/eb:Service", namespaces=NS) == MSH_SERVICE
    assert root.find("SOAP:Header/eb:MessageHeader/eb:Service", NS).get(f"{{{EB}}}type") is None
    # And it round-trips
    assert parse(headers["Content-Type"], body) == ack


def test_signals_are_not_acknowledged_and_acks_never_request_acks() -> None:
    # Given an acknowledgment
    ack = acknowledgment_for(business_message(), host="h", now=NOW)
    # When asked to acknowledge it, Then refused (it would loop)
    with pytest.raises(ValueError, match="never answered with an Acknowledgment"):
        acknowledgment_for(ack, host="h", now=NOW)
    # And a MessageError about it is refused too (ebMS2 §4.2.4.2)
    with pytest.raises(ValueError, match="never answered with a MessageError"):
        message_error_for(ack, [EbmsError("Inconsistent")], host="h", now=NOW)
    # And an acknowledgment with AckRequested cannot be serialised
    with pytest.raises(ValueError, match="never carry AckRequested"):
        serialize(replace(ack, ack_requested=True))


def test_message_error_carries_the_error_list(ebms_schema) -> None:
    # Given a received message and two problems with it
    received = business_message()
    errors = [
        EbmsError("Inconsistent", "Error", "CPA not found", location="//MessageHeader/CPAId"),
        EbmsError("NotSupported", "Warning"),
    ]
    # When a MessageError is made
    error = message_error_for(received, errors, host="bbconnect.example.nl", now=NOW)
    # Then it is a signal pointing at the received message
    assert (error.service, error.action, error.ref_to_message_id) == (
        MSH_SERVICE, ACTION_MESSAGE_ERROR, received.message_id,
    )
    assert all(e.ref_to_message_id == received.message_id for e in error.errors)
    # And its envelope validates, with highestSeverity Error
    headers, body = serialize(error)
    root = assert_valid(ebms_schema, body)
    error_list = root.find("SOAP:Header/eb:ErrorList", NS)
    assert error_list.get(f"{{{EB}}}highestSeverity") == "Error"
    first = error_list.find("eb:Error", NS)
    assert first.get(f"{{{EB}}}errorCode") == "Inconsistent"
    assert first.get(f"{{{EB}}}codeContext") == "urn:oasis:names:tc:ebxml-msg:service:errors"
    assert first.get(f"{{{EB}}}location") == "//MessageHeader/CPAId"
    assert first.find("eb:Description", NS).get("{http://www.w3.org/XML/1998/namespace}lang") == "en-US"
    # And it round-trips
    assert parse(headers["Content-Type"], body) == error


def test_warnings_only_give_highest_severity_warning() -> None:
    error = message_error_for(business_message(), [EbmsError("DeliveryFailure", "Warning")], host="h", now=NOW)
    assert b'eb:highestSeverity="Warning"' in serialize(error)[1]


def test_message_error_needs_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        message_error_for(business_message(), [], host="h", now=NOW)


# --------------------------------------------------------------------------------------------------
# Parsing what other MSHs send
# --------------------------------------------------------------------------------------------------

FOREIGN_ENVELOPE = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="{SOAP}" xmlns:ns2="{EB}" xmlns:xl="{XLINK}">
 <soapenv:Header>
  <ns2:MessageHeader ns2:version="2.0" soapenv:mustUnderstand="1">
   <ns2:From><ns2:PartyId ns2:type="urn:osb:oin">{LOGIUS_OIN}</ns2:PartyId><ns2:Role>SP</ns2:Role></ns2:From>
   <ns2:To><ns2:PartyId ns2:type="urn:osb:oin">{SENDER_OIN}</ns2:PartyId><ns2:Role>SR</ns2:Role></ns2:To>
   <ns2:CPAId>cpa-1</ns2:CPAId>
   <ns2:ConversationId>c-1</ns2:ConversationId>
   <ns2:Service ns2:type="urn:osb:services">MIJNOVERHEID.ebMS.BB.2.0</ns2:Service>
   <ns2:Action>GLOBE-R-BV-Result</ns2:Action>
   <ns2:MessageData>
    <ns2:MessageId>m-1@logius.example</ns2:MessageId>
    <ns2:Timestamp>2025-03-01T11:00:00.123+01:00</ns2:Timestamp>
   </ns2:MessageData>
   <ns2:DuplicateElimination/>
  </ns2:MessageHeader>
  <ns2:AckRequested ns2:version="2.0" soapenv:mustUnderstand="1"
      soapenv:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH" ns2:signed="false"/>
 </soapenv:Header>
 <soapenv:Body>
  <ns2:Manifest ns2:version="2.0"><ns2:Reference xl:href="cid:result-1" xl:type="simple"/></ns2:Manifest>
 </soapenv:Body>
</soapenv:Envelope>"""
RESULT_XML = b"<BerichtVerwerkResponse/>"


def test_foreign_prefixes_lf_line_ends_preamble_and_start_parameter_are_understood() -> None:
    # Given a multipart message with LF line ends, a preamble, the payload part first and the
    # envelope found through the start parameter (unquoted boundary, mixed-case parameters)
    body = (
        b"This is a MIME preamble.\n"
        b"--XYZ\n"
        b"Content-Type: application/xml\nContent-ID: <result-1>\n\n" + RESULT_XML + b"\n"
        b"--XYZ\n"
        b"Content-Type: text/xml; charset=UTF-8\nContent-ID: <soap-part>\n\n"
        + FOREIGN_ENVELOPE.encode() + b"\n"
        b"--XYZ--\n"
    )
    content_type = 'Multipart/Related; Boundary=XYZ; type="text/xml"; start="<soap-part>"'
    # When parsed
    msg = parse(content_type, body)
    # Then the header and the payload are read
    assert msg.action == ACTION_BATCH_RESULT
    assert msg.from_party == Party(LOGIUS_OIN, "SP")
    assert msg.timestamp == datetime(2025, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert msg.ack_requested and msg.duplicate_elimination and not msg.sync_reply
    assert msg.payloads == (Payload("result-1", "application/xml", RESULT_XML),)


def test_base64_encoded_payload_part_is_decoded() -> None:
    body = (
        b"--b\r\nContent-Type: text/xml\r\n\r\n" + FOREIGN_ENVELOPE.encode() + b"\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-ID: <result-1>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PDF).replace(b"\n", b"\r\n") + b"\r\n"
        b"--b--\r\n"
    )
    msg = parse('multipart/related; boundary="b"; type="text/xml"', body)
    assert msg.payloads[0].data == PDF


def test_plain_text_xml_envelope_is_accepted() -> None:
    envelope = FOREIGN_ENVELOPE.replace(
        '<ns2:Manifest ns2:version="2.0"><ns2:Reference xl:href="cid:result-1" xl:type="simple"/></ns2:Manifest>', ""
    )
    msg = parse("text/xml; charset=utf-8", envelope.encode())
    assert msg.message_id == "m-1@logius.example" and msg.payloads == ()


@pytest.mark.parametrize(
    ("content_type", "body", "code", "message"),
    [
        ("application/json", b"{}", "MimeProblem", "unsupported Content-Type"),
        ("multipart/related", b"--x\r\n\r\n--x--", "MimeProblem", "no boundary"),
        ('multipart/related; boundary="x"', b"no delimiter here", "MimeProblem", "no opening boundary"),
        (
            'multipart/related; boundary="x"',
            b"--x\r\nContent-Type: text/xml\r\n\r\n<a/>",
            "MimeProblem",
            "no closing boundary",
        ),
        ('multipart/related; boundary="x"', b"--x\r\n\r\n" + FOREIGN_ENVELOPE.encode() + b"\r\n--x--\r\n", "MimeProblem", "no MIME part for 'cid:result-1'"),
        ("text/xml", FOREIGN_ENVELOPE.encode().replace(b"cid:result-1", b"http://evil/x"), "MimeProblem", "not a cid: reference"),
        ("text/xml", FOREIGN_ENVELOPE.encode().replace(b'ns2:version="2.0" soapenv:mustUnderstand="1">', b'ns2:version="1.0" soapenv:mustUnderstand="1">', 1), "Inconsistent", "version '1.0'"),
        ("text/xml", f'<s:Envelope xmlns:s="{SOAP}"><s:Body/></s:Envelope>'.encode(), "OtherXml", "lacks eb:MessageHeader"),
        ("text/xml", b"<Envelope/>", "OtherXml", "expected a SOAP 1.1 Envelope"),
        ("text/xml", b"<broken", "OtherXml", "refused: XML document is not well-formed"),
        ("text/xml", b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', "OtherXml", "DOCTYPE"),
        (
            "text/xml",
            FOREIGN_ENVELOPE.encode().replace(b"<ns2:CPAId>cpa-1</ns2:CPAId>", b""),
            "OtherXml",
            "lacks eb:CPAId",
        ),
        (
            "text/xml",
            FOREIGN_ENVELOPE.encode().replace(b"2025-03-01T11:00:00.123+01:00", b"yesterday"),
            "OtherXml",
            "eb:Timestamp is not an xs:dateTime",
        ),
        (
            "text/xml",
            FOREIGN_ENVELOPE.encode().replace(
                b"</soapenv:Header>",
                b'<ns2:MessageOrder ns2:version="2.0" soapenv:mustUnderstand="1"><ns2:SequenceNumber>1</ns2:SequenceNumber></ns2:MessageOrder></soapenv:Header>',
            ),
            "NotSupported",
            "MessageOrder",
        ),
        (
            "text/xml",
            f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>CPA x not found!</faultstring></s:Fault></s:Body></s:Envelope>'.encode(),
            "OtherXml",
            "SOAP Fault received: CPA x not found!",
        ),
    ],
)
def test_malformed_input_raises_ebms_parse_error_with_a_code(content_type: str, body: bytes, code: str, message: str) -> None:
    with pytest.raises(EbmsParseError, match=message) as caught:
        parse(content_type, body)
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"ebXML"', True), ("ebXML", True), (' "ebXML" ', True), ('"ebxml"', False), ("", False), (None, False), ('"other"', False)],
)
def test_soap_action_is_accepted_with_or_without_quotes(value: str | None, expected: bool) -> None:
    assert is_ebms_soap_action(value) is expected


def test_ttl_is_timestamp_plus_retries_plus_one_intervals() -> None:
    # Given the example CPA's 5 retries every 5 minutes
    # Then the TTL is 30 minutes after the timestamp
    assert ttl_for(NOW, 5, timedelta(minutes=5)) == NOW + timedelta(minutes=30)
    # And the interval may be given in seconds
    assert ttl_for(NOW, 5, 300) == NOW + timedelta(minutes=30)
    with pytest.raises(ValueError):
        ttl_for(NOW, -1, timedelta(minutes=5))
    with pytest.raises(ValueError):
        ttl_for(datetime(2025, 3, 1), 5, timedelta(minutes=5))


def test_new_message_id_is_uuid_at_host() -> None:
    first, second = new_message_id("bbconnect.example.nl"), new_message_id("bbconnect.example.nl")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}@bbconnect\.example\.nl", first)
    assert first != second
    for bad in ("", "a b", "x@y", "<h>"):
        with pytest.raises(ValueError):
            new_message_id(bad)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"message_id": "has space@h"}, "message_id"),
        ({"action": ""}, "action"),
        ({"timestamp": datetime(2025, 3, 1)}, "timezone-aware"),
        ({"payloads": (Payload("a@h", "text/xml", b"1"), Payload("a@h", "text/xml", b"2"))}, "not unique"),
        ({"errors": (EbmsError("Unknown", "Fatal"),)}, "severity must be Error or Warning"),
    ],
)
def test_unsendable_messages_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        serialize(business_message(**overrides))


def test_constants_match_the_berichtenbox_contract() -> None:
    assert ebms.SERVICE_TYPE == "urn:osb:services"
    assert ebms.BERICHTENBOX_SERVICE == "MIJNOVERHEID.ebMS.BB.2.0"
    assert (ebms.ACTION_BATCH_REQUEST, ebms.ACTION_BATCH_RESULT, ebms.ACTION_SUBSCRIPTION_REQUEST) == (
        "GLOBE-R-BV-Request", "GLOBE-R-BV-Result", "GLOBE-R-A-Request",
    )
    assert (ebms.ROLE_SENDER, ebms.ROLE_LOGIUS, ebms.PARTY_ID_TYPE) == ("SR", "SP", "urn:osb:oin")
    assert (ebms.ACTION_BV_REQUEST, ebms.ACTION_BV_RESULT, ebms.ACTION_A_REQUEST) == (
        "GLOBE-R-BV-Request", "GLOBE-R-BV-Result", "GLOBE-R-A-Request",
    )

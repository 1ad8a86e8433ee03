"""The Logius simulator, driven by hand-built messages (independent of bbconnect's sender code)."""
from __future__ import annotations

import base64
import datetime as dt
import email.parser
import email.policy
import gzip
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree

from bbconnect_local.mtls_server import HttpRequest, HttpResponse, MutualTlsServer, https_post
from bbconnect_local.pki import Identity, TestPKI
from bbconnect_local.simulator import NIL_GUID, LogiusSimulator, SimulatorConfig, mask_bsn
from bbconnect_local.simulator._xml import redact_bsns
from bbconnect_local.simulator.globe import structural_errors

SENDER_OIN = "00000001001234567000"
CLIENT_OF_INTERMEDIARY = "00000001005555555000"
STRANGER_OIN = "00000001009999999000"
LOGIUS_OIN = "00000004003214345001"
CPA_ID = "BB_00000001001234567000_00000004003214345001_1"
SUBSCRIBED = "999990019"
UNSUBSCRIBED = "999990020"
BROKEN_BOX = "999990032"

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
EB = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
WSA = "http://www.w3.org/2005/08/addressing"
BATCH_NS = "http://schemas.rdw.nl/GEB/BerichtVerwerkService/Types/2009/01"
BERICHT_NS = "http://schemas.rdw.nl/GEB/BerichtenProsessor/Bericht/Types/2009/01"
RESULT_NS = "http://schemas.rdw.nl/GEB/BerichtVerwerkService/BerichtResultaat/Types/2009/01"
WUS_ACTION = "http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01/IBerichtenboxValidatieService/ValidateAbonnementen"
NS = {"SOAP": SOAP, "eb": EB, "wsa": WSA, "ns1": RESULT_NS}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


# -- hand-built messages --------------------------------------------------------------------------


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Brief:
    bsn: str
    bericht_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    berichttype: str = "AANSLAG"
    onderwerp: str = "Uw aanslag gemeentelijke belastingen"
    publicatie: dt.datetime | None = None
    pdf: bytes | None = None


def berichten(letters: list[Brief], *, batch_id: str | None = None, leverancier: str = SENDER_OIN) -> tuple[bytes, str]:
    batch_id = batch_id or str(uuid.uuid4())
    parts = [
        f'<Berichten xmlns="{BATCH_NS}" xmlns:b="{BERICHT_NS}">',
        f"<BatchInformatie><BatchID>{batch_id}</BatchID><AanmaakDatum>{iso(now_utc())}</AanmaakDatum>"
        f"<BerichtLeverancierID>{leverancier}</BerichtLeverancierID></BatchInformatie>",
    ]
    for letter in letters:
        publicatie = f"<b:PublicatieDatum>{iso(letter.publicatie)}</b:PublicatieDatum>" if letter.publicatie else ""
        bijlagen = ""
        if letter.pdf is not None:
            bijlagen = (
                "<b:Bijlagen><b:Bijlage>"
                f"<b:Inhoud>{base64.b64encode(letter.pdf).decode()}</b:Inhoud><b:BijlageType>Pdf</b:BijlageType>"
                "<b:Omschrijving>Aanslag</b:Omschrijving><b:Volgorde>1</b:Volgorde>"
                "</b:Bijlage></b:Bijlagen>"
            )
        parts.append(
            "<b:Bericht><b:BerichtInformatie>"
            f"<b:BatchID>{batch_id}</b:BatchID><b:BerichtID>{letter.bericht_id}</b:BerichtID>"
            f"<b:BerichtType>{letter.berichttype}</b:BerichtType>{publicatie}"
            f"<b:Onderwerp>{letter.onderwerp}</b:Onderwerp><b:BerichtTekst>Zie bijlage.</b:BerichtTekst>"
            f"<b:Referentie>2026-001</b:Referentie><b:GebruikerID>{letter.bsn}</b:GebruikerID>"
            f"<b:SoortGebruiker>Burger</b:SoortGebruiker></b:BerichtInformatie>{bijlagen}</b:Bericht>"
        )
    parts.append("</Berichten>")
    return b'<?xml version="1.0" encoding="UTF-8"?>' + "".join(parts).encode("utf-8"), batch_id


def ebms_message(
    payload: bytes,
    *,
    message_id: str | None = None,
    from_oin: str = SENDER_OIN,
    to_oin: str = LOGIUS_OIN,
    action: str = "GLOBE-R-BV-Request",
    sync_reply: bool = True,
    manifest_cid: str | None = None,
    soap_action: str = '"ebXML"',
) -> tuple[bytes, dict[str, str], str]:
    message_id = message_id or f"{uuid.uuid4()}@sender.example"
    payload_cid = f"payload-{uuid.uuid4()}@sender.example"
    sync = (
        '<eb:SyncReply eb:version="2.0" SOAP:mustUnderstand="1" SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next"/>'
        if sync_reply else ""
    )
    envelope = f"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP:Envelope xmlns:SOAP="{SOAP}" xmlns:eb="{EB}" xmlns:xlink="http://www.w3.org/1999/xlink">
 <SOAP:Header>
  <eb:MessageHeader eb:version="2.0" SOAP:mustUnderstand="1">
   <eb:From><eb:PartyId eb:type="urn:osb:oin">{from_oin}</eb:PartyId><eb:Role>SR</eb:Role></eb:From>
   <eb:To><eb:PartyId eb:type="urn:osb:oin">{to_oin}</eb:PartyId><eb:Role>SP</eb:Role></eb:To>
   <eb:CPAId>{CPA_ID}</eb:CPAId>
   <eb:ConversationId>conv-{message_id}</eb:ConversationId>
   <eb:Service eb:type="urn:osb:services">MIJNOVERHEID.ebMS.BB.2.0</eb:Service>
   <eb:Action>{action}</eb:Action>
   <eb:MessageData>
    <eb:MessageId>{message_id}</eb:MessageId>
    <eb:Timestamp>{iso(now_utc())}</eb:Timestamp>
    <eb:TimeToLive>{iso(now_utc() + dt.timedelta(hours=1))}</eb:TimeToLive>
   </eb:MessageData>
   <eb:DuplicateElimination/>
  </eb:MessageHeader>
  {sync}
  <eb:AckRequested eb:version="2.0" SOAP:mustUnderstand="1" SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH" eb:signed="false"/>
 </SOAP:Header>
 <SOAP:Body>
  <eb:Manifest eb:version="2.0"><eb:Reference xlink:href="cid:{manifest_cid or payload_cid}" xlink:type="simple"/></eb:Manifest>
 </SOAP:Body>
</SOAP:Envelope>""".encode()
    boundary = f"MIMEBoundary-{uuid.uuid4().hex}"
    body = (
        f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-ID: <{message_id}>\r\n\r\n".encode()
        + envelope
        + f"\r\n--{boundary}\r\nContent-Type: application/xml\r\nContent-ID: <{payload_cid}>\r\n\r\n".encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {
        "SOAPAction": soap_action,
        "Content-Type": f'multipart/related; boundary="{boundary}"; type="text/xml"; start="<{message_id}>"',
    }
    return body, headers, message_id


def wus_request(bsns: list[str], *, message_id: str = "urn:uuid:11111111-2222-3333-4444-555555555555",
                to: bool = True, leverancier: str = SENDER_OIN) -> bytes:
    klanten = "".join(f"<c:Klant><c:Key>{b}</c:Key><c:Rol>Burger</c:Rol></c:Klant>" for b in bsns)
    to_header = "<wsa:To>https://globe.example/wus/BerichtenboxValidatieService</wsa:To>" if to else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{SOAP}" xmlns:wsa="{WSA}">
 <s:Header>{to_header}<wsa:Action>{WUS_ACTION}</wsa:Action><wsa:MessageID>{message_id}</wsa:MessageID></s:Header>
 <s:Body>
  <ValidateAbonnementen xmlns="http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01"
     xmlns:t="http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/Types/2009/01"
     xmlns:c="http://schemas.rdw.nl/GEB/Shared/Types/2009/01">
   <validateAbonnementenAanvraag>
    <t:berichtleverancierCode>{leverancier}</t:berichtleverancierCode><t:berichtTypeCode>AANSLAG</t:berichtTypeCode>
    <t:klanten>{klanten}</t:klanten>
   </validateAbonnementenAanvraag>
  </ValidateAbonnementen>
 </s:Body>
</s:Envelope>""".encode()


# -- the sender's inbound endpoint (a test double that acknowledges results) ---------------------


class SenderEndpoint:
    """Receives GLOBE-R-BV-Result messages, answers a hand-built sync Acknowledgment."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.signals: list[HttpRequest] = []  # async Acknowledgments/MessageErrors (text/xml)
        self.fail_first = 0
        self.received = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.headers.get("Content-Type", "").startswith("text/xml"):
            with self._lock:
                self.signals.append(request)
            return HttpResponse(204, {}, b"")
        with self._lock:
            self.requests.append(request)
            if len(self.requests) <= self.fail_first:
                return HttpResponse(503, {}, b"try again")
        message = mime_parts(request)
        envelope = etree.fromstring(message[0], PARSER)
        message_id = envelope.findtext(".//eb:MessageData/eb:MessageId", namespaces=NS)
        self.received.set()
        return HttpResponse(200, {"Content-Type": "text/xml; charset=UTF-8"}, acknowledgment(message_id))


def acknowledgment(message_id: str) -> bytes:
    """A hand-built standalone Acknowledgment from the sender to Logius."""
    ack = f"""<SOAP:Envelope xmlns:SOAP="{SOAP}" xmlns:eb="{EB}"><SOAP:Header>
<eb:MessageHeader eb:version="2.0" SOAP:mustUnderstand="1">
<eb:From><eb:PartyId eb:type="urn:osb:oin">{SENDER_OIN}</eb:PartyId></eb:From>
<eb:To><eb:PartyId eb:type="urn:osb:oin">{LOGIUS_OIN}</eb:PartyId></eb:To>
<eb:CPAId>{CPA_ID}</eb:CPAId><eb:ConversationId>c</eb:ConversationId>
<eb:Service>urn:oasis:names:tc:ebxml-msg:service</eb:Service><eb:Action>Acknowledgment</eb:Action>
<eb:MessageData><eb:MessageId>{uuid.uuid4()}@sender</eb:MessageId><eb:Timestamp>{iso(now_utc())}</eb:Timestamp>
<eb:RefToMessageId>{message_id}</eb:RefToMessageId></eb:MessageData></eb:MessageHeader>
<eb:Acknowledgment eb:version="2.0" SOAP:mustUnderstand="1" SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH">
<eb:Timestamp>{iso(now_utc())}</eb:Timestamp><eb:RefToMessageId>{message_id}</eb:RefToMessageId></eb:Acknowledgment>
</SOAP:Header><SOAP:Body/></SOAP:Envelope>"""
    return ack.encode()


def mime_parts(request: HttpRequest) -> list[bytes]:
    """The parts of a multipart/related request, read with the stdlib email parser."""
    raw = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + request.body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.get_content_type() == "multipart/related"
    return [part.get_payload(decode=True) for part in message.iter_parts()]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("sim-pki"))


@pytest.fixture(scope="module")
def sender(pki: TestPKI) -> Identity:
    return pki.issue("sender", oin=SENDER_OIN)


@pytest.fixture(scope="module")
def intermediary(pki: TestPKI) -> Identity:
    return pki.issue("intermediary", oin=CLIENT_OF_INTERMEDIARY)


@pytest.fixture
def endpoint(pki: TestPKI, sender: Identity) -> Iterator[tuple[SenderEndpoint, str]]:
    handler = SenderEndpoint()
    with MutualTlsServer(handler, sender, pki.ca_cert_path) as server:
        yield handler, server.base_url + "/ebms-inbound"


@pytest.fixture
def make_simulator(pki: TestPKI) -> Iterator[Callable[..., LogiusSimulator]]:
    started: list[LogiusSimulator] = []

    def make(**overrides: object) -> LogiusSimulator:
        settings: dict[str, object] = {
            "subscribed": {SUBSCRIBED, BROKEN_BOX},
            "result_codes": {BROKEN_BOX: "TechnischProbleem"},
            "authorised_senders": {CLIENT_OF_INTERMEDIARY: {SENDER_OIN}},
            "result_delay_seconds": 0.0,
            "result_retry_interval_seconds": 0.05,
        }
        settings.update(overrides)
        simulator = LogiusSimulator(SimulatorConfig(**settings), pki)  # type: ignore[arg-type]
        simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture
def simulator(make_simulator: Callable[..., LogiusSimulator]) -> LogiusSimulator:
    return make_simulator()


def post(sim: LogiusSimulator, url: str, body: bytes, headers: dict[str, str], identity: Identity) -> HttpResponse:
    return https_post(url, body, headers, identity=identity, ca_path=sim.ca_cert_path)


def deliver(sim: LogiusSimulator, letters: list[Brief], identity: Identity, **kwargs: object) -> tuple[HttpResponse, str, str]:
    payload, batch_id = berichten(letters, **kwargs)  # type: ignore[arg-type]
    body, headers, message_id = ebms_message(payload, from_oin=identity.oin or "")
    return post(sim, sim.ebms_url, body, headers, identity), batch_id, message_id


def codes_of(sim: LogiusSimulator, batch_id: str) -> dict[str, str]:
    assert sim.wait_idle(5)
    record = sim.result_for(batch_id)
    assert record is not None
    return dict(record.codes)


@pytest.fixture(scope="module")
def eb_schema(shared_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(shared_dir / "ebms" / "msg-header-2_0.xsd"), PARSER))


@pytest.fixture(scope="module")
def response_schema(shared_dir: Path) -> etree.XMLSchema:
    path = shared_dir / "logius" / "BerichtVerwerkService" / "Response" / "GLOBEBatchResponse.xsd"
    return etree.XMLSchema(etree.parse(str(path), PARSER))


@pytest.fixture(scope="module")
def request_schema(shared_dir: Path) -> etree.XMLSchema:
    path = shared_dir / "logius" / "BerichtVerwerkService" / "Request" / "GLOBEBatchRequest.xsd"
    return etree.XMLSchema(etree.parse(str(path), PARSER))


# -- WUS ValidateAbonnementen --------------------------------------------------------------------


def test_wus_answers_per_bsn_whether_to_send(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given one subscribed and one unsubscribed BSN
    body = wus_request([SUBSCRIBED, UNSUBSCRIBED])
    # When the sender asks with the SOAPAction unquoted
    response = post(simulator, simulator.wus_url, body,
                    {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": WUS_ACTION}, sender)
    # Then each BSN gets isBerichtSturen, and RelatesTo names the request's MessageID
    assert response.status == 200
    envelope = etree.fromstring(response.body, PARSER)
    answers = {
        a.findtext("{*}klant/{*}Key"): a.findtext("{*}isBerichtSturen")
        for a in envelope.iterfind(".//{*}Abonnement")
    }
    assert answers == {SUBSCRIBED: "true", UNSUBSCRIBED: "false"}
    assert envelope.findtext("SOAP:Header/wsa:RelatesTo", namespaces=NS) == "urn:uuid:11111111-2222-3333-4444-555555555555"
    assert envelope.findtext("SOAP:Header/wsa:Action", namespaces=NS) == WUS_ACTION + "Response"
    assert simulator.wus_calls == 1


def test_wus_response_is_valid_against_the_wsdl_schema(
    simulator: LogiusSimulator, sender: Identity, shared_dir: Path
) -> None:
    # Given the WSDL's schemas (imports mapped to the local files)
    from bbconnect_local.simulator.wus import load_wus_schema

    schema = load_wus_schema(shared_dir / "logius" / "BerichtenboxValidatieService")
    assert schema is not None
    # When the sender asks with a quoted SOAPAction
    response = post(simulator, simulator.wus_url, wus_request([SUBSCRIBED]),
                    {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{WUS_ACTION}"'}, sender)
    # Then the answer's body element is schema-valid (and so was our hand-built request)
    assert response.status == 200
    result = etree.fromstring(response.body, PARSER).find("SOAP:Body", NS)[0]
    assert schema.validate(result), schema.error_log
    request_op = etree.fromstring(wus_request([SUBSCRIBED]), PARSER).find("s:Body", {"s": SOAP})[0]
    assert schema.validate(request_op), schema.error_log


def test_wus_faults_on_251_bsns(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given 251 BSNs (one more than allowed)
    body = wus_request([f"{n:09d}" for n in range(100000000, 100000251)])
    # When the sender asks
    response = post(simulator, simulator.wus_url, body,
                    {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": WUS_ACTION}, sender)
    # Then a SOAP Fault with an ApplicationFault detail (HTTP 500)
    assert response.status == 500
    fault = etree.fromstring(response.body, PARSER).find(".//SOAP:Fault", NS)
    assert fault is not None
    assert fault.find("detail/{http://schemas.rdw.nl/GEB/Shared/Types/2009/01}ApplicationFault") is not None


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"soap_action": "urn:wrong"}, "0003"),
        ({"drop_to": True}, "0005"),
        ({"body": b"<not-xml"}, "0001"),
        ({"leverancier": STRANGER_OIN}, "0002"),
    ],
)
def test_wus_faults_carry_the_digikoppeling_code(
    simulator: LogiusSimulator, sender: Identity, change: dict, code: str
) -> None:
    # Given a request broken in one way
    body = change.get("body") or wus_request([SUBSCRIBED], to=not change.get("drop_to"),
                                             leverancier=change.get("leverancier", SENDER_OIN))
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": change.get("soap_action", WUS_ACTION)}
    # When it is sent / Then the fault string starts with the Digikoppeling WUS code
    response = post(simulator, simulator.wus_url, body, headers, sender)
    assert response.status == 500
    faultstring = etree.fromstring(response.body, PARSER).findtext(".//SOAP:Fault/faultstring", namespaces=NS)
    assert faultstring.startswith(code)


# -- ebMS: synchronous acknowledgment and duplicate elimination ---------------------------------


def test_a_batch_gets_a_sync_acknowledgment(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given a hand-built ebMS message with one letter
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, message_id = ebms_message(payload)
    # When it is POSTed to /ebms
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    # Then HTTP 200 text/xml with an Acknowledgment for that MessageId, parties swapped
    assert response.status == 200
    assert response.header("Content-Type").startswith("text/xml")
    envelope = etree.fromstring(response.body, PARSER)
    header = envelope.find("SOAP:Header/eb:MessageHeader", NS)
    assert header.findtext("eb:Action", namespaces=NS) == "Acknowledgment"
    assert header.findtext("eb:Service", namespaces=NS) == "urn:oasis:names:tc:ebxml-msg:service"
    assert header.findtext("eb:MessageData/eb:RefToMessageId", namespaces=NS) == message_id
    assert header.findtext("eb:CPAId", namespaces=NS) == CPA_ID
    assert header.findtext("eb:ConversationId", namespaces=NS) == f"conv-{message_id}"
    assert header.findtext("eb:From/eb:PartyId", namespaces=NS) == LOGIUS_OIN
    assert header.findtext("eb:To/eb:PartyId", namespaces=NS) == SENDER_OIN
    ack = envelope.find("SOAP:Header/eb:Acknowledgment", NS)
    assert ack.findtext("eb:RefToMessageId", namespaces=NS) == message_id
    assert envelope.find("SOAP:Header/eb:AckRequested", NS) is None


def test_the_acknowledgment_is_valid_ebms(
    simulator: LogiusSimulator, sender: Identity, eb_schema: etree.XMLSchema
) -> None:
    # Given an accepted batch
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, _ = ebms_message(payload)
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    # Then its header blocks are valid against msg-header-2_0.xsd
    envelope = etree.fromstring(response.body, PARSER)
    for block in envelope.find("SOAP:Header", NS):
        assert eb_schema.validate(block), eb_schema.error_log


def test_a_duplicate_message_id_replays_the_same_ack_and_delivers_once(
    simulator: LogiusSimulator, sender: Identity
) -> None:
    # Given a batch that was acknowledged and delivered
    letter = Brief(SUBSCRIBED)
    payload, _batch_id = berichten([letter])
    body, headers, message_id = ebms_message(payload)
    first = post(simulator, simulator.ebms_url, body, headers, sender)
    assert simulator.wait_idle(5)
    # When the sender retries the very same message
    second = post(simulator, simulator.ebms_url, body, headers, sender)
    assert simulator.wait_idle(5)
    # Then the same acknowledgment comes back byte for byte, and nothing is processed again
    assert second.status == 200 and second.body == first.body
    assert simulator.deliveries_of(letter.bericht_id) == 1
    assert [b.message_id for b in simulator.received_batches] == [message_id]
    assert len(simulator.results) == 1
    assert simulator.duplicate_messages == 1


def test_the_same_bericht_id_in_a_new_batch_is_berichtbestaatal(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given a letter that was delivered
    letter = Brief(SUBSCRIBED)
    _, first_batch, _ = deliver(simulator, [letter], sender)
    assert codes_of(simulator, first_batch) == {letter.bericht_id: "Verwerkt"}
    # When a second batch (new MessageId, new BatchID) carries the same BerichtID
    response, second_batch, _ = deliver(simulator, [letter], sender)
    # Then it is acknowledged but reported BerichtBestaatAl, and the letter is delivered only once
    assert response.status == 200
    assert codes_of(simulator, second_batch) == {letter.bericht_id: "BerichtBestaatAl"}
    assert simulator.deliveries_of(letter.bericht_id) == 1


# -- ebMS errors ------------------------------------------------------------------------------------


def error_code(response: HttpResponse) -> str | None:
    envelope = etree.fromstring(response.body, PARSER)
    error = envelope.find("SOAP:Header/eb:ErrorList/eb:Error", NS)
    return None if error is None else error.get(f"{{{EB}}}errorCode")


def test_a_from_party_that_is_not_the_certificate_oin_is_a_security_failure(
    simulator: LogiusSimulator, sender: Identity
) -> None:
    # Given a message claiming another OIN than the client certificate's
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, message_id = ebms_message(payload, from_oin=STRANGER_OIN)
    # When it is sent / Then a MessageError SecurityFailure referring to it, and nothing is received
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    assert response.status == 200 and error_code(response) == "SecurityFailure"
    envelope = etree.fromstring(response.body, PARSER)
    assert envelope.findtext(".//eb:MessageData/eb:RefToMessageId", namespaces=NS) == message_id
    assert envelope.findtext(".//eb:MessageHeader/eb:Action", namespaces=NS) == "MessageError"
    assert simulator.received_batches == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"action": "GLOBE-R-X-Request"}, "ValueNotRecognized"),
        ({"manifest_cid": "missing@nowhere"}, "MimeProblem"),
        ({"to_oin": "00000004000000000000"}, "ValueNotRecognized"),
    ],
)
def test_a_broken_message_gets_an_ebms_error(
    simulator: LogiusSimulator, sender: Identity, change: dict, code: str, eb_schema: etree.XMLSchema
) -> None:
    # Given a message broken in one way
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, _ = ebms_message(payload, **change)
    # When it is sent / Then a schema-valid MessageError with the expected code
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    assert response.status == 200 and error_code(response) == code
    error_list = etree.fromstring(response.body, PARSER).find("SOAP:Header/eb:ErrorList", NS)
    assert eb_schema.validate(error_list), eb_schema.error_log
    assert simulator.received_batches == []


@pytest.mark.parametrize(
    ("ack_mode", "sync_reply"),
    [("sync", False), ("async", True)],
    ids=["sync-mode-without-syncreply", "async-mode-with-syncreply"],
)
def test_a_syncreply_the_cpa_does_not_agree_is_inconsistent(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, ack_mode: str, sync_reply: bool
) -> None:
    # Given a simulator whose CPA fixes the acknowledgement mode
    simulator = make_simulator(ack_mode=ack_mode)
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, _ = ebms_message(payload, sync_reply=sync_reply)
    # When a message disagreeing with it is sent / Then MessageError Inconsistent, nothing received
    # (the error comes in the HTTP answer: "sync" because the CPA says so, "async" because the
    # message asked for SyncReply)
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    assert response.status == 200 and error_code(response) == "Inconsistent"
    assert simulator.received_batches == []


def test_the_legacy_require_sync_reply_switch_means_sync_mode(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity
) -> None:
    # Given the old switch require_sync_reply=True
    simulator = make_simulator(require_sync_reply=True)
    assert simulator.config.effective_ack_mode == "sync"
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, _ = ebms_message(payload, sync_reply=False)
    # When a message without SyncReply is sent / Then it is refused as before
    assert error_code(post(simulator, simulator.ebms_url, body, headers, sender)) == "Inconsistent"


def test_a_wrong_soapaction_is_a_soap_fault(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given a message with SOAPAction other than ebXML
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, _ = ebms_message(payload, soap_action='"something"')
    # When it is sent / Then HTTP 500 with a SOAP Fault Client
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    assert response.status == 500
    assert etree.fromstring(response.body, PARSER).findtext(".//faultcode").endswith("Client")


def test_an_unquoted_ebxml_soapaction_is_accepted(simulator: LogiusSimulator, sender: Identity) -> None:
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, _ = ebms_message(payload, soap_action="ebXML")
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    assert response.status == 200 and error_code(response) is None


# -- VerwerkingsCodes -----------------------------------------------------------------------------


def test_each_letter_gets_its_verwerkingscode(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given letters that hit each rule
    letters = {
        "Verwerkt": Brief(SUBSCRIBED),
        "NietActiefOfGeabonneerd": Brief(UNSUBSCRIBED),
        "TechnischProbleem": Brief(BROKEN_BOX),
        "BerichtTypeNietOndersteund": Brief(SUBSCRIBED, berichttype="ONBEKEND"),
        "PublicatieDatumLigtTeVerInDeToekomst": Brief(SUBSCRIBED, publicatie=now_utc() + dt.timedelta(days=20)),
        "BijlageTeGroot": Brief(SUBSCRIBED, pdf=b"%PDF-1.7 " + b"0" * 500_001),
    }
    ok_soon = Brief(SUBSCRIBED, publicatie=now_utc() + dt.timedelta(days=12))
    # When they are delivered in one batch
    response, batch_id, _ = deliver(simulator, [*letters.values(), ok_soon], sender)
    assert response.status == 200
    # Then the report names the expected code per BerichtID
    codes = codes_of(simulator, batch_id)
    assert codes == {**{b.bericht_id: c for c, b in letters.items()}, ok_soon.bericht_id: "Verwerkt"}
    # And only the Verwerkt letters are in the delivery log
    assert {r.bericht_id for r in simulator.delivery_log} == {letters["Verwerkt"].bericht_id, ok_soon.bericht_id}


def test_a_sender_may_not_send_for_an_unauthorised_oin(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given a batch whose BerichtLeverancierID is not the certificate's OIN nor delegated to it
    letter = Brief(SUBSCRIBED)
    _, batch_id, _ = deliver(simulator, [letter], sender, leverancier=STRANGER_OIN)
    # Then every letter gets OinInCPAKomtNietOvereenMetOinInBericht
    assert codes_of(simulator, batch_id) == {letter.bericht_id: "OinInCPAKomtNietOvereenMetOinInBericht"}


def test_an_authorised_intermediary_may_send_for_its_client(
    simulator: LogiusSimulator, intermediary: Identity
) -> None:
    # Given an intermediary authorised to send for SENDER_OIN
    letter = Brief(SUBSCRIBED)
    response, batch_id, _ = deliver(simulator, [letter], intermediary, leverancier=SENDER_OIN)
    # Then the letter is delivered, and the log names the organisation and the connection
    assert response.status == 200
    assert codes_of(simulator, batch_id) == {letter.bericht_id: "Verwerkt"}
    (record,) = [r for r in simulator.delivery_log if r.bericht_id == letter.bericht_id]
    assert record.sender_oin == SENDER_OIN and record.connection_oin == CLIENT_OF_INTERMEDIARY


@pytest.mark.parametrize("use_xsd", [True, False], ids=["xsd", "structural"])
def test_a_schema_invalid_batch_gets_xml_validatie_for_every_letter(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, use_xsd: bool
) -> None:
    # Given a batch whose second letter has a subject longer than 50 characters
    simulator = make_simulator(use_xsd=use_xsd)
    good, bad = Brief(SUBSCRIBED), Brief(SUBSCRIBED, onderwerp="x" * 51)
    _, batch_id, _ = deliver(simulator, [good, bad], sender)
    # Then every letter is reported XmlValidatieTegenXsdValtNegatiefUit and nothing is delivered
    assert codes_of(simulator, batch_id) == {
        good.bericht_id: "XmlValidatieTegenXsdValtNegatiefUit",
        bad.bericht_id: "XmlValidatieTegenXsdValtNegatiefUit",
    }
    assert simulator.delivery_log == []


def test_an_unparseable_payload_is_reported_with_the_nil_guid(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given a payload that is not XML at all
    body, headers, message_id = ebms_message(b"this is not xml")
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    # Then the message is acknowledged, and the report has one nil-GUID letter failing XSD validation
    assert response.status == 200 and error_code(response) is None
    assert simulator.wait_idle(5)
    (record,) = simulator.results
    assert record.batch_id == NIL_GUID and record.request_message_id == message_id
    assert record.codes == [(NIL_GUID, "XmlValidatieTegenXsdValtNegatiefUit")]


# -- the pushed result --------------------------------------------------------------------------


@pytest.mark.parametrize("gzip_results", [False, True], ids=["plain", "gzip"])
def test_the_result_is_pushed_to_the_sender_and_is_schema_valid(
    make_simulator: Callable[..., LogiusSimulator],
    endpoint: tuple[SenderEndpoint, str],
    sender: Identity,
    response_schema: etree.XMLSchema,
    eb_schema: etree.XMLSchema,
    gzip_results: bool,
) -> None:
    # Given a simulator that pushes results to the sender's two-way TLS endpoint
    handler, url = endpoint
    simulator = make_simulator(result_endpoint=url, gzip_results=gzip_results)
    delivered, unsubscribed = Brief(SUBSCRIBED), Brief(UNSUBSCRIBED)
    # When a batch is delivered and processed
    _, batch_id, request_message_id = deliver(simulator, [delivered, unsubscribed], sender)
    assert simulator.wait_idle(5)
    # Then one GLOBE-R-BV-Result arrived, from Logius' certificate, and was acknowledged
    (request,) = handler.requests
    assert request.client_oin == LOGIUS_OIN
    assert request.headers["SOAPAction"].strip('"') == "ebXML"
    soap, payload = mime_parts(request)
    envelope = etree.fromstring(soap, PARSER)
    header = envelope.find("SOAP:Header/eb:MessageHeader", NS)
    assert header.findtext("eb:Action", namespaces=NS) == "GLOBE-R-BV-Result"
    assert header.findtext("eb:From/eb:PartyId", namespaces=NS) == LOGIUS_OIN
    assert header.findtext("eb:To/eb:PartyId", namespaces=NS) == SENDER_OIN
    assert header.findtext("eb:CPAId", namespaces=NS) == CPA_ID
    assert header.findtext("eb:Service", namespaces=NS) == "MIJNOVERHEID.ebMS.BB.2.0"
    assert header.find("eb:DuplicateElimination", NS) is not None
    assert header.findtext("eb:MessageData/eb:MessageId", namespaces=NS) != request_message_id
    for block in ("eb:AckRequested", "eb:SyncReply"):
        assert envelope.find(f"SOAP:Header/{block}", NS) is not None
    for block in envelope.find("SOAP:Header", NS):
        assert eb_schema.validate(block), eb_schema.error_log
    assert eb_schema.validate(envelope.find("SOAP:Body/eb:Manifest", NS)), eb_schema.error_log
    # And the payload (gunzipped if need be) is a valid BerichtVerwerkResponse with correct counts
    assert (payload[:2] == b"\x1f\x8b") is gzip_results
    xml = gzip.decompress(payload) if gzip_results else payload
    report = etree.fromstring(xml, PARSER)
    assert response_schema.validate(report), response_schema.error_log
    info = report.find("BatchInformatie")
    assert info.findtext("BatchID") == batch_id
    assert info.findtext("TotaalAantalOntvangenBerichten") == "2"
    assert info.findtext("AantalBerichtenSuccesvolVerwerkt") == "1"
    assert info.findtext("AantalBerichtenGeenActieveBoxOfGeabonneertOpLeverancier") == "1"
    codes = {b.findtext("BerichtID"): b.findtext("VerwerkingsCode") for b in report.iterfind("Berichten/ns1:Bericht", NS)}
    assert codes == {delivered.bericht_id: "Verwerkt", unsubscribed.bericht_id: "NietActiefOfGeabonneerd"}
    (record,) = simulator.results
    assert record.acknowledged and record.attempts == 1 and record.payload == xml


def test_a_failed_push_is_retried_with_the_same_message_id(
    make_simulator: Callable[..., LogiusSimulator], endpoint: tuple[SenderEndpoint, str], sender: Identity
) -> None:
    # Given a sender endpoint that answers 503 twice
    handler, url = endpoint
    handler.fail_first = 2
    simulator = make_simulator(result_endpoint=url)
    # When a batch is processed
    deliver(simulator, [Brief(SUBSCRIBED)], sender)
    assert simulator.wait_idle(5)
    # Then the result was sent three times with identical bytes, and finally acknowledged
    assert len(handler.requests) == 3
    assert len({r.body for r in handler.requests}) == 1
    (record,) = simulator.results
    assert record.acknowledged and record.attempts == 3


def test_an_unreachable_endpoint_is_given_up_without_raising(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity
) -> None:
    # Given a result endpoint where nobody listens
    simulator = make_simulator(result_endpoint="https://127.0.0.1:9/ebms", result_retries=1)
    # When a batch is processed / Then the simulator gives up quietly and records why
    deliver(simulator, [Brief(SUBSCRIBED)], sender)
    assert simulator.wait_idle(5)
    (record,) = simulator.results
    assert not record.acknowledged and record.attempts == 2 and record.error.startswith("transport")


# -- privacy -------------------------------------------------------------------------------------


def test_no_full_bsn_in_the_delivery_log_or_the_logs(
    simulator: LogiusSimulator, sender: Identity, caplog: pytest.LogCaptureFixture
) -> None:
    # Given logging at DEBUG
    caplog.set_level(logging.DEBUG, logger="bbconnect_local")
    # When letters are delivered and BSNs checked
    letters = [Brief(SUBSCRIBED), Brief(UNSUBSCRIBED), Brief(BROKEN_BOX)]
    _, batch_id, _ = deliver(simulator, letters, sender)
    codes_of(simulator, batch_id)
    post(simulator, simulator.wus_url, wus_request([SUBSCRIBED, UNSUBSCRIBED]),
         {"Content-Type": "text/xml", "SOAPAction": WUS_ACTION}, sender)
    # Then no record and no log line holds a full BSN; records show the last three digits
    records = simulator.delivery_log + simulator.outcomes
    assert records
    for bsn in (SUBSCRIBED, UNSUBSCRIBED, BROKEN_BOX):
        assert bsn not in repr(records)
        assert bsn not in caplog.text
    assert {r.bsn_masked for r in simulator.outcomes} == {"******019", "******020", "******032"}
    assert mask_bsn("999990019") == "******019"
    assert redact_bsns("value '999990019' rejected") == "value '******019' rejected"


# -- the structural fallback mirrors the request XSD ---------------------------------------------


def _variants() -> dict[str, bytes]:
    good, batch_id = berichten([Brief(SUBSCRIBED, pdf=b"%PDF-1.7 small")])
    text = good.decode()
    return {
        "valid": good,
        "onderwerp-too-long": text.replace("Uw aanslag gemeentelijke belastingen", "x" * 51).encode(),
        "berichttype-too-long": text.replace(">AANSLAG<", ">AANSLAG12<").encode(),
        "bad-guid": text.replace(f"<BatchID>{batch_id}", "<BatchID>not-a-guid").encode(),
        "order": text.replace("<b:Referentie>2026-001</b:Referentie>", "").replace(
            "<b:BerichtTekst>", "<b:Referentie>2026-001</b:Referentie><b:BerichtTekst>").encode(),
        "soort": text.replace(">Burger<", ">Bedrijf<").encode(),
        "no-letters": text.split("<b:Bericht>")[0].encode() + b"</Berichten>",
        "bijlage-type": text.replace(">Pdf<", ">Docx<").encode(),
        "unknown-element": text.replace("</b:BerichtInformatie>", "<b:Extra/></b:BerichtInformatie>").encode(),
        "bad-date": text.replace("<AanmaakDatum>", "<AanmaakDatum>x").encode(),
        "spaced-date": text.replace("<AanmaakDatum>", "<AanmaakDatum> ").encode(),
        "empty-publicatiedatum": text.replace("<b:Onderwerp>", "<b:PublicatieDatum/><b:Onderwerp>").encode(),
        "spaced-enum": text.replace(">Burger<", "> Burger<").encode(),
        "volgorde-underscore": text.replace("<b:Volgorde>1<", "<b:Volgorde>1_0<").encode(),
        "attribute": text.replace("<b:BerichtID>", '<b:BerichtID lang="nl">').encode(),
        "mixed-text": text.replace("<b:BerichtInformatie>", "<b:BerichtInformatie>hallo").encode(),
        "three-bijlagen": text.replace("</b:Bijlage></b:Bijlagen>", "</b:Bijlage>" + text.split("<b:Bijlagen>")[1].split("</b:Bijlagen>")[0] * 2 + "</b:Bijlagen>").encode(),
    }


@pytest.mark.parametrize("name", list(_variants()))
def test_the_structural_check_agrees_with_the_request_xsd(name: str, request_schema: etree.XMLSchema) -> None:
    # Given a batch variant / When both the XSD and the structural check judge it / Then they agree
    root = etree.fromstring(_variants()[name], PARSER)
    assert request_schema.validate(root) == (structural_errors(root) == []), (name, structural_errors(root))


# -- packaging variants a real MSH may send -----------------------------------------------------


def test_a_base64_payload_part_with_bare_lf_line_ends_and_a_preamble_is_read(
    simulator: LogiusSimulator, sender: Identity
) -> None:
    # Given a message whose payload part is base64, with LF line ends and a MIME preamble
    letter = Brief(SUBSCRIBED)
    payload, batch_id = berichten([letter])
    body, headers, _ = ebms_message(payload)
    boundary = headers["Content-Type"].split('boundary="')[1].split('"')[0]
    soap, _ = body.split(b"\r\n--" + boundary.encode() + b"\r\nContent-Type: application/xml", 1)
    payload_cid = body.split(b"Content-ID: <payload-")[1].split(b">")[0].decode()
    encoded = base64.encodebytes(payload)
    rebuilt = (
        b"This is a MIME preamble.\n"
        + soap.replace(b"\r\n", b"\n")
        + f"\n--{boundary}\nContent-Type: application/xml\nContent-Transfer-Encoding: base64\n"
          f"Content-ID: <payload-{payload_cid}>\n\n".encode()
        + encoded
        + f"\n--{boundary}--\n".encode()
    )
    # When it is sent
    response = post(simulator, simulator.ebms_url, rebuilt, headers, sender)
    # Then it is acknowledged and the letter delivered
    assert response.status == 200 and error_code(response) is None
    assert codes_of(simulator, batch_id) == {letter.bericht_id: "Verwerkt"}


def test_an_expired_message_gets_time_to_live_expired(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given a message whose TimeToLive has passed
    payload, _ = berichten([Brief(SUBSCRIBED)])
    body, headers, _ = ebms_message(payload)
    ttl = body.split(b"<eb:TimeToLive>")[1].split(b"</eb:TimeToLive>")[0]
    body = body.replace(ttl, b"2020-01-01T00:00:00Z")
    # When it is sent / Then MessageError TimeToLiveExpired
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    assert error_code(response) == "TimeToLiveExpired"


def test_a_ping_gets_a_pong(simulator: LogiusSimulator, sender: Identity) -> None:
    # Given an ebMS Ping (MSH service, no payload, plain text/xml)
    message_id = f"{uuid.uuid4()}@sender.example"
    ping = f"""<SOAP:Envelope xmlns:SOAP="{SOAP}" xmlns:eb="{EB}"><SOAP:Header>
<eb:MessageHeader eb:version="2.0" SOAP:mustUnderstand="1">
<eb:From><eb:PartyId eb:type="urn:osb:oin">{SENDER_OIN}</eb:PartyId></eb:From>
<eb:To><eb:PartyId eb:type="urn:osb:oin">{LOGIUS_OIN}</eb:PartyId></eb:To>
<eb:CPAId>{CPA_ID}</eb:CPAId><eb:ConversationId>p</eb:ConversationId>
<eb:Service>urn:oasis:names:tc:ebxml-msg:service</eb:Service><eb:Action>Ping</eb:Action>
<eb:MessageData><eb:MessageId>{message_id}</eb:MessageId><eb:Timestamp>{iso(now_utc())}</eb:Timestamp></eb:MessageData>
</eb:MessageHeader></SOAP:Header><SOAP:Body/></SOAP:Envelope>""".encode()
    # When it is sent / Then a Pong referring to it
    response = post(simulator, simulator.ebms_url, ping,
                    {"SOAPAction": '"ebXML"', "Content-Type": "text/xml; charset=UTF-8"}, sender)
    envelope = etree.fromstring(response.body, PARSER)
    assert envelope.findtext(".//eb:MessageHeader/eb:Action", namespaces=NS) == "Pong"
    assert envelope.findtext(".//eb:MessageData/eb:RefToMessageId", namespaces=NS) == message_id


def test_wus_works_without_the_official_schemas(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity
) -> None:
    # Given a simulator that does not load the XSDs (as in a clone without ../shared)
    simulator = make_simulator(use_xsd=False)
    assert not simulator.validates_with_xsd
    # When a valid and a malformed request come in
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": WUS_ACTION}
    ok = post(simulator, simulator.wus_url, wus_request([SUBSCRIBED]), headers, sender)
    broken = post(simulator, simulator.wus_url,
                  wus_request([SUBSCRIBED]).replace(b"<t:berichtTypeCode>AANSLAG</t:berichtTypeCode>", b""),
                  headers, sender)
    # Then the first is answered and the second faults with 0004
    assert ok.status == 200 and b">true<" in ok.body
    assert broken.status == 500
    assert etree.fromstring(broken.body, PARSER).findtext(".//faultstring").startswith("0004")


# -- asynchronous acknowledgements (CPA syncReplyMode none) -------------------------------------


@pytest.mark.parametrize("ack_mode", ["either", "async"])
def test_without_syncreply_the_ack_comes_as_its_own_post(
    make_simulator: Callable[..., LogiusSimulator], endpoint: tuple[SenderEndpoint, str], sender: Identity,
    eb_schema: etree.XMLSchema, ack_mode: str,
) -> None:
    # Given a simulator whose acks may go asynchronously, pushing to the sender's endpoint
    handler, url = endpoint
    simulator = make_simulator(result_endpoint=url, ack_mode=ack_mode)
    letter = Brief(SUBSCRIBED)
    payload, batch_id = berichten([letter])
    body, headers, message_id = ebms_message(payload, sync_reply=False)
    # When a message without SyncReply is sent
    response = post(simulator, simulator.ebms_url, body, headers, sender)
    # Then HTTP 204 with an empty body, and an Acknowledgment POSTed over two-way TLS from Logius
    assert response.status == 204 and response.body == b""
    assert simulator.wait_idle(5)
    (signal,) = handler.signals
    assert signal.client_oin == LOGIUS_OIN and signal.headers["SOAPAction"].strip('"') == "ebXML"
    envelope = etree.fromstring(signal.body, PARSER)
    header = envelope.find("SOAP:Header/eb:MessageHeader", NS)
    assert header.findtext("eb:Action", namespaces=NS) == "Acknowledgment"
    assert header.findtext("eb:MessageData/eb:RefToMessageId", namespaces=NS) == message_id
    assert header.findtext("eb:To/eb:PartyId", namespaces=NS) == SENDER_OIN
    assert envelope.findtext("SOAP:Header/eb:Acknowledgment/eb:RefToMessageId", namespaces=NS) == message_id
    for block in envelope.find("SOAP:Header", NS):
        assert eb_schema.validate(block), eb_schema.error_log
    assert codes_of(simulator, batch_id) == {letter.bericht_id: "Verwerkt"}
    # And when the sender retries the same message, it gets 204 and the stored ack is posted again
    again = post(simulator, simulator.ebms_url, body, headers, sender)
    assert again.status == 204
    assert simulator.wait_idle(5)
    assert len(handler.signals) == 2 and handler.signals[1].body == handler.signals[0].body
    assert simulator.duplicate_messages == 1 and simulator.deliveries_of(letter.bericht_id) == 1
    assert [s.delivered for s in simulator.sent_signals] == [True, True]


def test_async_signals_go_to_the_ack_endpoint_errors_included(
    make_simulator: Callable[..., LogiusSimulator], endpoint: tuple[SenderEndpoint, str], sender: Identity,
    pki: TestPKI,
) -> None:
    # Given a separate endpoint for acknowledgements
    handler, url = endpoint
    acks = SenderEndpoint()
    with MutualTlsServer(acks, sender, pki.ca_cert_path) as server:
        simulator = make_simulator(result_endpoint=url, ack_endpoint=server.base_url + "/acks")
        payload, _ = berichten([Brief(SUBSCRIBED)])
        body, headers, message_id = ebms_message(payload, sync_reply=False, action="GLOBE-R-X-Request")
        # When a broken message without SyncReply is sent
        response = post(simulator, simulator.ebms_url, body, headers, sender)
        assert simulator.wait_idle(5)
    # Then 204, and the MessageError went to the ack endpoint (not to the result endpoint)
    assert response.status == 204
    (signal,) = acks.signals
    envelope = etree.fromstring(signal.body, PARSER)
    assert envelope.find("SOAP:Header/eb:ErrorList/eb:Error", NS).get(f"{{{EB}}}errorCode") == "ValueNotRecognized"
    assert envelope.findtext(".//eb:MessageData/eb:RefToMessageId", namespaces=NS) == message_id
    assert handler.signals == [] and simulator.received_batches == []


def test_a_pushed_result_may_be_acknowledged_asynchronously(
    make_simulator: Callable[..., LogiusSimulator], pki: TestPKI, sender: Identity
) -> None:
    # Given a sender endpoint that answers 204 and POSTs its Acknowledgment back to /ebms afterwards
    simulators: list[LogiusSimulator] = []
    pushed: list[bytes] = []

    def async_endpoint(request: HttpRequest) -> HttpResponse:
        soap = mime_parts(request)[0]
        pushed.append(soap)
        message_id = etree.fromstring(soap, PARSER).findtext(".//eb:MessageData/eb:MessageId", namespaces=NS)
        threading.Timer(0.05, lambda: https_post(
            simulators[0].ebms_url, acknowledgment(message_id),
            {"SOAPAction": '"ebXML"', "Content-Type": "text/xml; charset=UTF-8"},
            identity=sender, ca_path=pki.ca_cert_path)).start()
        return HttpResponse(204, {}, b"")

    with MutualTlsServer(async_endpoint, sender, pki.ca_cert_path) as server:
        simulators.append(make_simulator(result_endpoint=server.base_url + "/ebms", result_sync_reply=False))
        # When a batch is processed
        deliver(simulators[0], [Brief(SUBSCRIBED)], sender)
        assert simulators[0].wait_idle(5)
    # Then the result (without SyncReply) was pushed once and counts as acknowledged
    (soap,) = pushed
    assert etree.fromstring(soap, PARSER).find("SOAP:Header/eb:SyncReply", NS) is None
    (record,) = simulators[0].results
    assert record.acknowledged and record.attempts == 1 and record.deliveries == 1


# -- MessageStatus service -----------------------------------------------------------------------


def status_request(ref: str, *, from_oin: str = SENDER_OIN) -> tuple[bytes, dict[str, str], str]:
    message_id = f"{uuid.uuid4()}@sender.example"
    body = f"""<SOAP:Envelope xmlns:SOAP="{SOAP}" xmlns:eb="{EB}"><SOAP:Header>
<eb:MessageHeader eb:version="2.0" SOAP:mustUnderstand="1">
<eb:From><eb:PartyId eb:type="urn:osb:oin">{from_oin}</eb:PartyId></eb:From>
<eb:To><eb:PartyId eb:type="urn:osb:oin">{LOGIUS_OIN}</eb:PartyId></eb:To>
<eb:CPAId>{CPA_ID}</eb:CPAId><eb:ConversationId>s</eb:ConversationId>
<eb:Service>urn:oasis:names:tc:ebxml-msg:service</eb:Service><eb:Action>StatusRequest</eb:Action>
<eb:MessageData><eb:MessageId>{message_id}</eb:MessageId><eb:Timestamp>{iso(now_utc())}</eb:Timestamp></eb:MessageData>
</eb:MessageHeader></SOAP:Header><SOAP:Body>
<eb:StatusRequest eb:version="2.0"><eb:RefToMessageId>{ref}</eb:RefToMessageId></eb:StatusRequest>
</SOAP:Body></SOAP:Envelope>""".encode()
    return body, {"SOAPAction": '"ebXML"', "Content-Type": "text/xml; charset=UTF-8"}, message_id


def ask_status(sim: LogiusSimulator, identity: Identity, ref: str) -> tuple[str, str | None, etree._Element]:
    body, headers, message_id = status_request(ref, from_oin=identity.oin or "")
    response = post(sim, sim.ebms_url, body, headers, identity)
    assert response.status == 200
    envelope = etree.fromstring(response.body, PARSER)
    assert envelope.findtext(".//eb:MessageHeader/eb:Action", namespaces=NS) == "StatusResponse"
    assert envelope.findtext(".//eb:MessageData/eb:RefToMessageId", namespaces=NS) == message_id
    answer = envelope.find("SOAP:Body/eb:StatusResponse", NS)
    assert answer.findtext("eb:RefToMessageId", namespaces=NS) == ref
    return answer.get(f"{{{EB}}}messageStatus"), answer.findtext("eb:Timestamp", namespaces=NS), envelope


def test_status_request_follows_a_message_from_received_to_processed(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, eb_schema: etree.XMLSchema
) -> None:
    # Given a batch that is judged half a second after it arrived
    simulator = make_simulator(result_delay_seconds=0.5)
    _, _, message_id = deliver(simulator, [Brief(SUBSCRIBED)], sender)
    # When its status is asked at once (a StatusRequest without SyncReply: answered synchronously anyway)
    status, timestamp, envelope = ask_status(simulator, sender, message_id)
    # Then Received, with the time it arrived, in a schema-valid StatusResponse
    assert status == "Received" and timestamp is not None
    assert eb_schema.validate(envelope.find("SOAP:Body/eb:StatusResponse", NS)), eb_schema.error_log
    for block in envelope.find("SOAP:Header", NS):
        assert eb_schema.validate(block), eb_schema.error_log
    # And once judged, Processed
    assert simulator.wait_idle(5)
    assert ask_status(simulator, sender, message_id)[:2] == ("Processed", timestamp)


def test_status_request_for_an_unknown_or_someone_elses_message(
    simulator: LogiusSimulator, sender: Identity, intermediary: Identity
) -> None:
    # Given a batch from the sender
    _, _, message_id = deliver(simulator, [Brief(SUBSCRIBED)], sender)
    # When an unknown id is asked, and another party asks about the sender's message
    # Then NotRecognized and UnAuthorized, both without a Timestamp
    assert ask_status(simulator, sender, "nobody@nowhere")[:2] == ("NotRecognized", None)
    assert ask_status(simulator, intermediary, message_id)[:2] == ("UnAuthorized", None)


# -- the bulk subscription list (AbonnementService) ---------------------------------------------

ABO = "http://schemas.overheid.nl/GEB/AbonnementServiceProcessor/2014/02"
CHANGED_EARLY, CHANGED_LATE = "999990044", "999990056"


def aanvraag(verzoek_id: str, *, bsns: list[str] | None = None, mutatie: str | None = None,
             oin: str = SENDER_OIN) -> bytes:
    selection = ""
    if bsns is not None:
        selection = "<BSNLijst>" + "".join(f"<BSN>{b}</BSN>" for b in bsns) + "</BSNLijst>"
    elif mutatie is not None:
        selection = f"<MutatieDatum>{mutatie}</MutatieDatum>"
    return (f'<?xml version="1.0" encoding="UTF-8"?><ns0:AbonnementAanvraag xmlns:ns0="{ABO}">'
            f"<BerichtLeverancier><OIN>{oin}</OIN></BerichtLeverancier><VerzoekId>{verzoek_id}</VerzoekId>"
            f"{selection}</ns0:AbonnementAanvraag>").encode()


def ask_bulk(sim: LogiusSimulator, identity: Identity, payload: bytes) -> tuple[HttpResponse, str]:
    body, headers, message_id = ebms_message(payload, action="GLOBE-R-A-Request")
    return post(sim, sim.ebms_url, body, headers, identity), message_id


def pushed_answer(handler: SenderEndpoint) -> tuple[str, bytes, etree._Element]:
    """(Action, raw payload, AbonnementAntwoord root) of the one pushed message."""
    (request,) = handler.requests
    soap, payload = mime_parts(request)
    action = etree.fromstring(soap, PARSER).findtext(".//eb:MessageHeader/eb:Action", namespaces=NS)
    return action, payload, etree.fromstring(gzip.decompress(payload), PARSER)


def subscriptions_in(root: etree._Element) -> dict[str, str]:
    return {a.findtext("BSN"): a.findtext("Actief") for a in root.iterfind("Abonnementen/Abonnement")}


@pytest.mark.parametrize(
    ("request_kwargs", "expected", "kind"),
    [
        ({}, {SUBSCRIBED: "true", BROKEN_BOX: "true"}, "full"),
        ({"bsns": [SUBSCRIBED, UNSUBSCRIBED, SUBSCRIBED]}, {SUBSCRIBED: "true", UNSUBSCRIBED: "false"}, "list"),
        ({"mutatie": "2026-01-15T00:00:00Z"}, {CHANGED_LATE: "false"}, "mutations"),
        ({"mutatie": "2026-01-01T00:00:00+01:00"}, {CHANGED_EARLY: "true", CHANGED_LATE: "false"}, "mutations"),
    ],
    ids=["full", "bsn-list", "mutations-late", "mutations-early"],
)
def test_the_bulk_list_is_pushed_gzipped(
    make_simulator: Callable[..., LogiusSimulator], endpoint: tuple[SenderEndpoint, str], sender: Identity,
    caplog: pytest.LogCaptureFixture, request_kwargs: dict, expected: dict[str, str], kind: str,
) -> None:
    # Given subscriptions, one of which started on 10 January and one that ended on 1 February
    caplog.set_level(logging.DEBUG, logger="bbconnect_local")
    handler, url = endpoint
    simulator = make_simulator(
        result_endpoint=url, bulk_delay_seconds=0.0,
        subscribed={SUBSCRIBED, BROKEN_BOX, CHANGED_EARLY},
        subscription_changes={CHANGED_EARLY: dt.datetime(2026, 1, 10, tzinfo=dt.UTC),
                              CHANGED_LATE: dt.datetime(2026, 2, 1, tzinfo=dt.UTC)},
    )
    if kind == "full":
        simulator.config.subscribed.discard(CHANGED_EARLY)
    # When the sender asks for its subscriptions (GLOBE-R-A-Request)
    response, message_id = ask_bulk(simulator, sender, aanvraag("verzoek-1", **request_kwargs))
    # Then it is acknowledged like a letter batch
    assert response.status == 200 and error_code(response) is None
    assert simulator.wait_idle(5)
    # And a gzipped AbonnementAntwoord arrives as GLOBE-R-A-Result with the selected subscriptions
    action, payload, root = pushed_answer(handler)
    assert action == "GLOBE-R-A-Result" and payload[:2] == b"\x1f\x8b"
    assert root.tag == f"{{{ABO}}}AbonnementAntwoord"
    assert root.findtext("BerichtLeverancier/OIN") == SENDER_OIN and root.findtext("VerzoekId") == "verzoek-1"
    assert dt.datetime.fromisoformat(root.findtext("PeilDatum")) <= now_utc()
    assert subscriptions_in(root) == expected
    (record,) = simulator.bulk_results
    assert record.kind == kind and record.acknowledged and record.request_message_id == message_id
    assert simulator.received_batches == [] and [r.message_id for r in simulator.received_bulk_requests] == [message_id]
    assert ask_status(simulator, sender, message_id)[0] == "Processed"
    # And no BSN was logged
    for bsn in (SUBSCRIBED, UNSUBSCRIBED, BROKEN_BOX, CHANGED_EARLY, CHANGED_LATE):
        assert bsn not in caplog.text


def test_the_bulk_list_lists_one_subscription_per_berichttype_and_the_action_is_configurable(
    make_simulator: Callable[..., LogiusSimulator], endpoint: tuple[SenderEndpoint, str], sender: Identity
) -> None:
    # Given per-berichttype subscriptions and another name for the answer's action
    handler, url = endpoint
    simulator = make_simulator(result_endpoint=url, bulk_delay_seconds=0.0, bulk_result_action="GLOBE-R-A-Antwoord",
                               subscription_berichttypes={SUBSCRIBED: {"AANSLAG", "HERINNER"}})
    # When a BSN list is asked
    ask_bulk(simulator, sender, aanvraag("v2", bsns=[SUBSCRIBED]))
    assert simulator.wait_idle(5)
    # Then the answer carries that action and one Abonnement per berichttype
    action, _, root = pushed_answer(handler)
    assert action == "GLOBE-R-A-Antwoord"
    assert sorted(a.findtext("BerichtType") for a in root.iterfind("Abonnementen/Abonnement")) == ["AANSLAG", "HERINNER"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (aanvraag("v3", oin=STRANGER_OIN), "OinInCPAKomtNietOvereenMetOinInBericht"),
        (aanvraag("v4", mutatie="gisteren"), "XmlValidatieTegenXsdValtNegatiefUit"),
        (b"<not-xml", "XmlValidatieTegenXsdValtNegatiefUit"),
    ],
    ids=["stranger-oin", "bad-date", "not-xml"],
)
def test_a_bulk_request_that_cannot_be_answered_gets_a_fout(
    make_simulator: Callable[..., LogiusSimulator], endpoint: tuple[SenderEndpoint, str], sender: Identity,
    payload: bytes, code: str,
) -> None:
    # Given a request for another organisation's subscriptions, or an unreadable one
    handler, url = endpoint
    simulator = make_simulator(result_endpoint=url, bulk_delay_seconds=0.0)
    # When it is sent / Then it is acknowledged, and the answer holds a Fout instead of Abonnementen
    response, _ = ask_bulk(simulator, sender, payload)
    assert response.status == 200 and error_code(response) is None
    assert simulator.wait_idle(5)
    _, _, root = pushed_answer(handler)
    assert root.findtext("Fout/Code") == code and root.find("Abonnementen") is None
    assert simulator.bulk_results[0].error_code == code


def test_the_delivery_log_exports_as_json(simulator: LogiusSimulator, sender: Identity, tmp_path: Path) -> None:
    # Given two delivered letters and one refused
    letters = [Brief(SUBSCRIBED), Brief(BROKEN_BOX), Brief(UNSUBSCRIBED)]
    _, batch_id, _ = deliver(simulator, letters, sender)
    codes_of(simulator, batch_id)
    # When the log is exported / Then one entry per delivered letter, BSNs masked, JSON-serialisable
    exported = simulator.delivery_log_json()
    assert [e["bericht_id"] for e in exported] == [letters[0].bericht_id]
    (entry,) = exported
    assert entry == {
        "batch_id": batch_id, "bericht_id": letters[0].bericht_id, "berichttype": "AANSLAG",
        "sender_oin": SENDER_OIN, "connection_oin": SENDER_OIN, "code": "Verwerkt", "bsn_masked": "******019",
        "at": entry["at"], "deliveries": 1,
    }
    assert dt.datetime.fromisoformat(entry["at"]) <= now_utc()
    written = simulator.write_delivery_log(tmp_path / "simulator-deliveries.json")
    assert json.loads(written.read_text()) == exported and SUBSCRIBED not in written.read_text()

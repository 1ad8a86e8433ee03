"""The Logius simulator's fault injection, driven by a minimal hand-built sender.

The sender here is f-strings and `https_post`: it retries with the same MessageId when the answer
says to (no answer, a timeout, HTTP 5xx/429, a MessageError of severity Warning), and resends the
letters of a failed report in a new batch. Every test checks the simulator's invariants: a letter
reaches a box at most once, the delivery log is exactly the letters reported Verwerkt, and results
reach the sender.
"""
from __future__ import annotations

import email.parser
import email.policy
import gzip
import http.client
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from lxml import etree

from bbconnect_local.mtls_server import HttpRequest, HttpResponse, MutualTlsServer, https_post
from bbconnect_local.pki import Identity, TestPKI
from bbconnect_local.simulator import FAULT_KINDS, NIL_GUID, RANDOM_CODES, LogiusSimulator, SimulatorConfig
from bbconnect_local.simulator.faults import FaultInjector, RateLimiter

SENDER_OIN = "00000001001234567000"
LOGIUS_OIN = "00000004003214345001"
CPA_ID = "BB_00000001001234567000_00000004003214345001_1"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
EB = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
BATCH_NS = "http://schemas.rdw.nl/GEB/BerichtVerwerkService/Types/2009/01"
BERICHT_NS = "http://schemas.rdw.nl/GEB/BerichtenProsessor/Bericht/Types/2009/01"
WUS_ACTION = ("http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01/"
              "IBerichtenboxValidatieService/ValidateAbonnementen")
NS = {"SOAP": SOAP, "eb": EB}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
BSNS = ["999990019", "999990032", "999990044", "999990056", "999990068", "999990081", "999990093",
        "999990111", "999990123", "999990135", "999990147", "999990159"]


# -- the hand-built sender ---------------------------------------------------------------------


def iso(moment: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def berichten(letters: list[tuple[str, str]], batch_id: str | None = None) -> tuple[bytes, str]:
    """A `Berichten` batch of (BerichtID, BSN) letters."""
    batch_id = batch_id or str(uuid.uuid4())
    items = "".join(
        f"<b:Bericht><b:BerichtInformatie><b:BatchID>{batch_id}</b:BatchID><b:BerichtID>{bericht_id}</b:BerichtID>"
        f"<b:BerichtType>AANSLAG</b:BerichtType><b:Onderwerp>Uw aanslag</b:Onderwerp>"
        f"<b:BerichtTekst>Zie de bijlage.</b:BerichtTekst><b:Referentie>2026-001</b:Referentie>"
        f"<b:GebruikerID>{bsn}</b:GebruikerID><b:SoortGebruiker>Burger</b:SoortGebruiker>"
        f"</b:BerichtInformatie></b:Bericht>"
        for bericht_id, bsn in letters
    )
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><Berichten xmlns="{BATCH_NS}" xmlns:b="{BERICHT_NS}">'
           f"<BatchInformatie><BatchID>{batch_id}</BatchID><AanmaakDatum>{iso()}</AanmaakDatum>"
           f"<BerichtLeverancierID>{SENDER_OIN}</BerichtLeverancierID></BatchInformatie>{items}</Berichten>")
    return xml.encode(), batch_id


def ebms_message(payload: bytes, *, sync_reply: bool = True) -> tuple[bytes, dict[str, str], str]:
    message_id = f"{uuid.uuid4()}@sender.example"
    cid = f"payload-{uuid.uuid4()}@sender.example"
    sync = ('<eb:SyncReply eb:version="2.0" SOAP:mustUnderstand="1" '
            'SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next"/>') if sync_reply else ""
    envelope = f"""<SOAP:Envelope xmlns:SOAP="{SOAP}" xmlns:eb="{EB}" xmlns:xlink="http://www.w3.org/1999/xlink"><SOAP:Header>
<eb:MessageHeader eb:version="2.0" SOAP:mustUnderstand="1">
<eb:From><eb:PartyId eb:type="urn:osb:oin">{SENDER_OIN}</eb:PartyId><eb:Role>SR</eb:Role></eb:From>
<eb:To><eb:PartyId eb:type="urn:osb:oin">{LOGIUS_OIN}</eb:PartyId><eb:Role>SP</eb:Role></eb:To>
<eb:CPAId>{CPA_ID}</eb:CPAId><eb:ConversationId>{message_id}</eb:ConversationId>
<eb:Service eb:type="urn:osb:services">MIJNOVERHEID.ebMS.BB.2.0</eb:Service><eb:Action>GLOBE-R-BV-Request</eb:Action>
<eb:MessageData><eb:MessageId>{message_id}</eb:MessageId><eb:Timestamp>{iso()}</eb:Timestamp>
<eb:TimeToLive>{iso(time.time() + 3600)}</eb:TimeToLive></eb:MessageData><eb:DuplicateElimination/>
</eb:MessageHeader>{sync}
<eb:AckRequested eb:version="2.0" SOAP:mustUnderstand="1" SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH" eb:signed="false"/>
</SOAP:Header><SOAP:Body><eb:Manifest eb:version="2.0"><eb:Reference xlink:href="cid:{cid}" xlink:type="simple"/></eb:Manifest>
</SOAP:Body></SOAP:Envelope>""".encode()
    boundary = f"b-{uuid.uuid4().hex}"
    body = (f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-ID: <{message_id}>\r\n\r\n".encode()
            + envelope + f"\r\n--{boundary}\r\nContent-Type: application/xml\r\nContent-ID: <{cid}>\r\n\r\n".encode()
            + payload + f"\r\n--{boundary}--\r\n".encode())
    headers = {"SOAPAction": '"ebXML"',
               "Content-Type": f'multipart/related; boundary="{boundary}"; type="text/xml"; start="<{message_id}>"'}
    return body, headers, message_id


def classify(response: HttpResponse, message_id: str) -> str:
    """ack | warning:<code> | error:<code> | accepted (204) | http-<status>"""
    if response.status == 204:
        return "accepted"
    if response.status != 200:
        return f"http-{response.status}"
    envelope = etree.fromstring(response.body, PARSER)
    if envelope.findtext("SOAP:Header/eb:Acknowledgment/eb:RefToMessageId", namespaces=NS) == message_id:
        return "ack"
    error = envelope.find("SOAP:Header/eb:ErrorList/eb:Error", NS)
    if error is not None:
        return f"{error.get(f'{{{EB}}}severity').lower()}:{error.get(f'{{{EB}}}errorCode')}"
    return "other"


@dataclass
class Sent:
    message_id: str
    batch_id: str
    outcomes: list[str]


class HandBuiltSender:
    """Sends a batch and retries with the same MessageId (same bytes) until acknowledged."""

    def __init__(self, simulator: LogiusSimulator, identity: Identity, *, timeout: float = 2.0,
                 attempts: int = 8, interval: float = 0.05, sync_reply: bool = True) -> None:
        self.simulator, self.identity = simulator, identity
        self.timeout, self.attempts, self.interval, self.sync_reply = timeout, attempts, interval, sync_reply

    def send(self, letters: list[tuple[str, str]]) -> Sent:
        payload, batch_id = berichten(letters)
        body, headers, message_id = ebms_message(payload, sync_reply=self.sync_reply)
        outcomes: list[str] = []
        for _ in range(self.attempts):
            try:
                response = https_post(self.simulator.ebms_url, body, headers, identity=self.identity,
                                      ca_path=self.simulator.ca_cert_path, timeout=self.timeout)
            except TimeoutError:
                outcomes.append("timeout")
            except (OSError, http.client.HTTPException):
                outcomes.append("dropped")
            else:
                outcomes.append(classify(response, message_id))
                if outcomes[-1] in ("ack", "accepted") or outcomes[-1].startswith("error:"):
                    break
            time.sleep(self.interval)
        return Sent(message_id, batch_id, outcomes)


# -- the sender's inbound endpoint ------------------------------------------------------------


@dataclass
class Pushed:
    message_id: str
    action: str
    payload: bytes
    body: bytes
    at: float


@dataclass
class Inbox:
    """Acknowledges every pushed ebMS message synchronously and records it; records async signals."""

    pushes: list[Pushed] = field(default_factory=list)
    signals: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.headers["Content-Type"].startswith("text/xml"):
            with self.lock:
                self.signals.append(request.body)
            return HttpResponse(204, {}, b"")
        raw = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + request.body
        soap, payload = [p.get_payload(decode=True) for p in
                         email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw).iter_parts()]
        envelope = etree.fromstring(soap, PARSER)
        message_id = envelope.findtext(".//eb:MessageData/eb:MessageId", namespaces=NS)
        action = envelope.findtext(".//eb:MessageHeader/eb:Action", namespaces=NS)
        with self.lock:
            self.pushes.append(Pushed(message_id, action, payload, request.body, time.monotonic()))
        ack = f"""<SOAP:Envelope xmlns:SOAP="{SOAP}" xmlns:eb="{EB}"><SOAP:Header>
<eb:MessageHeader eb:version="2.0" SOAP:mustUnderstand="1">
<eb:From><eb:PartyId eb:type="urn:osb:oin">{SENDER_OIN}</eb:PartyId></eb:From>
<eb:To><eb:PartyId eb:type="urn:osb:oin">{LOGIUS_OIN}</eb:PartyId></eb:To>
<eb:CPAId>{CPA_ID}</eb:CPAId><eb:ConversationId>c</eb:ConversationId>
<eb:Service>urn:oasis:names:tc:ebxml-msg:service</eb:Service><eb:Action>Acknowledgment</eb:Action>
<eb:MessageData><eb:MessageId>{uuid.uuid4()}@sender</eb:MessageId><eb:Timestamp>{iso()}</eb:Timestamp>
<eb:RefToMessageId>{message_id}</eb:RefToMessageId></eb:MessageData></eb:MessageHeader>
<eb:Acknowledgment eb:version="2.0" SOAP:mustUnderstand="1" SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH">
<eb:Timestamp>{iso()}</eb:Timestamp><eb:RefToMessageId>{message_id}</eb:RefToMessageId></eb:Acknowledgment>
</SOAP:Header><SOAP:Body/></SOAP:Envelope>"""
        return HttpResponse(200, {"Content-Type": "text/xml; charset=UTF-8"}, ack.encode())

    def reports(self) -> list[tuple[str, dict[str, str], Pushed]]:
        """(BatchID, {BerichtID: VerwerkingsCode}, push) per pushed BerichtVerwerkResponse, in arrival order."""
        with self.lock:
            pushes = list(self.pushes)
        found = []
        for push in pushes:
            xml = gzip.decompress(push.payload) if push.payload[:2] == b"\x1f\x8b" else push.payload
            report = etree.fromstring(xml, PARSER)
            codes = {b.findtext("BerichtID"): b.findtext("VerwerkingsCode") for b in report.iterfind("Berichten/{*}Bericht")}
            found.append((report.findtext("BatchInformatie/BatchID"), codes, push))
        return found

    def report_for(self, batch_id: str, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for found_id, codes, _ in self.reports():
                if found_id == batch_id:
                    return codes
            time.sleep(0.02)
        raise AssertionError(f"no result for batch {batch_id}")


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("fault-pki"))


@pytest.fixture(scope="module")
def sender(pki: TestPKI) -> Identity:
    return pki.issue("fault-sender", oin=SENDER_OIN)


@pytest.fixture
def inbox(pki: TestPKI, sender: Identity) -> Iterator[tuple[Inbox, str]]:
    handler = Inbox()
    with MutualTlsServer(handler, sender, pki.ca_cert_path) as server:
        yield handler, server.base_url + "/ebms"


@pytest.fixture
def make_simulator(pki: TestPKI, inbox: tuple[Inbox, str]) -> Iterator[Callable[..., LogiusSimulator]]:
    started: list[LogiusSimulator] = []

    def make(**overrides: object) -> LogiusSimulator:
        settings: dict[str, object] = {
            "subscribed_all": True,
            "result_endpoint": inbox[1],
            "result_delay_seconds": 0.0,
            "result_retry_interval_seconds": 0.05,
            "result_retry_max_interval_seconds": 0.2,
            "timeout_hold_seconds": 0.6,
            "fault_max_per_message": 1,
        }
        settings.update(overrides)
        simulator = LogiusSimulator(SimulatorConfig(**settings), pki)  # type: ignore[arg-type]
        simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


def letters(n: int) -> list[tuple[str, str]]:
    return [(str(uuid.uuid4()), BSNS[i % len(BSNS)]) for i in range(n)]


def assert_invariants(simulator: LogiusSimulator, inbox: Inbox) -> None:
    """At most one delivery per letter; the log is exactly what the reports call Verwerkt;
    every result was pushed and acknowledged."""
    assert simulator.wait_idle(20)
    delivered = [r.bericht_id for r in simulator.delivery_log]
    assert len(delivered) == len(set(delivered))
    assert all(simulator.deliveries_of(b) == 1 for b in delivered)
    reported_verwerkt = {b for result in simulator.results for b, code in result.codes if code == "Verwerkt"}
    assert reported_verwerkt == set(delivered)
    pushed = {p.message_id for p in inbox.pushes}
    for result in simulator.results:
        assert result.acknowledged and result.message_id in pushed, result
    assert [d["bericht_id"] for d in simulator.delivery_log_json()] == delivered
    assert all(d["deliveries"] == 1 for d in simulator.delivery_log_json())


# -- configuration ----------------------------------------------------------------------------


def test_with_fault_rate_makes_that_share_of_the_calls_at_each_place_misbehave() -> None:
    # Given a config / When a fault rate of 0.3 is spread, as a copy and as a fresh config
    base = SimulatorConfig(subscribed={"999990019"}, fault_seed=3)
    copy = base.with_fault_rate(0.3)
    fresh = SimulatorConfig.with_fault_rate(0.3, fault_seed=4)
    # Then every kind is on, and at each place the kinds that can strike there add up to about 0.3
    assert set(copy.faults) == set(FAULT_KINDS) and len(FAULT_KINDS) == 14
    assert all(p > 0 for p in copy.faults.values())
    disruptions = ("http_5xx", "timeout", "drop_ack", "ebms_error")
    assert sum(copy.faults[k] for k in ("latency", *disruptions)) == pytest.approx(0.3)
    results = ("duplicate_result", "late_result", "out_of_order_results", "gzip_result", "nil_guid", "random_code")
    assert sum(copy.faults[k] for k in results) == pytest.approx(0.3)
    assert copy.faults["wus_application_fault"] == pytest.approx(0.1) and copy.faults["rate_limit"] == pytest.approx(0.3)
    assert copy.subscribed == {"999990019"} and copy.fault_seed == 3 and base.faults == {}
    assert fresh.faults == copy.faults and fresh.fault_seed == 4


@pytest.mark.parametrize("faults", [{"lightning": 0.1}, {"latency": 1.5}])
def test_unknown_fault_kinds_and_bad_probabilities_are_refused(faults: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(faults=faults)


def test_the_dice_are_the_same_for_the_same_seed() -> None:
    # Given two injectors with seed 11 and one with seed 12, every kind at 0.3
    faults = dict.fromkeys(FAULT_KINDS, 0.3)

    def plans(seed: int) -> list[object]:
        injector = FaultInjector(seed=seed)
        return ([injector.plan_request(faults, f"m{i}", latency_range=(0.05, 0.3), cap=99) for i in range(20)]
                + [injector.plan_result(faults, late_range=(1, 3)) for _ in range(20)]
                + [injector.plan_wus(faults, latency_range=(0.05, 0.3)) for _ in range(20)])

    # When each plans 20 messages, 20 batches and 20 WUS calls / Then the same seed gives the same faults
    assert plans(11) == plans(11)
    assert plans(11) != plans(12)
    assert any(p.disruption for p in plans(11)[:20])  # type: ignore[attr-defined]


def test_a_simulator_run_is_reproducible_under_a_seed(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity
) -> None:
    # Given two simulators with the same seed and http_5xx at 50 %, and a sequential sender
    runs = []
    for _ in range(2):
        simulator = make_simulator(faults={"http_5xx": 0.5}, fault_seed=42, fault_max_per_message=99)
        outcomes = [HandBuiltSender(simulator, sender).send(letters(1)).outcomes for _ in range(6)]
        runs.append(outcomes)
        simulator.stop()
    # When each gets the same six batches / Then both answer the same, attempt by attempt
    assert runs[0] == runs[1]
    assert any("http-" in o for outcome in runs[0] for o in outcome)


# -- request faults: the sender retries with the same MessageId --------------------------------


def test_latency_slows_the_answer_down(make_simulator: Callable[..., LogiusSimulator], sender: Identity,
                                       inbox: tuple[Inbox, str]) -> None:
    # Given latency on every call
    simulator = make_simulator(faults={"latency": 1.0}, latency_seconds=(0.1, 0.15))
    # When a batch is sent
    started = time.monotonic()
    sent = HandBuiltSender(simulator, sender).send(letters(1))
    # Then it is acknowledged after at least 0.1 s, and delivered once
    assert sent.outcomes == ["ack"] and time.monotonic() - started >= 0.1
    assert simulator.fault_counts["latency"] == 1
    assert_invariants(simulator, inbox[0])


def test_http_5xx_comes_before_processing_and_a_retry_gets_through(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given HTTP 5xx on every first arrival of a MessageId
    simulator = make_simulator(faults={"http_5xx": 1.0})
    batch = letters(2)
    # When a batch is sent and retried with the same MessageId
    sent = HandBuiltSender(simulator, sender).send(batch)
    # Then the first answer is 503 or 500, the retry is acknowledged, and the batch was processed once
    assert sent.outcomes[0] in ("http-503", "http-500") and sent.outcomes[1:] == ["ack"]
    assert [b.message_id for b in simulator.received_batches] == [sent.message_id]
    assert simulator.duplicate_messages == 0  # the 5xx stored nothing: the retry was the first real arrival
    assert inbox[0].report_for(sent.batch_id) == {b: "Verwerkt" for b, _ in batch}
    assert simulator.fault_counts["http_5xx"] == 1
    assert_invariants(simulator, inbox[0])


def test_timeout_processes_then_holds_the_answer_and_the_retry_gets_the_stored_ack(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given a simulator that holds its first answer 0.6 s, and a sender that waits 0.25 s
    simulator = make_simulator(faults={"timeout": 1.0}, timeout_hold_seconds=0.6)
    batch = letters(1)
    # When the sender times out and retries with the same MessageId
    sent = HandBuiltSender(simulator, sender, timeout=0.25).send(batch)
    # Then the retry is answered from the duplicate store, and the letter was delivered once
    assert sent.outcomes == ["timeout", "ack"]
    assert simulator.duplicate_messages == 1
    assert len(simulator.received_batches) == 1
    assert inbox[0].report_for(sent.batch_id) == {batch[0][0]: "Verwerkt"}
    assert simulator.fault_counts["timeout"] == 1
    assert_invariants(simulator, inbox[0])


def test_drop_ack_processes_then_closes_the_connection(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given a simulator that drops its first answer
    simulator = make_simulator(faults={"drop_ack": 1.0})
    batch = letters(1)
    # When the sender sees the connection close and retries
    sent = HandBuiltSender(simulator, sender).send(batch)
    # Then the retry gets the stored ack; processed and delivered once
    assert sent.outcomes == ["dropped", "ack"]
    assert simulator.duplicate_messages == 1 and len(simulator.received_batches) == 1
    assert inbox[0].report_for(sent.batch_id) == {batch[0][0]: "Verwerkt"}
    assert simulator.fault_counts["drop_ack"] == 1
    assert_invariants(simulator, inbox[0])


def test_ebms_error_is_a_warning_delivery_failure_and_nothing_is_processed(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str],
    shared_dir, request: pytest.FixtureRequest
) -> None:
    # Given a simulator that answers the first arrival with a MessageError
    simulator = make_simulator(faults={"ebms_error": 1.0})
    payload, batch_id = berichten(letters(1))
    body, headers, message_id = ebms_message(payload)
    # When the message is sent
    first = https_post(simulator.ebms_url, body, headers, identity=sender, ca_path=simulator.ca_cert_path)
    # Then it is a schema-valid MessageError DeliveryFailure of severity Warning, and nothing was received
    envelope = etree.fromstring(first.body, PARSER)
    error_list = envelope.find("SOAP:Header/eb:ErrorList", NS)
    assert error_list.get(f"{{{EB}}}highestSeverity") == "Warning"
    assert classify(first, message_id) == "warning:DeliveryFailure"
    assert envelope.findtext(".//eb:MessageData/eb:RefToMessageId", namespaces=NS) == message_id
    schema = etree.XMLSchema(etree.parse(str(shared_dir / "ebms" / "msg-header-2_0.xsd"), PARSER))
    assert schema.validate(error_list), schema.error_log
    assert simulator.received_batches == []
    # And when it is sent again with the same MessageId, it is acknowledged and processed once
    second = https_post(simulator.ebms_url, body, headers, identity=sender, ca_path=simulator.ca_cert_path)
    assert classify(second, message_id) == "ack"
    assert len(simulator.received_batches) == 1 and simulator.duplicate_messages == 0
    inbox[0].report_for(batch_id)
    assert simulator.fault_counts["ebms_error"] == 1
    assert_invariants(simulator, inbox[0])


def test_request_faults_also_hit_asynchronous_acknowledgements(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given a sender without SyncReply and a simulator that drops the first HTTP answer
    simulator = make_simulator(faults={"drop_ack": 1.0})
    # When the sender retries after the dropped connection
    sent = HandBuiltSender(simulator, sender, sync_reply=False).send(letters(1))
    # Then the retry gets 204, the Acknowledgment is POSTed twice (first answer, then the replay), identical
    assert sent.outcomes == ["dropped", "accepted"]
    assert simulator.wait_idle(10)
    signals = inbox[0].signals
    assert len(signals) == 2 and signals[0] == signals[1]
    assert etree.fromstring(signals[0], PARSER).findtext(
        "SOAP:Header/eb:Acknowledgment/eb:RefToMessageId", namespaces=NS) == sent.message_id
    assert_invariants(simulator, inbox[0])


# -- result faults ------------------------------------------------------------------------------


def test_duplicate_result_pushes_the_same_message_twice(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given duplicate results
    simulator = make_simulator(faults={"duplicate_result": 1.0})
    # When a batch is processed
    sent = HandBuiltSender(simulator, sender).send(letters(2))
    assert simulator.wait_idle(10)
    # Then its result arrived twice with the same MessageId and the same bytes, both acknowledged
    pushes = inbox[0].pushes
    assert len(pushes) == 2 and pushes[0].message_id == pushes[1].message_id and pushes[0].body == pushes[1].body
    (record,) = simulator.results
    assert record.deliveries == 2 and record.faults == ["duplicate_result"]
    assert inbox[0].report_for(sent.batch_id)
    assert_invariants(simulator, inbox[0])


def test_late_result_arrives_later(make_simulator: Callable[..., LogiusSimulator], sender: Identity,
                                   inbox: tuple[Inbox, str]) -> None:
    # Given late results (0.4-0.5 s here; 1-3 s by default)
    simulator = make_simulator(faults={"late_result": 1.0}, late_result_seconds=(0.4, 0.5))
    # When a batch is acknowledged
    sent = HandBuiltSender(simulator, sender).send(letters(1))
    acked = time.monotonic()
    inbox[0].report_for(sent.batch_id)
    # Then its result came at least 0.4 s after the acknowledgement
    assert inbox[0].pushes[0].at - acked >= 0.35
    assert simulator.fault_counts["late_result"] == 1
    assert_invariants(simulator, inbox[0])


def test_out_of_order_results_hold_a_result_until_the_next_one_was_pushed(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given a first batch whose result is held out of order
    simulator = make_simulator(faults={"out_of_order_results": 1.0}, out_of_order_max_hold_seconds=5.0)
    client = HandBuiltSender(simulator, sender)
    first = client.send(letters(1))
    deadline = time.monotonic() + 5
    while not simulator.results and time.monotonic() < deadline:
        time.sleep(0.01)
    # When a second batch follows without faults
    simulator.config.faults = {}
    second = client.send(letters(1))
    assert simulator.wait_idle(10)
    # Then the second batch's result arrived first, the held one right after it (not at the 5 s fallback)
    reports = inbox[0].reports()
    assert [batch_id for batch_id, _, _ in reports] == [second.batch_id, first.batch_id]
    assert reports[1][2].at - reports[0][2].at < 1.0
    assert simulator.fault_counts["out_of_order_results"] == 1
    assert_invariants(simulator, inbox[0])


def test_a_held_result_is_pushed_anyway_when_no_later_one_comes(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given one out-of-order batch and no other traffic
    simulator = make_simulator(faults={"out_of_order_results": 1.0}, out_of_order_max_hold_seconds=0.3)
    sent = HandBuiltSender(simulator, sender).send(letters(1))
    # When the hold expires / Then the result still reaches the sender
    assert inbox[0].report_for(sent.batch_id, timeout=5)
    assert_invariants(simulator, inbox[0])


def test_gzip_result_gzips_one_result(make_simulator: Callable[..., LogiusSimulator], sender: Identity,
                                      inbox: tuple[Inbox, str]) -> None:
    # Given gzip_results off but the gzip_result fault on
    simulator = make_simulator(faults={"gzip_result": 1.0}, gzip_results=False)
    batch = letters(1)
    sent = HandBuiltSender(simulator, sender).send(batch)
    # When the result arrives / Then its payload is gzip, and it reads as the right report
    assert inbox[0].report_for(sent.batch_id) == {batch[0][0]: "Verwerkt"}
    assert inbox[0].pushes[0].payload[:2] == b"\x1f\x8b"
    assert simulator.results[0].gzipped and simulator.fault_counts["gzip_result"] == 1
    assert_invariants(simulator, inbox[0])


def resend_until_settled(simulator: LogiusSimulator, client: HandBuiltSender, inbox: Inbox,
                         batch: list[tuple[str, str]], rounds: int = 8) -> dict[str, str]:
    """What a correct sender does: letters reported neither Verwerkt nor BerichtBestaatAl (or absent:
    the nil GUID) go again in a new batch with the same BerichtIDs. Returns the final code per letter."""
    final: dict[str, str] = {}
    remaining = list(batch)
    for _ in range(rounds):
        if not remaining:
            break
        sent = client.send(remaining)
        assert sent.outcomes[-1] in ("ack", "accepted"), sent.outcomes
        codes = inbox.report_for(sent.batch_id)
        for bericht_id, _ in remaining:
            final[bericht_id] = codes.get(bericht_id, "missing (nil GUID)")
        remaining = [(b, bsn) for b, bsn in remaining if final[b] not in ("Verwerkt", "BerichtBestaatAl")]
    return final


def test_nil_guid_reports_one_letter_unreadable_and_does_not_deliver_it(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given the nil_guid fault
    simulator = make_simulator(faults={"nil_guid": 1.0})
    batch = letters(3)
    client = HandBuiltSender(simulator, sender)
    sent = client.send(batch)
    # When the result arrives
    codes = inbox[0].report_for(sent.batch_id)
    # Then one letter is reported as the nil GUID with XmlValidatieTegenXsdValtNegatiefUit, the others Verwerkt
    assert codes[NIL_GUID] == "XmlValidatieTegenXsdValtNegatiefUit"
    (missing,) = [b for b, _ in batch if b not in codes]
    assert {codes[b] for b, _ in batch if b != missing} == {"Verwerkt"}
    assert simulator.deliveries_of(missing) == 0
    assert simulator.fault_counts["nil_guid"] == 1 and simulator.results[0].faults == ["nil_guid"]
    assert_invariants(simulator, inbox[0])
    # And when the sender resends that letter (no more faults), it is delivered, once
    simulator.config.faults = {}
    assert resend_until_settled(simulator, client, inbox[0], [b for b in batch if b[0] == missing]) == {missing: "Verwerkt"}
    assert simulator.deliveries_of(missing) == 1
    assert_invariants(simulator, inbox[0])


def test_random_code_fails_one_letter_with_another_code_and_does_not_deliver_it(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given the random_code fault
    simulator = make_simulator(faults={"random_code": 1.0}, fault_seed=5)
    batch = letters(3)
    sent = HandBuiltSender(simulator, sender).send(batch)
    # When the result arrives
    codes = inbox[0].report_for(sent.batch_id)
    # Then exactly one letter has a code from RANDOM_CODES and is not delivered; the others are
    odd = [b for b, _ in batch if codes[b] != "Verwerkt"]
    assert len(odd) == 1 and codes[odd[0]] in RANDOM_CODES
    assert codes[odd[0]] not in ("Verwerkt", "NietActiefOfGeabonneerd", "BerichtBestaatAl")
    assert simulator.deliveries_of(odd[0]) == 0
    assert simulator.fault_counts["random_code"] == 1
    assert_invariants(simulator, inbox[0])


# -- WUS faults and the rate limit ----------------------------------------------------------------


def wus_request(bsns: list[str]) -> bytes:
    klanten = "".join(f"<c:Klant><c:Key>{b}</c:Key><c:Rol>Burger</c:Rol></c:Klant>" for b in bsns)
    return f"""<s:Envelope xmlns:s="{SOAP}" xmlns:wsa="http://www.w3.org/2005/08/addressing"><s:Header>
<wsa:To>https://globe.example/wus</wsa:To><wsa:Action>{WUS_ACTION}</wsa:Action><wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>
</s:Header><s:Body><ValidateAbonnementen xmlns="http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01"
 xmlns:t="http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/Types/2009/01" xmlns:c="http://schemas.rdw.nl/GEB/Shared/Types/2009/01">
<validateAbonnementenAanvraag><t:berichtleverancierCode>{SENDER_OIN}</t:berichtleverancierCode>
<t:berichtTypeCode>AANSLAG</t:berichtTypeCode><t:klanten>{klanten}</t:klanten></validateAbonnementenAanvraag>
</ValidateAbonnementen></s:Body></s:Envelope>""".encode()


def ask_wus(simulator: LogiusSimulator, identity: Identity) -> HttpResponse:
    return https_post(simulator.wus_url, wus_request([BSNS[0]]),
                      {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": WUS_ACTION},
                      identity=identity, ca_path=simulator.ca_cert_path)


@pytest.mark.parametrize(
    ("kind", "detail", "faultcode"),
    [("wus_application_fault", "ApplicationFault", "s:Client"),
     ("wus_dependent_fault", "DependentServiceFault", "s:Server")],
)
def test_wus_faults_answer_the_wsdl_typed_fault_and_a_retry_succeeds(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, shared_dir,
    kind: str, detail: str, faultcode: str
) -> None:
    # Given the WUS fault switched on
    simulator = make_simulator(faults={kind: 1.0})
    # When the subscription check is called
    faulted = ask_wus(simulator, sender)
    # Then a SOAP Fault (HTTP 500) with the WSDL's typed detail, whose detail is schema-valid
    assert faulted.status == 500
    envelope = etree.fromstring(faulted.body, PARSER)
    fault = envelope.find("SOAP:Body/SOAP:Fault", NS)
    assert fault.findtext("faultcode") == faultcode
    typed = fault.find(f"detail/{{http://schemas.rdw.nl/GEB/Shared/Types/2009/01}}{detail}")
    assert typed is not None
    xsd3 = etree.XMLSchema(etree.parse(str(shared_dir / "logius" / "BerichtenboxValidatieService" / "xsd3.xsd"), PARSER))
    assert xsd3.validate(typed), xsd3.error_log
    assert envelope.findtext("SOAP:Header/{http://www.w3.org/2005/08/addressing}Action", namespaces=NS).endswith(
        f"ValidateAbonnementen{detail}Fault")
    assert simulator.fault_counts[kind] == 1
    # And when the fault is gone, the retry answers
    simulator.config.faults = {}
    assert ask_wus(simulator, sender).status == 200


def test_rate_limit_refuses_calls_over_the_limit_per_client_oin(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, pki: TestPKI, inbox: tuple[Inbox, str]
) -> None:
    # Given at most 3 calls per second per client OIN (on a clock the test moves)
    simulator = make_simulator(faults={"rate_limit": 1.0}, rate_limit_per_second=3)
    clock = [1000.0]
    simulator._limiter = RateLimiter(clock=lambda: clock[0])
    other = pki.issue("other-client", oin="00000001005555555000")
    # When one client makes 5 WUS calls and an ebMS call in a burst
    answers = [ask_wus(simulator, sender).status for _ in range(5)]
    payload, _ = berichten(letters(1))
    body, headers, message_id = ebms_message(payload)
    refused = https_post(simulator.ebms_url, body, headers, identity=sender, ca_path=simulator.ca_cert_path)
    # Then the first 3 pass, the rest get a retryable Server fault (WUS) or HTTP 429 (ebMS)
    assert answers[:3] == [200, 200, 200] and answers[3:] == [500, 500]
    assert refused.status == 429 and refused.header("Retry-After") == "1"
    assert simulator.received_batches == []
    # And another client is not limited (it is refused 0002: it may not ask for SENDER_OIN)
    other_answer = ask_wus(simulator, other)
    assert etree.fromstring(other_answer.body, PARSER).findtext(".//faultstring").startswith("0002")
    assert simulator.fault_counts["rate_limit"] == 3
    # And a second later the same message gets through
    clock[0] += 1.0
    again = https_post(simulator.ebms_url, body, headers, identity=sender, ca_path=simulator.ca_cert_path)
    assert classify(again, message_id) == "ack"
    assert_invariants(simulator, inbox[0])


def test_the_wus_rate_limit_fault_is_a_detail_less_server_fault(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity
) -> None:
    simulator = make_simulator(faults={"rate_limit": 1.0}, rate_limit_per_second=0)
    response = ask_wus(simulator, sender)
    fault = etree.fromstring(response.body, PARSER).find("SOAP:Body/SOAP:Fault", NS)
    assert response.status == 500 and response.header("Retry-After") == "1"
    assert fault.findtext("faultcode") == "s:Server" and fault.findtext("faultstring").startswith("0051")
    assert fault.find("detail") is None


# -- everything at once ------------------------------------------------------------------------------


def test_under_every_fault_at_once_each_letter_is_delivered_exactly_once(
    make_simulator: Callable[..., LogiusSimulator], sender: Identity, inbox: tuple[Inbox, str]
) -> None:
    # Given every fault kind at once, each at 20 %, with short delays
    simulator = make_simulator(
        faults=dict.fromkeys(FAULT_KINDS, 0.2), fault_seed=2026, fault_max_per_message=2,
        rate_limit_per_second=15,
        timeout_hold_seconds=0.4, latency_seconds=(0.01, 0.03), late_result_seconds=(0.1, 0.2),
        out_of_order_max_hold_seconds=0.5,
    )
    client = HandBuiltSender(simulator, sender, timeout=0.25, attempts=10)
    # When twenty letters go in five batches and the sender resends what failed
    all_letters = letters(20)
    final: dict[str, str] = {}
    for start in range(0, 20, 4):
        final.update(resend_until_settled(simulator, client, inbox[0], all_letters[start:start + 4]))
    # Then every letter ended Verwerkt or BerichtBestaatAl, was delivered exactly once, and the log is exact
    assert set(final.values()) <= {"Verwerkt", "BerichtBestaatAl"}
    assert all(simulator.deliveries_of(b) == 1 for b, _ in all_letters)
    assert {r.bericht_id for r in simulator.delivery_log} == {b for b, _ in all_letters}
    assert_invariants(simulator, inbox[0])
    # And the faults did strike (the seed makes this run the same every time)
    struck = {kind for kind, n in simulator.fault_counts.items() if n}
    assert len(struck) >= 8, simulator.fault_counts

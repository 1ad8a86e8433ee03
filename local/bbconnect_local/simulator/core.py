"""LogiusSimulator: GLOBE on one machine (ebMS2 BerichtVerwerkService + WUS ValidateAbonnementen)."""
from __future__ import annotations

import datetime as _dt
import gzip
import http.client
import logging
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from bbconnect_local.mtls_server import HttpRequest, HttpResponse, MutualTlsServer, https_post
from bbconnect_local.pki import OIN_PATTERN, Identity, TestPKI, client_ssl_context
from bbconnect_local.simulator import ebms, globe, wus
from bbconnect_local.simulator._xml import mask_bsn, redact_bsns, utcnow
from bbconnect_local.simulator.mime import build_multipart

log = logging.getLogger("bbconnect_local.simulator")

LOGIUS_TEST_OIN = "00000004003214345001"
BERICHTENBOX_SERVICE = "MIJNOVERHEID.ebMS.BB.2.0"
BERICHTENBOX_SERVICE_TYPE = "urn:osb:services"
ACTION_REQUEST = "GLOBE-R-BV-Request"
ACTION_RESULT = "GLOBE-R-BV-Result"
EBMS_PATH = "/ebms"
WUS_PATH = "/wus/BerichtenboxValidatieService"


@dataclass
class SimulatorConfig:
    """How the simulated GLOBE behaves. Sets and dicts may be changed while it runs."""

    logius_oin: str = LOGIUS_TEST_OIN
    subscribed: set[str] = field(default_factory=set)
    subscribed_all: bool = False
    result_codes: dict[str, str] = field(default_factory=dict)
    authorised_senders: dict[str, set[str]] = field(default_factory=dict)
    result_endpoint: str | None = None
    result_delay_seconds: float = 0.2
    gzip_results: bool = False
    # The CPA as the simulator sees it.
    cpa_id: str | None = None  # None: any CPAId; set: others get a SOAP Fault, as an unknown CPA does
    sender_role: str | None = "SR"  # None: From/Role not checked
    logius_role: str | None = "SP"  # None: To/Role not checked
    service: str = BERICHTENBOX_SERVICE
    service_type: str | None = BERICHTENBOX_SERVICE_TYPE
    require_sync_reply: bool = True
    # GLOBE's rules.
    unsupported_berichttypes: set[str] = field(default_factory=lambda: {"ONBEKEND"})
    max_attachment_bytes: int = 500_000
    logius_dir: Path | None = None  # official XSDs; None: look in ../shared/logius (else structural checks)
    use_xsd: bool = True
    # Pushing results.
    result_retries: int = 3
    result_retry_interval_seconds: float = 0.2
    result_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not OIN_PATTERN.fullmatch(self.logius_oin):
            raise ValueError("logius_oin must be an OIN (20 of [0-9A-Z])")
        unknown = set(self.result_codes.values()) - set(globe.VERWERKINGSCODES)
        if unknown:
            raise ValueError(f"unknown VerwerkingsCode(s) in result_codes: {sorted(unknown)}")


@dataclass(frozen=True)
class DeliveryRecord:
    batch_id: str
    bericht_id: str
    berichttype: str
    sender_oin: str  # BerichtLeverancierID of the batch (the organisation the letter is from)
    code: str
    bsn_masked: str
    at: _dt.datetime
    connection_oin: str | None = None  # OIN of the client certificate that delivered it


@dataclass
class ReceivedBatch:
    message_id: str
    cpa_id: str
    conversation_id: str
    from_oin: str
    client_oin: str | None
    batch_id: str  # the nil GUID when unreadable
    letters: int
    payload: bytes = field(repr=False)  # the raw Berichten payload: holds BSNs, never log it
    received_at: _dt.datetime = field(default_factory=utcnow)


@dataclass
class ResultRecord:
    batch_id: str
    request_message_id: str
    message_id: str  # of the GLOBE-R-BV-Result message
    payload: bytes  # the BerichtVerwerkResponse XML (not gzipped)
    codes: list[tuple[str, str]]  # (BerichtID, VerwerkingsCode)
    attempts: int = 0
    acknowledged: bool = False
    error: str | None = None


class LogiusSimulator:
    """A fake GLOBE behind two-way TLS: `/ebms` (GLOBE-R-BV-Request) and the WUS subscription check."""

    def __init__(self, config: SimulatorConfig, pki: TestPKI) -> None:
        self.config = config
        self.pki = pki
        self._server: MutualTlsServer | None = None
        self._identity: Identity | None = None
        self._client_context: ssl.SSLContext | None = None
        self._host = "localhost"
        self._lock = threading.RLock()  # request-side state
        self._judge_lock = threading.Lock()  # one batch judged at a time
        self._idle = threading.Condition()
        self._pending = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: dict[tuple[str, str], HttpResponse] = {}
        self._delivered: dict[str, DeliveryRecord] = {}
        self._delivery_log: list[DeliveryRecord] = []
        self._outcomes: list[DeliveryRecord] = []
        self._received: list[ReceivedBatch] = []
        self._results: list[ResultRecord] = []
        self._wus_calls = 0
        self._duplicates = 0
        logius_dir = globe.find_logius_dir(config.logius_dir) if config.use_xsd else None
        self._request_schema = globe.load_request_schema(logius_dir)
        self._wus_schema = wus.load_wus_schema(wus.find_wus_dir(logius_dir))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._stopping.clear()
        self._identity = self.pki.issue("logius-simulator", oin=self.config.logius_oin)
        self._client_context = client_ssl_context(self._identity, self.pki.ca_cert_path)
        self._server = MutualTlsServer(self._handle, self._identity, self.pki.ca_cert_path)
        base_url = self._server.start()
        self._host = urlsplit(base_url).hostname or "localhost"
        log.info("Logius simulator on %s (XSD validation: %s)", base_url,
                 "official XSD" if self._request_schema is not None else "structural")
        return base_url

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> LogiusSimulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.base_url

    @property
    def ebms_url(self) -> str:
        return self.base_url + EBMS_PATH

    @property
    def wus_url(self) -> str:
        return self.base_url + WUS_PATH

    @property
    def ca_cert_path(self) -> Path:
        return self.pki.ca_cert_path

    @property
    def identity(self) -> Identity:
        """The simulator's own certificate (server side, and client side when pushing results)."""
        if self._identity is None:
            raise RuntimeError("simulator not started")
        return self._identity

    @property
    def validates_with_xsd(self) -> bool:
        return self._request_schema is not None

    # -- what happened --------------------------------------------------------------------------

    @property
    def delivery_log(self) -> list[DeliveryRecord]:
        """Letters delivered to a Berichtenbox (code Verwerkt), oldest first; BSNs masked."""
        with self._lock:
            return list(self._delivery_log)

    @property
    def outcomes(self) -> list[DeliveryRecord]:
        """Every judged letter with its VerwerkingsCode (delivered or not); BSNs masked."""
        with self._lock:
            return list(self._outcomes)

    def deliveries_of(self, bericht_id: str) -> int:
        key = bericht_id.lower()
        with self._lock:
            return sum(1 for record in self._delivery_log if record.bericht_id.lower() == key)

    @property
    def wus_calls(self) -> int:
        with self._lock:
            return self._wus_calls

    @property
    def duplicate_messages(self) -> int:
        """How many ebMS messages were answered from the duplicate store."""
        with self._lock:
            return self._duplicates

    @property
    def received_batches(self) -> list[ReceivedBatch]:
        with self._lock:
            return list(self._received)

    @property
    def results(self) -> list[ResultRecord]:
        with self._lock:
            return list(self._results)

    def result_for(self, batch_id: str) -> ResultRecord | None:
        """The latest processing report for a BatchID."""
        with self._lock:
            for record in reversed(self._results):
                if record.batch_id.lower() == batch_id.lower():
                    return record
        return None

    def pending_results(self) -> int:
        with self._idle:
            return self._pending

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every accepted batch has been judged and its result pushed (or given up)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    # -- rules ----------------------------------------------------------------------------------

    def is_subscribed(self, bsn: str) -> bool:
        return self.config.subscribed_all or bsn in self.config.subscribed

    def may_send_for(self, client_oin: str | None, leverancier_id: str | None) -> bool:
        if not client_oin or not leverancier_id:
            return False
        if leverancier_id == client_oin:
            return True
        return leverancier_id in self.config.authorised_senders.get(client_oin, set())

    # -- HTTP -----------------------------------------------------------------------------------

    def _handle(self, request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.path).path.rstrip("/")
        if path == EBMS_PATH:
            return self._handle_ebms(request)
        if path == WUS_PATH:
            with self._lock:
                self._wus_calls += 1
            return wus.handle_wus(
                request,
                schema=self._wus_schema,
                is_subscribed=self.is_subscribed,
                may_send_for=self.may_send_for,
                on_call=self._log_wus_call,
            )
        return HttpResponse(404, {"Content-Type": "text/plain"}, b"not found\n")

    @staticmethod
    def _log_wus_call(call: wus.WusCall) -> None:
        log.info(
            "WUS ValidateAbonnementen from %s for %s/%s: %d BSN(s) (%s)",
            call.client_oin, call.leverancier_code, call.berichttype, len(call.bsns),
            ", ".join(mask_bsn(b) for b in call.bsns[:3]) + (", ..." if len(call.bsns) > 3 else ""),
        )

    def _own_party(self) -> ebms.Party:
        return ebms.Party([(ebms.OIN_PARTY_TYPE, self.config.logius_oin)], self.config.logius_role)

    def _signal(self, body: bytes) -> HttpResponse:
        return HttpResponse(200, {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '"ebXML"'}, body)

    def _soap_fault(self, message: str, *, client: bool = True) -> HttpResponse:
        log.info("ebMS request refused with a SOAP Fault: %s", message)
        return HttpResponse(500, {"Content-Type": "text/xml; charset=UTF-8"}, ebms.build_soap_fault(message, client=client))

    def _handle_ebms(self, request: HttpRequest) -> HttpResponse:
        received_at = utcnow()
        if not ebms.soap_action_ok(request.headers.get("SOAPAction")):
            return self._soap_fault('Unable to process message: SOAPAction must be "ebXML"')
        try:
            message = ebms.read_message(request.headers.get("Content-Type"), request.body)
        except ebms.EbmsFault as fault:
            return self._soap_fault(str(fault), client=fault.client)
        header = message.header
        if header is None or not header.message_id:
            return self._soap_fault("no eb:MessageHeader with a MessageId")
        if self.config.cpa_id is not None and header.cpa_id != self.config.cpa_id:
            return self._soap_fault(f"CPA {header.cpa_id} not found")
        if header.service == ebms.MSH_SERVICE and header.action in ("Acknowledgment", "MessageError"):
            log.info("ignoring an unsolicited %s for %s", header.action, header.ref_to_message_id)
            return HttpResponse(204, {}, b"")

        own = self._own_party()
        from_oin = header.from_party.oin if header.from_party else None
        if request.client_oin is None or from_oin != request.client_oin:
            error = ebms.EbmsError(
                "SecurityFailure",
                "the OIN in the client certificate does not match From/PartyId",
                "//eb:MessageHeader/eb:From/eb:PartyId",
            )
            log.info("ebMS %s refused: %s", header.message_id, error)
            return self._signal(ebms.build_message_error(header, own, [error], host=self._host, now=utcnow()))

        with self._lock:
            key = (header.cpa_id or "", header.message_id)
            stored = self._responses.get(key)
            if stored is not None:
                self._duplicates += 1
                log.info("duplicate ebMS MessageId %s: replaying the first answer", header.message_id)
                return stored
            if any(mid == header.message_id for (_, mid) in self._responses):
                return self._soap_fault(f"MessageId {header.message_id} already used in another CPA")

            response, batch = self._accept(message, received_at, request.client_oin)
            self._responses[key] = response
            if batch is not None:
                self._received.append(batch)
                self._schedule(batch)
            return response

    def _accept(
        self, message: ebms.EbmsMessage, received_at: _dt.datetime, client_oin: str | None
    ) -> tuple[HttpResponse, ReceivedBatch | None]:
        header = message.header
        assert header is not None and header.message_id is not None
        own = self._own_party()
        now = utcnow()
        if header.service == ebms.MSH_SERVICE and header.action == "Ping":
            return self._signal(ebms.build_pong(header, own, host=self._host, now=now)), None
        expect = ebms.Expectations(
            to_oin=self.config.logius_oin,
            service=self.config.service,
            service_type=self.config.service_type,
            actions=(ACTION_REQUEST,),
            from_role=self.config.sender_role,
            to_role=self.config.logius_role,
            require_sync_reply=self.config.require_sync_reply,
        )
        try:
            part = ebms.validate_business_message(message, expect, now)
        except ebms.EbmsError as error:
            log.info("ebMS %s refused: %s", header.message_id, error)
            return self._signal(ebms.build_message_error(header, own, [error], host=self._host, now=now)), None

        ack = ebms.build_acknowledgment(header, own, host=self._host, received_at=received_at, now=now)
        parsed = globe.parse_batch(part.content, None, validate=False)  # a first look; judged later
        batch = ReceivedBatch(
            message_id=header.message_id,
            cpa_id=header.cpa_id or "",
            conversation_id=header.conversation_id or "",
            from_oin=(header.from_party.oin if header.from_party else None) or "",
            client_oin=client_oin,
            batch_id=parsed.batch_id,
            letters=len(parsed.letters),
            payload=part.content,
            received_at=received_at,
        )
        log.info("accepted ebMS %s: batch %s with %d letter(s)", header.message_id, batch.batch_id, batch.letters)
        return self._signal(ack), batch

    # -- background: judge the batch, push the result -------------------------------------------

    def _schedule(self, batch: ReceivedBatch) -> None:
        with self._idle:
            self._pending += 1
        thread = threading.Thread(target=self._process, args=(batch,), name=f"globe-{batch.batch_id[:8]}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _process(self, batch: ReceivedBatch) -> None:
        try:
            if self._stopping.wait(self.config.result_delay_seconds):
                return
            record = self._judge(batch)
            if self.config.result_endpoint and not self._stopping.is_set():
                self._push(record, batch)
        except Exception:  # never raise in the background: log it
            log.exception("processing batch %s failed", batch.batch_id)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _judge(self, batch: ReceivedBatch) -> ResultRecord:
        parsed = globe.parse_batch(batch.payload, self._request_schema)
        if parsed.schema_errors:
            log.info("batch %s is not schema-valid: %s", parsed.batch_id,
                     redact_bsns("; ".join(parsed.schema_errors[:3])))
        rules = globe.Rules(
            authorised=self.may_send_for(batch.client_oin, parsed.leverancier_id),
            unsupported_berichttypes=set(self.config.unsupported_berichttypes),
            max_attachment_bytes=self.config.max_attachment_bytes,
            received_at=batch.received_at,
        )
        letters = parsed.letters or [globe.Letter(globe.NIL_GUID, "", None, None, None)]
        outcomes: list[tuple[globe.Letter, str]] = []
        with self._judge_lock:
            processed_at = utcnow()
            for letter in letters:
                bsn = letter.bsn or ""
                key = letter.reported_id.lower()
                code = globe.judge(
                    letter,
                    parsed,
                    rules,
                    delivered_before=key != globe.NIL_GUID and key in self._delivered,
                    override=self.config.result_codes.get(bsn),
                    subscribed=self.is_subscribed(bsn),
                )
                outcomes.append((letter, code))
                record = DeliveryRecord(
                    batch_id=parsed.batch_id,
                    bericht_id=letter.reported_id,
                    berichttype=letter.berichttype,
                    sender_oin=parsed.leverancier_id or batch.from_oin,
                    code=code,
                    bsn_masked=mask_bsn(bsn),
                    at=processed_at,
                    connection_oin=batch.client_oin,
                )
                with self._lock:
                    self._outcomes.append(record)
                    if code == "Verwerkt":
                        self._delivered[key] = record
                        self._delivery_log.append(record)
        payload = globe.build_response(
            parsed,
            outcomes,
            leverancier_code=parsed.leverancier_id or batch.from_oin,
            received_at=batch.received_at,
            processed_at=processed_at,
        )
        result = ResultRecord(
            batch_id=parsed.batch_id,
            request_message_id=batch.message_id,
            message_id=ebms.new_message_id(self._host),
            payload=payload,
            codes=[(letter.reported_id, code) for letter, code in outcomes],
        )
        with self._lock:
            self._results.append(result)
        counts: dict[str, int] = {}
        for _, code in outcomes:
            counts[code] = counts.get(code, 0) + 1
        log.info("batch %s judged: %s", parsed.batch_id, counts)
        return result

    def _push(self, record: ResultRecord, batch: ReceivedBatch) -> None:
        endpoint = self.config.result_endpoint
        assert endpoint is not None and self._identity is not None
        body, headers = self._result_message(record, batch)
        attempts = 1 + max(0, self.config.result_retries)
        for attempt in range(1, attempts + 1):
            if self._stopping.is_set():
                record.error = "simulator stopped"
                return
            record.attempts = attempt
            try:
                response = https_post(
                    endpoint, body, headers, identity=self._identity, ca_path=self.pki.ca_cert_path,
                    timeout=self.config.result_timeout_seconds, context=self._client_context,
                )
            except (OSError, http.client.HTTPException) as exc:
                record.error = f"transport: {exc.__class__.__name__}: {exc}"
            else:
                if response.status == 200:
                    outcome = ebms.read_signal(response.header("Content-Type"), response.body, record.message_id)
                    if outcome.kind == "ack":
                        record.acknowledged, record.error = True, None
                        log.info("result %s for batch %s acknowledged", record.message_id, record.batch_id)
                        return
                    if outcome.kind == "error":
                        record.error = f"MessageError: {outcome.detail}"
                        log.warning("result %s for batch %s refused: %s", record.message_id, record.batch_id, outcome.detail)
                        return  # final for this MessageId
                    record.error = f"no Acknowledgment: {outcome.detail}"
                else:
                    record.error = f"HTTP {response.status}"
            log.info("pushing result %s (attempt %d/%d) failed: %s", record.message_id, attempt, attempts, record.error)
            if attempt < attempts and self._stopping.wait(self.config.result_retry_interval_seconds):
                record.error = "simulator stopped"
                return
        log.warning("result %s for batch %s not acknowledged after %d attempt(s)", record.message_id, record.batch_id, attempts)

    def _result_message(self, record: ResultRecord, batch: ReceivedBatch) -> tuple[bytes, dict[str, str]]:
        """The GLOBE-R-BV-Result ebMS message (built once: retries resend the same bytes)."""
        now = utcnow()
        retries = max(0, self.config.result_retries)
        ttl = now + _dt.timedelta(
            seconds=(retries + 1) * (self.config.result_retry_interval_seconds + self.config.result_timeout_seconds) + 60
        )
        payload_cid = f"{record.batch_id}.{record.message_id}"
        envelope, _ = ebms.build_envelope(
            from_party=ebms.Party([(ebms.OIN_PARTY_TYPE, self.config.logius_oin)], self.config.logius_role),
            to_party=ebms.Party([(ebms.OIN_PARTY_TYPE, batch.from_oin)], self.config.sender_role),
            cpa_id=batch.cpa_id,
            conversation_id=ebms.new_message_id(self._host).split("@", 1)[0],
            service=self.config.service,
            service_type=self.config.service_type,
            action=ACTION_RESULT,
            message_id=record.message_id,
            timestamp=now,
            time_to_live=ttl,
            reliable=True,
            sync_reply=True,
            manifest_cids=[payload_cid],
        )
        soap = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        payload = gzip.compress(record.payload, mtime=0) if self.config.gzip_results else record.payload
        filename = f"BerichtVerwerkResponse-{record.batch_id}.xml" + (".gz" if self.config.gzip_results else "")
        body, boundary = build_multipart(
            [
                ({"Content-Type": "text/xml; charset=UTF-8", "Content-ID": f"<{record.message_id}>"}, soap),
                (
                    {
                        "Content-Type": "application/xml",
                        "Content-ID": f"<{payload_cid}>",
                        "Content-Disposition": f'attachment; filename="{filename}"',
                        "Content-Transfer-Encoding": "binary",
                    },
                    payload,
                ),
            ]
        )
        headers = {
            "SOAPAction": '"ebXML"',
            "Content-Type": (
                f'multipart/related; boundary="{boundary}"; type="text/xml"; '
                f'start="<{record.message_id}>"; start-info="text/xml"'
            ),
        }
        return body, headers

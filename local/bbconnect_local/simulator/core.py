"""LogiusSimulator: GLOBE on one machine, with teeth.

Behind two-way TLS it serves `/ebms` (ebMS2, Digikoppeling osb-rm unsigned) and the WUS subscription
check, and pushes its own ebMS messages to the sender's endpoint.

ebMS business messages (`GLOBE-R-BV-Request` with a `Berichten` batch, `GLOBE-R-A-Request` with an
`AbonnementAanvraag`) are checked as a real MSH checks them and acknowledged:
- **strictness**: the envelope against msg-header-2_0.xsd (from ../shared/ebms), the MIME structure
  (multipart/related with `start`, the SOAP part `text/xml; charset=UTF-8` with a Content-ID), the
  SOAPAction, the Timestamp's zone, the MessageId's form and the TimeToLive;
- **the CPA** (`cpas`, registered by the local run from each connection's CPA and read by the
  simulator's own reader, cpa.py): PartyIds with their types, roles, service, actions, the
  DuplicateElimination / AckRequested / SyncReply / eb:signed the sender's channel asks for, and,
  under a signing CPA (osb-rm-s), the signature, verified with xmlsec1 against the CPA's certificate
  (xmldsig.py). Its own acknowledgements are then signed and name the message's references, and its
  results go out signed, asking for a signed acknowledgement, which it checks. Without CPAs it uses
  the defaults below (osb-rm, unsigned); with CPAs an unknown CPAId gets a SOAP Fault. WUS calls signed
  as 2W-be-S are verified and answered signed (wss.py, xmlsec1);
- **acknowledgement mode** (`ack_mode`): with `eb:SyncReply` (syncReplyMode mshSignalsOnly) the
  Acknowledgment or MessageError is the HTTP 200 body; without it (syncReplyMode none) the answer is
  HTTP 204 with an empty body and the signal is POSTed as its own ebMS message to `ack_endpoint`
  (default: `result_endpoint`) over two-way TLS. `"sync"` refuses a message without SyncReply,
  `"async"` one with it (both `Inconsistent`), `"either"` follows the message. The legacy switch
  `require_sync_reply=True` means `"sync"`.
- **duplicates**: the first answer per (CPAId, MessageId) is stored; a retry gets it again (sync:
  the same bytes; async: 204 and the stored signal POSTed again) and is never processed twice.
- **Ping** gets a Pong and **StatusRequest** (ebMS2 §7) a StatusResponse, always synchronously:
  `Received` for a MessageId seen and not yet processed, `Processed` once its batch was judged (or
  its subscription list answered), `UnAuthorized` for a MessageId of another CPA or sender,
  `NotRecognized` otherwise.
After `result_delay_seconds` a batch is judged (XSD, OIN-in-CPA against OIN-in-letter, the other
GLOBE rules; see globe.py) and the `BerichtVerwerkResponse` pushed as `GLOBE-R-BV-Result`; after
`bulk_delay_seconds` a subscription request is answered with a gzipped `AbonnementAntwoord` as
`bulk_result_action` (see bulk.py for the invented answer schema). Pushes are reliable: the same
bytes (same MessageId) are resent with a growing interval until the sender acknowledges (sync, or
async by POSTing an Acknowledgment to `/ebms`), a MessageError refuses them, or the attempts run out.
As ebms-core, a push with SyncReply wants the Acknowledgment in the response and one without it
refuses an Acknowledgment there ("No sync Acknowledgment expected").

**Fault injection** (`faults`, `fault_seed`; see faults.py for the kinds). Whatever strikes, the
invariants hold: a letter reaches a box at most once (`deliveries_of(id) <= 1`, a re-delivery is
`BerichtBestaatAl`), the delivery log lists exactly the letters reported `Verwerkt`, and every result
reaches the sender eventually unless its endpoint refuses it (with faults switched on, pushes get
`fault_result_retries` attempts). `fault_counts` counts what was injected, `fault_log` says where.

Nothing here logs a full BSN: records carry masked BSNs, free text goes through `redact_bsns`.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import gzip
import http.client
import json
import logging
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from lxml import etree

from bbconnect_local.mtls_server import HttpRequest, HttpResponse, MutualTlsServer, https_post
from bbconnect_local.pki import OIN_PATTERN, Identity, TestPKI, client_ssl_context
from bbconnect_local.simulator import bulk, ebms, globe, wss, wus, xmldsig
from bbconnect_local.simulator import cpa as cpa_reader
from bbconnect_local.simulator._http import DROP, enable_drop
from bbconnect_local.simulator._xml import (
    EB_NS,
    child,
    mask_bsn,
    parse_datetime,
    parse_xml,
    redact_bsns,
    text_of,
    utcnow,
)
from bbconnect_local.simulator.faults import (
    RANDOM_CODES,
    FaultEvent,
    FaultInjector,
    RateLimiter,
    ResultPlan,
    spread,
    validate_faults,
)
from bbconnect_local.simulator.mime import build_multipart

log = logging.getLogger("bbconnect_local.simulator")

LOGIUS_TEST_OIN = "00000004003214345001"
BERICHTENBOX_SERVICE = "MIJNOVERHEID.ebMS.BB.2.0"
BERICHTENBOX_SERVICE_TYPE = "urn:osb:services"
ACTION_REQUEST = "GLOBE-R-BV-Request"
ACTION_RESULT = "GLOBE-R-BV-Result"
ACTION_BULK_REQUEST = "GLOBE-R-A-Request"
ACTION_BULK_RESULT = "GLOBE-R-A-Result"  # the real name is not public
EBMS_PATH = "/ebms"
WUS_PATH = "/wus/BerichtenboxValidatieService"

AckMode = Literal["sync", "async", "either"]
ACK_MODES = ("sync", "async", "either")


class _hybridmethod:
    """`SimulatorConfig.with_fault_rate(r, **fields)` makes a new config; `config.with_fault_rate(r)` a copy."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        functools.update_wrapper(self, func)

    def __get__(self, instance: Any, owner: type) -> Callable[..., Any]:
        if instance is None:
            return lambda rate, **fields: self.func(owner(**fields), rate)
        return functools.partial(self.func, instance)


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
    # The CPAs it has with its senders (cpaid -> CPA XML; see cpa.py). A message under one of them is
    # checked against it (PartyIds and types, roles, service, actions, acknowledgement mode, signature),
    # and results go out as it says. With CPAs registered, an unknown CPAId gets a SOAP Fault. Messages
    # under other CPAIds, when none are registered, meet the defaults below (osb-rm, unsigned).
    cpas: dict[str, bytes] = field(default_factory=dict)
    # CPAIds of connections without a CPA file: known, and met with the defaults (osb-rm, unsigned).
    default_cpa_ids: set[str] = field(default_factory=set)
    use_ebms_xsd: bool = True  # validate envelopes against msg-header-2_0.xsd when ../shared/ebms has it
    sender_role: str | None = "SR"  # None: From/Role not checked
    logius_role: str | None = "SP"  # None: To/Role not checked
    service: str = BERICHTENBOX_SERVICE
    service_type: str | None = BERICHTENBOX_SERVICE_TYPE
    require_sync_reply: bool | None = None  # legacy: True is ack_mode "sync"; None/False: ack_mode decides
    ack_mode: AckMode = "either"
    ack_endpoint: str | None = None  # where async Acknowledgments/MessageErrors go (None: result_endpoint)
    ack_retries: int = 2  # extra tries for one async signal POST (a lost one is repaired by the sender's retry)
    # GLOBE's rules.
    unsupported_berichttypes: set[str] = field(default_factory=lambda: {"ONBEKEND"})
    max_attachment_bytes: int = 500_000
    logius_dir: Path | None = None  # official XSDs; None: look in ../shared/logius (else structural checks)
    use_xsd: bool = True
    # False: forget a batch's payload once it is judged (a 100,000-letter load run would otherwise
    # keep 5 GB of letters in memory); `received_batches` then has empty payloads.
    keep_payloads: bool = True
    # Pushing results.
    result_retries: int = 3
    result_retry_interval_seconds: float = 0.2  # doubles per attempt, up to the maximum below
    result_retry_max_interval_seconds: float = 2.0
    result_timeout_seconds: float = 5.0  # HTTP timeout, and how long to wait for an async Acknowledgment
    result_sync_reply: bool = True  # put eb:SyncReply on pushed messages (False: expect async acks)
    # The bulk subscription list (AbonnementService).
    bulk_request_action: str = ACTION_BULK_REQUEST
    bulk_result_action: str = ACTION_BULK_RESULT
    bulk_delay_seconds: float = 0.2
    bulk_result_content_type: str = "application/gzip"
    subscription_changes: dict[str, _dt.datetime] = field(default_factory=dict)  # BSN -> last change (default epoch)
    subscription_berichttypes: dict[str, set[str]] = field(default_factory=dict)  # BSN -> berichttypes (optional)
    # Fault injection (see faults.py).
    faults: dict[str, float] = field(default_factory=dict)  # kind -> probability
    fault_seed: int = 0
    fault_max_per_message: int = 2  # request faults one MessageId meets at most
    timeout_hold_seconds: float = 2.0
    latency_seconds: tuple[float, float] = (0.05, 0.3)
    late_result_seconds: tuple[float, float] = (1.0, 3.0)
    out_of_order_max_hold_seconds: float = 5.0  # a held result goes anyway when no later one comes
    rate_limit_per_second: int = 20
    fault_result_retries: int = 10  # push attempts (after the first) while faults are switched on

    def __post_init__(self) -> None:
        if not OIN_PATTERN.fullmatch(self.logius_oin):
            raise ValueError("logius_oin must be an OIN (20 of [0-9A-Z])")
        unknown = set(self.result_codes.values()) - set(globe.VERWERKINGSCODES)
        if unknown:
            raise ValueError(f"unknown VerwerkingsCode(s) in result_codes: {sorted(unknown)}")
        if self.ack_mode not in ACK_MODES:
            raise ValueError(f"ack_mode must be one of {ACK_MODES}")
        validate_faults(self.faults)
        for name in ("latency_seconds", "late_result_seconds"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high")

    @property
    def effective_ack_mode(self) -> AckMode:
        return "sync" if self.require_sync_reply else self.ack_mode

    @property
    def faults_enabled(self) -> bool:
        return any(p > 0 for p in self.faults.values())

    @_hybridmethod
    def with_fault_rate(self, rate: float) -> SimulatorConfig:
        """A copy with `rate` spread evenly over every fault kind (each gets rate / number of kinds).
        The copy shares this config's sets and dicts (subscribed, result_codes, ...)."""
        return dataclasses.replace(self, faults=spread(rate))


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
    signed: bool = False  # its signature was verified (xmlsec1) against the CPA's certificate
    sync_reply: bool = True  # it asked for the Acknowledgment in the HTTP response


@dataclass
class ReceivedBulkRequest:
    message_id: str
    cpa_id: str
    conversation_id: str
    from_oin: str
    client_oin: str | None
    verzoek_id: str | None
    kind: str  # list | mutations | full
    payload: bytes = field(repr=False)  # the AbonnementAanvraag: may hold BSNs, never log it
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
    deliveries: int = 0  # acknowledged pushes (2 with duplicate_result)
    gzipped: bool = False
    faults: list[str] = field(default_factory=list)  # result faults that struck this batch


@dataclass
class BulkResultRecord:
    verzoek_id: str
    request_message_id: str
    message_id: str  # of the bulk result message
    kind: str  # list | mutations | full
    payload: bytes = field(repr=False)  # the AbonnementAntwoord XML (not gzipped; holds BSNs)
    subscriptions: int = 0
    error_code: str | None = None  # Fout/Code when the request was refused
    attempts: int = 0
    acknowledged: bool = False
    error: str | None = None
    deliveries: int = 0


@dataclass
class SignalRecord:
    """An Acknowledgment or MessageError the simulator POSTed asynchronously."""

    ref_to_message_id: str
    action: str  # Acknowledgment | MessageError
    endpoint: str | None
    attempts: int = 0
    delivered: bool = False
    error: str | None = None


@dataclass(frozen=True)
class SignalIn:
    """An Acknowledgment or MessageError the sender POSTed to the simulator."""

    ref_to_message_id: str
    action: str
    message_id: str
    envelope: bytes = field(repr=False)


@dataclass
class _Answer:
    http: HttpResponse
    signal: bytes | None = None  # the Acknowledgment/MessageError envelope
    asynchronous: bool = False  # True: the HTTP answer is 204 and `signal` is POSTed
    action: str = "Acknowledgment"


@dataclass
class _Seen:
    cpa_id: str
    from_oin: str
    received_at: _dt.datetime
    processed: bool = False


@dataclass
class _AckWaiter:
    event: threading.Event = field(default_factory=threading.Event)
    outcome: str | None = None  # "ack" or "error: <codes>"
    signed: list[tuple[str, str]] = field(default_factory=list)  # our signature's references, for a signed ack
    cert_pem: bytes | None = None  # the certificate a signed ack must verify with


@dataclass
class _Push:
    """How one of our messages went out, and what its acknowledgement must be."""

    sync_reply: bool = True
    signed: list[tuple[str, str]] = field(default_factory=list)  # references, when a signed ack was asked
    cert_pem: bytes | None = None


class LogiusSimulator:
    """A fake GLOBE behind two-way TLS: `/ebms` (GLOBE-R-BV-Request, GLOBE-R-A-Request, Ping,
    StatusRequest) and the WUS subscription check; pushes results to `result_endpoint`."""

    def __init__(self, config: SimulatorConfig, pki: TestPKI) -> None:
        self.config = config
        self.pki = pki
        self._server: MutualTlsServer | None = None
        self._identity: Identity | None = None
        self._client_context: ssl.SSLContext | None = None
        self._host = "localhost"
        self._can_drop = False
        self._lock = threading.RLock()  # request-side state
        self._judge_lock = threading.Lock()  # one batch judged at a time
        self._idle = threading.Condition()
        self._pending = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: dict[tuple[str, str], _Answer] = {}
        self._seen: dict[str, _Seen] = {}
        self._delivered: dict[str, DeliveryRecord] = {}
        self._delivery_log: list[DeliveryRecord] = []
        self._outcomes: list[DeliveryRecord] = []
        self._received: list[ReceivedBatch] = []
        self._received_bulk: list[ReceivedBulkRequest] = []
        self._results: list[ResultRecord] = []
        self._bulk_results: list[BulkResultRecord] = []
        self._signals: list[SignalRecord] = []
        self._signals_in: list[SignalIn] = []
        self._awaiting: dict[str, _AckWaiter] = {}
        self._held: list[tuple[int, threading.Event]] = []
        self._result_seq = 0
        self._wus_calls = 0
        self._signed_wus_calls = 0
        self._duplicates = 0
        self._injector = FaultInjector(seed=config.fault_seed)
        self._limiter = RateLimiter()
        logius_dir = globe.find_logius_dir(config.logius_dir) if config.use_xsd else None
        self._request_schema = globe.load_request_schema(logius_dir)
        self._ebms_schema = globe.load_ebms_schema(globe.find_ebms_dir()) if config.use_ebms_xsd else None
        self._cpa_views: dict[bytes, cpa_reader.CpaView] = {}
        self._wus_schema = wus.load_wus_schema(wus.find_wus_dir(logius_dir))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._stopping.clear()
        # RSA: the signed profile signs with it (RSA-SHA256)
        self._identity = self.pki.issue("logius-simulator", oin=self.config.logius_oin, key_type="rsa")
        self._client_context = client_ssl_context(self._identity, self.pki.ca_cert_path)
        self._server = MutualTlsServer(self._handle, self._identity, self.pki.ca_cert_path)
        base_url = self._server.start()
        self._can_drop = enable_drop(self._server)
        self._host = urlsplit(base_url).hostname or "localhost"
        log.info("Logius simulator on %s (XSD validation: %s; faults: %s)", base_url,
                 "official XSD" if self._request_schema is not None else "structural",
                 {k: p for k, p in self.config.faults.items() if p} or "none")
        return base_url

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for _, event in self._held:
                event.set()
            for waiter in self._awaiting.values():
                waiter.event.set()
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
        """The simulator's own certificate (server side, and client side when pushing)."""
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

    def delivery_log_json(self) -> list[dict[str, Any]]:
        """The delivery log as plain dicts (for `simulator-deliveries.json`); `at` in ISO 8601."""
        with self._lock:
            records = list(self._delivery_log)
        counts = Counter(record.bericht_id.lower() for record in records)
        return [
            {
                "batch_id": r.batch_id,
                "bericht_id": r.bericht_id,
                "berichttype": r.berichttype,
                "sender_oin": r.sender_oin,
                "connection_oin": r.connection_oin,
                "code": r.code,
                "bsn_masked": r.bsn_masked,
                "at": r.at.isoformat(),
                "deliveries": counts[r.bericht_id.lower()],
            }
            for r in records
        ]

    def write_delivery_log(self, path: Path) -> Path:
        """Write `delivery_log_json()` to `path` (e.g. simulator-deliveries.json)."""
        path = Path(path)
        path.write_text(json.dumps(self.delivery_log_json(), indent=1), encoding="utf-8")
        return path

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
    def signed_wus_calls(self) -> int:
        """WUS calls whose WS-Security signature (2W-be-S) the simulator verified."""
        with self._lock:
            return self._signed_wus_calls

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
    def received_bulk_requests(self) -> list[ReceivedBulkRequest]:
        with self._lock:
            return list(self._received_bulk)

    @property
    def results(self) -> list[ResultRecord]:
        with self._lock:
            return list(self._results)

    @property
    def bulk_results(self) -> list[BulkResultRecord]:
        with self._lock:
            return list(self._bulk_results)

    @property
    def received_signals(self) -> list[SignalIn]:
        """Acknowledgments/MessageErrors the sender POSTed, oldest first (solicited or not)."""
        with self._lock:
            return list(self._signals_in)

    def logius_message(self, *, cpa_id: str, action: str, to_oin: str, payload: bytes,
                       content_type: str = "application/xml") -> tuple[bytes, dict[str, str]]:
        """A business message from Logius as the CPA with `cpa_id` says (signed, SyncReply...), for
        tests that post one themselves: (body, headers)."""
        message_id = ebms.new_message_id(self._host)
        body, headers, _ = self._business_message(
            action=action, to_oin=to_oin, cpa_id=cpa_id, message_id=message_id, payload=payload,
            payload_cid=f"payload.{message_id}", filename="payload.xml", content_type=content_type)
        return body, headers

    @property
    def sent_signals(self) -> list[SignalRecord]:
        """Asynchronous Acknowledgments/MessageErrors POSTed to the sender, oldest first."""
        with self._lock:
            return list(self._signals)

    @property
    def fault_counts(self) -> dict[str, int]:
        """How often each fault kind was injected (every kind listed, zero included)."""
        return self._injector.snapshot()

    @property
    def fault_log(self) -> list[FaultEvent]:
        return self._injector.log()

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
        """Wait until every accepted message has been handled: judged and pushed (or given up),
        async signals posted."""
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

    # -- background work ------------------------------------------------------------------------

    def _background(self, name: str, target: Callable[[], None]) -> None:
        with self._idle:
            self._pending += 1

        def run() -> None:
            try:
                target()
            except Exception:  # never raise in the background: log it
                log.exception("simulator background job %s failed", name)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _fault(self, kind: str, subject: str) -> None:
        self._injector.record(kind, subject, utcnow())
        log.info("fault injected: %s (%s)", kind, subject)

    def _admit(self, client_oin: str | None) -> bool:
        probability = self.config.faults.get("rate_limit", 0.0)
        if probability <= 0:
            return True
        key = client_oin or "anonymous"
        admitted = self._limiter.admit(
            key, self.config.rate_limit_per_second, lambda: self._injector.roll("rate", probability)
        )
        if not admitted:
            self._fault("rate_limit", key)
        return admitted

    # -- HTTP -----------------------------------------------------------------------------------

    def _handle(self, request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.path).path.rstrip("/")
        if path == EBMS_PATH:
            return self._handle_ebms(request)
        if path == WUS_PATH:
            return self._handle_wus(request)
        return HttpResponse(404, {"Content-Type": "text/plain"}, b"not found\n")

    def _handle_wus(self, request: HttpRequest) -> HttpResponse:
        with self._lock:
            self._wus_calls += 1
            number = self._wus_calls
        if not self._admit(request.client_oin):
            return wus.rate_limited_response()
        plan = self._injector.plan_wus(self.config.faults, latency_range=self.config.latency_seconds)
        if plan.latency:
            self._fault("latency", f"wus#{number}")
            self._stopping.wait(plan.latency)
        signed = False
        try:
            signed = wss.is_signed(parse_xml(request.body))
        except (etree.XMLSyntaxError, ValueError):
            pass  # handle_wus answers unreadable XML with its fault
        if signed:  # Digikoppeling 2W-be-S: the signature must hold, and the answer is signed too
            try:
                wss.verify_request(request.body, request.client_cert_pem.encode())
            except xmldsig.SignatureProblem as problem:
                log.info("WUS call #%d refused: %s", number, problem)
                return self._signed_wus(wus.security_fault(str(problem)))
            with self._lock:
                self._signed_wus_calls += 1
        response = wus.handle_wus(
            request,
            schema=self._wus_schema,
            is_subscribed=self.is_subscribed,
            may_send_for=self.may_send_for,
            on_call=self._log_wus_call,
            inject_fault=plan.fault,
            on_injected=lambda kind: self._fault(kind, f"wus#{number}"),
        )
        return self._signed_wus(response) if signed else response

    def _signed_wus(self, response: HttpResponse) -> HttpResponse:
        assert self._identity is not None
        body = wss.sign_response(response.body, self._identity.key_path, self._identity.cert_path)
        return HttpResponse(response.status, dict(response.headers), body)

    @staticmethod
    def _log_wus_call(call: wus.WusCall) -> None:
        log.info(
            "WUS ValidateAbonnementen from %s for %s/%s: %d BSN(s) (%s)",
            call.client_oin, call.leverancier_code, call.berichttype, len(call.bsns),
            ", ".join(mask_bsn(b) for b in call.bsns[:3]) + (", ..." if len(call.bsns) > 3 else ""),
        )

    def _own_party(self, view: cpa_reader.CpaView | None = None) -> ebms.Party:
        if view is not None:
            return ebms.Party(list(view.logius.ids), view.logius.role)
        return ebms.Party([(ebms.OIN_PARTY_TYPE, self.config.logius_oin)], self.config.logius_role)

    def _cpa(self, cpa_id: str | None) -> cpa_reader.CpaView | None:
        """The registered CPA with this id, read by the simulator's own reader (cached)."""
        xml = self.config.cpas.get(cpa_id or "")
        if xml is None:
            return None
        with self._lock:
            view = self._cpa_views.get(xml)
        if view is None:
            view = cpa_reader.read_cpa(xml, self.config.logius_oin)
            with self._lock:
                self._cpa_views[xml] = view
        return view

    def register_cpa(self, xml: bytes) -> str:
        """Take a CPA with a sender; returns its cpaid."""
        view = cpa_reader.read_cpa(xml, self.config.logius_oin)
        if any(channel.signed for channel in (*view.sender.sends.values(), *view.logius.sends.values())) \
                and xmldsig.xmlsec1() is None:
            raise RuntimeError("a signing CPA needs xmlsec1 (apt-get install xmlsec1) for the simulator to sign and verify")
        self.config.cpas[view.cpa_id] = xml
        return view.cpa_id

    def _schema_problem(self, message: ebms.EbmsMessage) -> str | None:
        if self._ebms_schema is None:
            return None
        if self._ebms_schema.validate(message.envelope):
            return None
        error = self._ebms_schema.error_log.last_error
        return redact_bsns(f"line {error.line}: {error.message}" if error is not None else "schema-invalid")

    @staticmethod
    def _signal(body: bytes) -> HttpResponse:
        return HttpResponse(200, {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '"ebXML"'}, body)

    def _answer(self, signal: bytes, *, asynchronous: bool, action: str) -> _Answer:
        if asynchronous:
            return _Answer(HttpResponse(204, {}, b""), signal, True, action)
        return _Answer(self._signal(signal), signal, False, action)

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
        try:
            view = self._cpa(header.cpa_id)
        except cpa_reader.CpaProblem as problem:
            return self._soap_fault(f"CPA {header.cpa_id} cannot be used: {problem}", client=False)
        if self.config.cpas and view is None and header.cpa_id not in self.config.default_cpa_ids:
            return self._soap_fault(f"CPA {header.cpa_id} not found")
        schema_problem = self._schema_problem(message)
        signal_in = header.service == ebms.MSH_SERVICE and header.action in ("Acknowledgment", "MessageError")
        if signal_in:
            if schema_problem:  # as ebms-core: an envelope that is not schema-valid is not processed
                return self._soap_fault(f"not valid against msg-header-2_0.xsd: {schema_problem}")
            self._on_signal(message)
            return HttpResponse(204, {}, b"")
        if not self._admit(request.client_oin):
            return HttpResponse(429, {"Content-Type": "text/plain", "Retry-After": "1"}, b"too many requests\n")

        own = self._own_party(view)
        from_oin = header.from_party.oin if header.from_party else None
        if view is not None:  # ebms-core answers as the message asks (its SyncReply is checked against the CPA)
            wants_async = message.sync_reply is None
        else:
            wants_async = message.sync_reply is None and self.config.effective_ack_mode != "sync"
        msh_request = header.service == ebms.MSH_SERVICE and header.action in ("Ping", "StatusRequest")
        if schema_problem:
            error = ebms.EbmsError("OtherXml", f"not valid against msg-header-2_0.xsd: {schema_problem}",
                                   "//eb:MessageHeader")
            signal = ebms.build_message_error(header, own, [error], host=self._host, now=utcnow())
            return self._deliver(self._answer(signal, asynchronous=wants_async and not msh_request, action="MessageError"),
                                 header.message_id)
        if view is not None and not view.valid_at(parse_datetime(header.timestamp) or utcnow()):
            error = ebms.EbmsError("Inconsistent", f"CPA {view.cpa_id} is not agreed or not valid at the message's Timestamp",
                                   "//eb:MessageHeader/eb:CPAId")
            signal = ebms.build_message_error(header, own, [error], host=self._host, now=utcnow())
            return self._deliver(self._answer(signal, asynchronous=wants_async and not msh_request, action="MessageError"),
                                 header.message_id)
        if request.client_oin is None or from_oin != request.client_oin:
            error = ebms.EbmsError(
                "SecurityFailure",
                "the OIN in the client certificate does not match From/PartyId",
                "//eb:MessageHeader/eb:From/eb:PartyId",
            )
            log.info("ebMS %s refused: %s", header.message_id, error)
            signal = ebms.build_message_error(header, own, [error], host=self._host, now=utcnow())
            answer = self._answer(signal, asynchronous=wants_async and not msh_request, action="MessageError")
            return self._deliver(answer, header.message_id)
        if msh_request:
            return self._answer_msh_request(message, from_oin or "", view)

        key = (header.cpa_id or "", header.message_id)
        plan = self._injector.plan_request(
            self.config.faults, f"{key[0]}#{key[1]}",
            latency_range=self.config.latency_seconds, cap=self.config.fault_max_per_message,
        )
        if plan.latency:
            self._fault("latency", header.message_id)
            self._stopping.wait(plan.latency)
        if plan.disruption == "http_5xx":
            self._fault("http_5xx", header.message_id)
            return HttpResponse(plan.status_5xx, {"Content-Type": "text/plain"},
                                b"service temporarily unavailable\n" if plan.status_5xx == 503 else b"internal error\n")

        jobs: list[tuple[str, Callable[[], None]]] = []
        with self._lock:
            stored = self._responses.get(key)
            if stored is not None:
                self._duplicates += 1
                log.info("duplicate ebMS MessageId %s: replaying the first answer", header.message_id)
                answer = stored
            elif any(mid == header.message_id for (_, mid) in self._responses):
                return self._soap_fault(f"MessageId {header.message_id} already used in another CPA")
            elif plan.disruption == "ebms_error":
                self._fault("ebms_error", header.message_id)
                error = ebms.EbmsError("DeliveryFailure", "GLOBE could not take the message now: send it again",
                                       "//eb:MessageHeader")
                signal = ebms.build_message_error(header, own, [error], host=self._host, now=utcnow(), severity="Warning")
                answer = self._answer(signal, asynchronous=wants_async, action="MessageError")  # not stored
            else:
                answer, jobs = self._accept(message, received_at, request.client_oin, wants_async, view)
                self._responses[key] = answer
        for name, job in jobs:
            self._background(name, job)
        response = self._deliver(answer, header.message_id)
        if plan.disruption == "timeout" or (plan.disruption == "drop_ack" and not self._can_drop):
            self._fault(plan.disruption, header.message_id)
            self._stopping.wait(self.config.timeout_hold_seconds)
            return response
        if plan.disruption == "drop_ack":
            self._fault("drop_ack", header.message_id)
            return DROP
        return response

    def _deliver(self, answer: _Answer, ref: str) -> HttpResponse:
        """The HTTP answer; for an asynchronous one also (re)POST the stored signal."""
        if answer.asynchronous and answer.signal is not None:
            signal = answer.signal
            self._background(f"ack-{ref[:8]}", lambda: self._post_signal(signal, ref, answer.action))
        return answer.http

    def _expectations(self, view: cpa_reader.CpaView | None, action: str | None) -> ebms.Expectations:
        """What the CPA (or, without one, the simulator's defaults) says a sender's message must be."""
        if view is None:
            mode = self.config.effective_ack_mode
            return ebms.Expectations(
                to_oin=self.config.logius_oin, service=self.config.service, service_type=self.config.service_type,
                actions=(ACTION_REQUEST, self.config.bulk_request_action), from_role=self.config.sender_role,
                to_role=self.config.logius_role, require_sync_reply=mode == "sync", forbid_sync_reply=mode == "async",
            )
        channel = view.sender.sends.get(action or "") or cpa_reader.ChannelView()
        return ebms.Expectations(
            to_oin=self.config.logius_oin, service=view.service, service_type=view.service_type,
            actions=tuple(a for a in view.sender.sends if a in view.logius_receives), from_role=view.sender.role,
            to_role=view.logius.role, require_sync_reply=channel.sync_reply_mode != "none",
            forbid_sync_reply=channel.sync_reply_mode == "none", from_ids=view.sender.ids, to_ids=view.logius.ids,
            ack_requested=channel.ack_requested, ack_signature_requested=channel.ack_signature_requested,
            duplicate_elimination=channel.duplicate_elimination,
            signing_certificate=view.sender.signing_certificate if channel.signed else None,
        )

    def _accept(
        self, message: ebms.EbmsMessage, received_at: _dt.datetime, client_oin: str | None, wants_async: bool,
        view: cpa_reader.CpaView | None = None,
    ) -> tuple[_Answer, list[tuple[str, Callable[[], None]]]]:
        header = message.header
        assert header is not None and header.message_id is not None
        own = self._own_party(view)
        now = utcnow()
        expect = self._expectations(view, header.action)
        try:
            part = ebms.validate_business_message(message, expect, now)
        except ebms.EbmsError as error:
            log.info("ebMS %s refused: %s", header.message_id, error)
            signal = ebms.build_message_error(header, own, [error], host=self._host, now=now)
            return self._answer(signal, asynchronous=wants_async, action="MessageError"), []

        signed_ack = message.ack_requested is not None and ebms.eb_attr(message.ack_requested, "signed") in ("true", "1")
        references = [element for _, _, element in xmldsig.references(message.soap)] if signed_ack else []
        ack = ebms.build_acknowledgment(header, own, host=self._host, received_at=received_at, now=now,
                                        references=references)
        if signed_ack:
            assert self._identity is not None
            ack = xmldsig.sign(ack, {}, self._identity.key_path, self._identity.cert_path)
        from_oin = (header.from_party.oin if header.from_party else None) or ""
        self._seen[header.message_id] = _Seen(header.cpa_id or "", from_oin, received_at)
        if header.action == self.config.bulk_request_action:
            parsed_bulk = bulk.parse_request(part.content)
            request = ReceivedBulkRequest(
                message_id=header.message_id,
                cpa_id=header.cpa_id or "",
                conversation_id=header.conversation_id or "",
                from_oin=from_oin,
                client_oin=client_oin,
                verzoek_id=parsed_bulk.verzoek_id,
                kind=parsed_bulk.kind,
                payload=part.content,
                received_at=received_at,
            )
            self._received_bulk.append(request)
            log.info("accepted ebMS %s: subscription request %s (%s)", header.message_id,
                     parsed_bulk.verzoek_id, parsed_bulk.kind)
            return (self._answer(ack, asynchronous=wants_async, action="Acknowledgment"),
                    [(f"globe-a-{header.message_id[:8]}", lambda: self._process_bulk(request))])

        parsed = globe.parse_batch(part.content, None, validate=False)  # a first look; judged later
        batch = ReceivedBatch(
            message_id=header.message_id,
            cpa_id=header.cpa_id or "",
            conversation_id=header.conversation_id or "",
            from_oin=from_oin,
            client_oin=client_oin,
            batch_id=parsed.batch_id,
            letters=len(parsed.letters),
            payload=part.content,
            received_at=received_at,
            signed=expect.signing_certificate is not None,
            sync_reply=message.sync_reply is not None,
        )
        self._received.append(batch)
        log.info("accepted ebMS %s: batch %s with %d letter(s)", header.message_id, batch.batch_id, batch.letters)
        return (self._answer(ack, asynchronous=wants_async, action="Acknowledgment"),
                [(f"globe-{batch.batch_id[:8]}", lambda: self._process(batch))])

    # -- MSH services: Ping, StatusRequest, inbound signals -----------------------------------

    def _answer_msh_request(self, message: ebms.EbmsMessage, requester_oin: str,
                            view: cpa_reader.CpaView | None = None) -> HttpResponse:
        header = message.header
        assert header is not None and header.message_id is not None
        own = self._own_party(view)
        now = utcnow()
        if header.to_party is None or header.to_party.oin != self.config.logius_oin:
            error = ebms.EbmsError("ValueNotRecognized", "To/PartyId is not this party", "//eb:MessageHeader/eb:To/eb:PartyId")
            return self._signal(ebms.build_message_error(header, own, [error], host=self._host, now=now))
        if header.action == "Ping":
            return self._signal(ebms.build_pong(header, own, host=self._host, now=now))
        queried = ebms.status_request_ref(message)
        if not queried:
            error = ebms.EbmsError("Inconsistent", "StatusRequest needs eb:StatusRequest/eb:RefToMessageId",
                                   "//eb:StatusRequest")
            return self._signal(ebms.build_message_error(header, own, [error], host=self._host, now=now))
        with self._lock:
            seen = self._seen.get(queried)
        if seen is None:
            status, when = "NotRecognized", None
        elif seen.cpa_id != (header.cpa_id or "") or seen.from_oin != requester_oin:
            status, when = "UnAuthorized", None
        else:
            status, when = ("Processed" if seen.processed else "Received"), seen.received_at
        log.info("StatusRequest for %s: %s", queried, status)
        return self._signal(ebms.build_status_response(
            header, own, host=self._host, now=now, queried_id=queried, status=status, received_at=when,
        ))

    def _on_signal(self, message: ebms.EbmsMessage) -> None:
        """An async Acknowledgment or MessageError from the sender, for a message we pushed."""
        header = message.header
        assert header is not None
        ref = header.ref_to_message_id
        if message.acknowledgment is not None:
            ref = text_of(child(message.acknowledgment, EB_NS, "RefToMessageId")) or ref
            outcome = "ack"
        else:
            errors = [e for e in (message.error_list if message.error_list is not None else []) if isinstance(e.tag, str)]
            # each error's code and what it says (its eb:Description), so a refusal shows its reason
            said = [(ebms.eb_attr(e, "errorCode") or "?") + ("".join(f" ({text.strip()})" for text in e.itertext() if text.strip())[:300])
                    for e in errors]
            outcome = "error: " + ("; ".join(said) or "MessageError")
        with self._lock:
            waiter = self._awaiting.get(ref or "")
            self._signals_in.append(SignalIn(ref or "", header.action or "", header.message_id or "", message.soap))
        if waiter is None:
            log.info("ignoring an unsolicited %s for %s", header.action, ref)
            return
        if outcome == "ack" and waiter.signed:
            checked = ebms.acknowledgment_outcome(message, ref or "", signed=waiter.signed, cert_pem=waiter.cert_pem)
            if checked is None or checked.kind != "ack":
                log.warning("asynchronous Acknowledgment for %s refused: %s", ref, checked.detail if checked else "?")
                return  # not an acknowledgement that counts: the push is tried again
        waiter.outcome = outcome
        waiter.event.set()

    def _post_signal(self, signal: bytes, ref: str, action: str) -> None:
        """POST an Acknowledgment/MessageError to the sender's endpoint (two-way TLS): its default
        MSH channel's endpoint from the CPA, else `ack_endpoint` or `result_endpoint`."""
        endpoint = self.config.ack_endpoint or self.config.result_endpoint
        try:
            view = self._cpa(ebms.cpa_id_of(signal))
        except cpa_reader.CpaProblem:
            view = None
        if view is not None and view.sender.msh_endpoint:
            endpoint = view.sender.msh_endpoint
        record = SignalRecord(ref, action, endpoint)
        with self._lock:
            self._signals.append(record)
        if not endpoint or self._identity is None:
            record.error = "no ack_endpoint or result_endpoint configured"
            log.warning("cannot post the asynchronous %s for %s: no endpoint", action, ref)
            return
        headers = {"SOAPAction": '"ebXML"', "Content-Type": "text/xml; charset=UTF-8"}
        for attempt in range(1, 2 + max(0, self.config.ack_retries)):
            if self._stopping.is_set():
                record.error = "simulator stopped"
                return
            record.attempts = attempt
            try:
                response = https_post(endpoint, signal, headers, identity=self._identity, ca_path=self.pki.ca_cert_path,
                                      timeout=self.config.result_timeout_seconds, context=self._client_context)
            except (OSError, http.client.HTTPException) as exc:
                record.error = f"transport: {exc.__class__.__name__}: {exc}"
            else:
                if 200 <= response.status < 300:
                    record.delivered, record.error = True, None
                    log.info("asynchronous %s for %s posted", action, ref)
                    return
                record.error = f"HTTP {response.status}"
            if self._stopping.wait(self.config.result_retry_interval_seconds):
                return
        log.warning("asynchronous %s for %s not delivered: %s", action, ref, record.error)

    # -- background: judge the batch, push the result -------------------------------------------

    def _process(self, batch: ReceivedBatch) -> None:
        plan = self._injector.plan_result(self.config.faults, late_range=self.config.late_result_seconds)
        delay = self.config.result_delay_seconds + plan.late_seconds
        if self._stopping.wait(delay):
            return
        record, seq = self._judge(batch, plan)
        try:
            if plan.late_seconds:
                self._result_fault(record, "late_result")
            if not self.config.result_endpoint or self._stopping.is_set():
                return
            if plan.out_of_order:
                self._result_fault(record, "out_of_order_results")
                self._hold_until_later_result(seq)
            use_gzip = self.config.gzip_results or plan.gzip
            if plan.gzip and not self.config.gzip_results:
                self._result_fault(record, "gzip_result")
            record.gzipped = use_gzip
            pushed = self._result_message(record, batch, use_gzip)
            if plan.duplicate:
                self._result_fault(record, "duplicate_result")
            self._push(record, pushed, copies=2 if plan.duplicate else 1)
        finally:
            self._release_held_before(seq)

    def _result_fault(self, record: ResultRecord, kind: str) -> None:
        record.faults.append(kind)
        self._fault(kind, record.batch_id)

    def _hold_until_later_result(self, seq: int) -> None:
        event = threading.Event()
        with self._lock:
            self._held.append((seq, event))
        if not event.wait(self.config.out_of_order_max_hold_seconds):
            log.info("held result #%d: no later result came, pushing it anyway", seq)
        with self._lock:
            self._held = [(s, e) for s, e in self._held if e is not event]

    def _release_held_before(self, seq: int) -> None:
        with self._lock:
            for held_seq, event in self._held:
                if held_seq < seq:
                    event.set()

    def _judge(self, batch: ReceivedBatch, plan: ResultPlan) -> tuple[ResultRecord, int]:
        parsed = globe.parse_batch(batch.payload, self._request_schema)
        if not self.config.keep_payloads:
            batch.payload = b""
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
        count = len(parsed.letters)
        nil_index = int(plan.nil_guid_pick * count) if plan.nil_guid_pick is not None and count else None
        code_index = None
        if plan.random_code_pick is not None and count:
            code_index = int(plan.random_code_pick[0] * count)
            if code_index == nil_index:
                code_index = (code_index + 1) % count if count > 1 else None
        faults: list[str] = []
        outcomes: list[tuple[globe.Letter, str]] = []
        with self._judge_lock:
            processed_at = utcnow()
            for index, letter in enumerate(letters):
                bsn = letter.bsn or ""
                if index == nil_index:
                    letter = dataclasses.replace(letter, bericht_id="")  # reported as the nil GUID
                    code = "XmlValidatieTegenXsdValtNegatiefUit"
                    faults.append("nil_guid")
                elif index == code_index:
                    assert plan.random_code_pick is not None
                    code = RANDOM_CODES[min(int(plan.random_code_pick[1] * len(RANDOM_CODES)), len(RANDOM_CODES) - 1)]
                    faults.append("random_code")
                else:
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
                        self._delivered[letter.reported_id.lower()] = record
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
            self._result_seq += 1
            seq = self._result_seq
            seen = self._seen.get(batch.message_id)
            if seen is not None:
                seen.processed = True
        for kind in faults:
            self._result_fault(result, kind)
        counts: dict[str, int] = {}
        for _, code in outcomes:
            counts[code] = counts.get(code, 0) + 1
        log.info("batch %s judged: %s", parsed.batch_id, counts)
        return result, seq

    def _process_bulk(self, request: ReceivedBulkRequest) -> None:
        if self._stopping.wait(self.config.bulk_delay_seconds):
            return
        parsed = bulk.parse_request(request.payload)
        error: tuple[str, str] | None = None
        if parsed.problem:
            error = ("XmlValidatieTegenXsdValtNegatiefUit", parsed.problem)
        elif not self.may_send_for(request.client_oin, parsed.leverancier_oin):
            error = ("OinInCPAKomtNietOvereenMetOinInBericht",
                     "this connection may not ask for this BerichtLeverancier's subscriptions")
        subscriptions = None
        if error is None:
            subscriptions = bulk.select(
                parsed,
                is_subscribed=self.is_subscribed,
                subscribed=set(self.config.subscribed),
                subscribed_all=self.config.subscribed_all,
                changes=dict(self.config.subscription_changes),
                berichttypes=dict(self.config.subscription_berichttypes),
            )
        document = bulk.build_answer(
            leverancier_oin=parsed.leverancier_oin or request.from_oin,
            verzoek_id=parsed.verzoek_id or "",
            peildatum=utcnow(),
            subscriptions=subscriptions,
            error=error,
        )
        record = BulkResultRecord(
            verzoek_id=parsed.verzoek_id or "",
            request_message_id=request.message_id,
            message_id=ebms.new_message_id(self._host),
            kind=parsed.kind,
            payload=document,
            subscriptions=len(subscriptions or []),
            error_code=error[0] if error else None,
        )
        with self._lock:
            self._bulk_results.append(record)
            seen = self._seen.get(request.message_id)
            if seen is not None:
                seen.processed = True
        log.info("subscription request %s (%s) answered: %d subscription(s)%s", record.verzoek_id, record.kind,
                 record.subscriptions, f", refused {record.error_code}" if record.error_code else "")
        if not self.config.result_endpoint or self._stopping.is_set():
            return
        pushed = self._business_message(
            action=self.config.bulk_result_action,
            to_oin=request.from_oin,
            cpa_id=request.cpa_id,
            message_id=record.message_id,
            payload=bulk.gzipped(document),
            payload_cid=f"{record.verzoek_id or 'verzoek'}.{record.message_id}",
            filename=f"AbonnementAntwoord-{record.verzoek_id or 'verzoek'}.xml.gz",
            content_type=self.config.bulk_result_content_type,
        )
        self._push(record, pushed)

    # -- pushing our own messages -----------------------------------------------------------------

    def _retry_budget(self) -> int:
        retries = max(0, self.config.result_retries)
        if self.config.faults_enabled:
            retries = max(retries, self.config.fault_result_retries)
        return retries

    def _push(self, record: ResultRecord | BulkResultRecord, message: tuple[bytes, dict[str, str], _Push],
              copies: int = 1) -> None:
        """Push one message (identical bytes every time) until acknowledged; `copies` > 1 pushes it
        again after it was acknowledged (duplicate_result)."""
        body, headers, push = message
        for copy in range(copies):
            if not self._push_once(record, body, headers, push):
                return
            if copy:
                log.info("pushed %s again (same MessageId) as a duplicate", record.message_id)

    def _push_once(self, record: ResultRecord | BulkResultRecord, body: bytes, headers: dict[str, str],
                   push: _Push | None = None) -> bool:
        """One push, with ebms-core's expectations: with eb:SyncReply the Acknowledgment must be in the
        HTTP response; without it the response must be empty and the Acknowledgment come by POST ("No
        sync Acknowledgment expected" otherwise); a signed Acknowledgment, when asked, must verify and
        name our references."""
        push = push or _Push()
        endpoint = self.config.result_endpoint
        assert endpoint is not None and self._identity is not None
        attempts = 1 + self._retry_budget()
        interval = max(0.0, self.config.result_retry_interval_seconds)
        for attempt in range(1, attempts + 1):
            if self._stopping.is_set():
                record.error = "simulator stopped"
                return False
            record.attempts += 1
            waiter = _AckWaiter(signed=list(push.signed), cert_pem=push.cert_pem)
            with self._lock:
                self._awaiting[record.message_id] = waiter
            try:
                response = https_post(
                    endpoint, body, headers, identity=self._identity, ca_path=self.pki.ca_cert_path,
                    timeout=self.config.result_timeout_seconds, context=self._client_context,
                )
            except (OSError, http.client.HTTPException) as exc:
                record.error = f"transport: {exc.__class__.__name__}: {exc}"
            else:
                if 200 <= response.status < 300 and not response.body.strip() and push.sync_reply:
                    record.error = "no Acknowledgment in the response, though the message carried eb:SyncReply"
                elif 200 <= response.status < 300 and not response.body.strip():
                    # An async answer: the Acknowledgment comes as its own POST to /ebms.
                    if waiter.event.wait(self.config.result_timeout_seconds) and waiter.outcome:
                        if waiter.outcome == "ack":
                            record.acknowledged, record.error = True, None
                            record.deliveries += 1
                            log.info("%s acknowledged (async)", record.message_id)
                            return True
                        record.error = f"MessageError: {waiter.outcome.removeprefix('error: ')}"
                        log.warning("%s refused: %s", record.message_id, record.error)
                        return False
                    record.error = "no asynchronous Acknowledgment in time"
                elif response.status == 200:
                    outcome = ebms.read_signal(response.header("Content-Type"), response.body, record.message_id,
                                               signed=push.signed, cert_pem=push.cert_pem)
                    if outcome.kind == "ack" and not push.sync_reply:
                        outcome = ebms.SignalOutcome("other", "No sync Acknowledgment expected (the CPA says "
                                                              "syncReplyMode none)")
                    if outcome.kind == "ack":
                        record.acknowledged, record.error = True, None
                        record.deliveries += 1
                        log.info("%s acknowledged", record.message_id)
                        return True
                    if outcome.kind == "error":
                        record.error = f"MessageError: {outcome.detail}"
                        log.warning("%s refused: %s", record.message_id, outcome.detail)
                        return False  # final for this MessageId
                    record.error = f"no Acknowledgment: {outcome.detail}"
                else:
                    record.error = f"HTTP {response.status}"
            finally:
                with self._lock:
                    if self._awaiting.get(record.message_id) is waiter:
                        del self._awaiting[record.message_id]
            log.info("pushing %s (attempt %d/%d) failed: %s", record.message_id, attempt, attempts, record.error)
            if attempt < attempts:
                wait = min(interval * (2 ** (attempt - 1)), max(interval, self.config.result_retry_max_interval_seconds))
                if self._stopping.wait(wait):
                    record.error = "simulator stopped"
                    return False
        log.warning("%s not acknowledged after %d attempt(s)", record.message_id, attempts)
        return False

    def _result_message(self, record: ResultRecord, batch: ReceivedBatch,
                        use_gzip: bool) -> tuple[bytes, dict[str, str], _Push]:
        """The GLOBE-R-BV-Result ebMS message (built once: retries resend the same bytes)."""
        payload = gzip.compress(record.payload, mtime=0) if use_gzip else record.payload
        filename = f"BerichtVerwerkResponse-{record.batch_id}.xml" + (".gz" if use_gzip else "")
        return self._business_message(
            action=ACTION_RESULT,
            to_oin=batch.from_oin,
            cpa_id=batch.cpa_id,
            message_id=record.message_id,
            payload=payload,
            payload_cid=f"{record.batch_id}.{record.message_id}",
            filename=filename,
            content_type="application/xml",
        )

    def _business_message(
        self,
        *,
        action: str,
        to_oin: str,
        cpa_id: str,
        message_id: str,
        payload: bytes,
        payload_cid: str,
        filename: str,
        content_type: str,
    ) -> tuple[bytes, dict[str, str], _Push]:
        """A reliable ebMS message from Logius to the sender, multipart/related with one payload, as the
        CPA says when the simulator has it (PartyIds and types, roles, SyncReply, signed, signed
        acknowledgement asked), else osb-rm unsigned with `result_sync_reply`."""
        now = utcnow()
        retries = self._retry_budget()
        ttl = now + _dt.timedelta(
            seconds=(retries + 1) * (self.config.result_retry_max_interval_seconds + self.config.result_timeout_seconds) + 60
        )
        view = self._cpa(cpa_id)
        channel = view.logius.sends.get(action) if view is not None else None
        if view is not None and channel is not None:
            from_party = ebms.Party(list(view.logius.ids), view.logius.role)
            to_party = ebms.Party(list(view.sender.ids), view.sender.role)
            service, service_type = view.service, view.service_type
            sync_reply = channel.sync_reply_mode != "none"
            ack_signed = channel.ack_signature_requested == "always"
            signed = channel.signed
        else:
            from_party = ebms.Party([(ebms.OIN_PARTY_TYPE, self.config.logius_oin)], self.config.logius_role)
            to_party = ebms.Party([(ebms.OIN_PARTY_TYPE, to_oin)], self.config.sender_role)
            service, service_type = self.config.service, self.config.service_type
            sync_reply, ack_signed, signed = self.config.result_sync_reply, False, False
        envelope, _ = ebms.build_envelope(
            from_party=from_party,
            to_party=to_party,
            cpa_id=cpa_id,
            conversation_id=ebms.new_message_id(self._host).split("@", 1)[0],
            service=service,
            service_type=service_type,
            action=action,
            message_id=message_id,
            timestamp=now,
            time_to_live=ttl,
            reliable=True,
            sync_reply=sync_reply,
            manifest_cids=[payload_cid],
            ack_signed=ack_signed,
        )
        soap = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        push = _Push(sync_reply=sync_reply)
        if signed:
            assert self._identity is not None
            soap = xmldsig.sign(soap, {payload_cid: payload}, self._identity.key_path, self._identity.cert_path)
            if ack_signed:
                push.signed = [(uri, digest) for uri, digest, _ in xmldsig.references(soap)]
                push.cert_pem = view.sender.signing_certificate if view is not None else None
        body, boundary = build_multipart(
            [
                ({"Content-Type": "text/xml; charset=UTF-8", "Content-ID": f"<{message_id}>"}, soap),
                (
                    {
                        "Content-Type": content_type,
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
                f'start="<{message_id}>"; start-info="text/xml"'
            ),
        }
        return body, headers, push

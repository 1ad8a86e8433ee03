"""Fault injection for the Logius simulator: which faults, how often, reproducible under a seed.

`SimulatorConfig.faults` maps a kind to a probability (0..1); `fault_seed` fixes the dice. Each
place a fault can strike draws from its own random stream (`ebms` per incoming business message,
`result` per judged batch, `wus` per WUS call, `rate` per call over the rate limit), and every event
draws a fixed number of values whatever the probabilities are. So for one seed the n-th message,
the n-th batch and the n-th WUS call always meet the same faults, and switching one kind on or off
does not reshuffle the others. (With concurrent senders the *order* of arrival decides which event
is "the n-th"; a sequential sender gets a fully reproducible run.)

Kinds and where they strike (the simulator's core applies them; see its docstring):

| kind | stream | effect |
|---|---|---|
| `latency` | ebms, wus | answer 0.05-0.3 s later (`latency_seconds`) |
| `http_5xx` | ebms | HTTP 503 or 500 **before** processing (nothing stored) |
| `timeout` | ebms | process, then hold the answer `timeout_hold_seconds` (past the client's timeout) |
| `drop_ack` | ebms | process, then close the connection without answering |
| `ebms_error` | ebms | MessageError `DeliveryFailure`, severity Warning, instead of processing |
| `duplicate_result` | result | push the result message twice (same MessageId, same bytes) |
| `late_result` | result | push 1-3 s later (`late_result_seconds`) |
| `out_of_order_results` | result | hold the result until a later batch's result has been pushed |
| `gzip_result` | result | gzip this result's payload |
| `nil_guid` | result | one letter reported with the nil GUID and `XmlValidatieTegenXsdValtNegatiefUit`, not delivered |
| `random_code` | result | one letter gets another failure code (see `RANDOM_CODES`), not delivered |
| `wus_application_fault` | wus | SOAP Fault with an `ApplicationFault` detail |
| `wus_dependent_fault` | wus | SOAP Fault with a `DependentServiceFault` detail |
| `rate_limit` | rate | over `rate_limit_per_second` calls per second per client OIN: HTTP 429 (ebMS) or a WUS Server fault |

At most one of `http_5xx`, `timeout`, `drop_ack`, `ebms_error` strikes one arrival, and one MessageId
meets at most `fault_max_per_message` of them, so a sender that retries always gets through.
"""
from __future__ import annotations

import collections
import datetime as _dt
import random
import threading
import time
from dataclasses import dataclass, field

FAULT_KINDS: tuple[str, ...] = (
    "latency",
    "http_5xx",
    "timeout",
    "drop_ack",
    "ebms_error",
    "duplicate_result",
    "late_result",
    "out_of_order_results",
    "gzip_result",
    "nil_guid",
    "random_code",
    "wus_application_fault",
    "wus_dependent_fault",
    "rate_limit",
)
REQUEST_DISRUPTIONS: tuple[str, ...] = ("http_5xx", "timeout", "drop_ack", "ebms_error")
WUS_FAULTS: tuple[str, ...] = ("wus_application_fault", "wus_dependent_fault")

# Codes `random_code` picks from: every failure code except NietActiefOfGeabonneerd (a normal answer)
# and BerichtBestaatAl (it tells the sender the letter *was* delivered: a lie would break the
# delivery log, which must stay exact).
RANDOM_CODES: tuple[str, ...] = (
    "TechnischProbleem",
    "BerichtTypeNietOndersteund",
    "PublicatieDatumLigtTeVerInDeToekomst",
    "AanmaakDatumLigtTeVerInHetVerleden",
    "BijlageTeGroot",
    "OinInCPAKomtNietOvereenMetOinInBericht",
    "XmlValidatieTegenXsdValtNegatiefUit",
)


def validate_faults(faults: dict[str, float]) -> None:
    unknown = set(faults) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kind(s): {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
    for kind, probability in faults.items():
        if not 0.0 <= float(probability) <= 1.0:
            raise ValueError(f"fault {kind}: probability {probability} is not within 0..1")


# The kinds that can strike one call, per place: `spread` shares a rate among them, so that about
# `rate` of the calls at each place misbehave in one of the ways that place can.
_KINDS_PER_PLACE: dict[str, tuple[str, ...]] = {
    "ebms": ("latency", *REQUEST_DISRUPTIONS),
    "result": ("duplicate_result", "late_result", "out_of_order_results", "gzip_result", "nil_guid", "random_code"),
    "wus": ("latency", *WUS_FAULTS),
    "rate": ("rate_limit",),
}


def spread(rate: float) -> dict[str, float]:
    """`rate` as the share of calls that misbehave, spread evenly over the kinds each place can
    show (a kind that strikes at two places takes the smaller share)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError("a fault rate is within 0..1")
    shares: dict[str, float] = {}
    for kinds in _KINDS_PER_PLACE.values():
        for kind in kinds:
            shares[kind] = min(shares.get(kind, 1.0), rate / len(kinds))
    return {kind: shares[kind] for kind in FAULT_KINDS}


@dataclass(frozen=True)
class RequestPlan:
    latency: float = 0.0
    disruption: str | None = None  # one of REQUEST_DISRUPTIONS
    status_5xx: int = 503


@dataclass(frozen=True)
class ResultPlan:
    duplicate: bool = False
    late_seconds: float = 0.0
    out_of_order: bool = False
    gzip: bool = False
    nil_guid_pick: float | None = None  # in [0, 1): which letter
    random_code_pick: tuple[float, float] | None = None  # (which letter, which code)


@dataclass(frozen=True)
class WusPlan:
    latency: float = 0.0
    fault: str | None = None  # one of WUS_FAULTS


@dataclass(frozen=True)
class FaultEvent:
    kind: str
    subject: str  # a MessageId, BatchID, client OIN or "wus#n": never a BSN
    at: _dt.datetime


@dataclass
class FaultInjector:
    """The dice (one seeded stream per place), the per-MessageId cap and the counters."""

    seed: int = 0
    _streams: dict[str, random.Random] = field(default_factory=dict, repr=False)
    _per_message: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    counts: collections.Counter = field(default_factory=collections.Counter)
    events: list[FaultEvent] = field(default_factory=list)

    def _draws(self, stream: str, n: int) -> list[float]:
        rng = self._streams.get(stream)
        if rng is None:
            rng = self._streams[stream] = random.Random(f"bbconnect-sim/{self.seed}/{stream}")
        return [rng.random() for _ in range(n)]

    def plan_request(
        self, faults: dict[str, float], subject: str, *, latency_range: tuple[float, float], cap: int
    ) -> RequestPlan:
        """Faults for one arrival of a business message (7 draws from the `ebms` stream)."""
        with self._lock:
            hit_latency, amount, *disruption_draws, which_5xx = self._draws("ebms", 7)
            latency = 0.0
            if hit_latency < faults.get("latency", 0.0):
                low, high = latency_range
                latency = low + amount * (high - low)
            disruption = None
            for kind, draw in zip(REQUEST_DISRUPTIONS, disruption_draws, strict=True):
                if draw < faults.get(kind, 0.0):
                    disruption = kind
                    break
            if disruption is not None:
                if self._per_message.get(subject, 0) >= cap:
                    disruption = None
                else:
                    self._per_message[subject] = self._per_message.get(subject, 0) + 1
        return RequestPlan(latency=latency, disruption=disruption, status_5xx=503 if which_5xx < 0.5 else 500)

    def plan_result(self, faults: dict[str, float], *, late_range: tuple[float, float]) -> ResultPlan:
        """Faults for one judged batch (10 draws from the `result` stream)."""
        with self._lock:
            dup, late, late_amount, ooo, gz, nil, nil_pick, code, code_letter, code_pick = self._draws("result", 10)
        low, high = late_range
        return ResultPlan(
            duplicate=dup < faults.get("duplicate_result", 0.0),
            late_seconds=(low + late_amount * (high - low)) if late < faults.get("late_result", 0.0) else 0.0,
            out_of_order=ooo < faults.get("out_of_order_results", 0.0),
            gzip=gz < faults.get("gzip_result", 0.0),
            nil_guid_pick=nil_pick if nil < faults.get("nil_guid", 0.0) else None,
            random_code_pick=(code_letter, code_pick) if code < faults.get("random_code", 0.0) else None,
        )

    def plan_wus(self, faults: dict[str, float], *, latency_range: tuple[float, float]) -> WusPlan:
        """Faults for one WUS call (4 draws from the `wus` stream)."""
        with self._lock:
            hit_latency, amount, application, dependent = self._draws("wus", 4)
        latency = 0.0
        if hit_latency < faults.get("latency", 0.0):
            low, high = latency_range
            latency = low + amount * (high - low)
        fault = None
        if application < faults.get("wus_application_fault", 0.0):
            fault = "wus_application_fault"
        elif dependent < faults.get("wus_dependent_fault", 0.0):
            fault = "wus_dependent_fault"
        return WusPlan(latency=latency, fault=fault)

    def roll(self, stream: str, probability: float) -> bool:
        with self._lock:
            (draw,) = self._draws(stream, 1)
        return draw < probability

    def record(self, kind: str, subject: str, at: _dt.datetime) -> None:
        with self._lock:
            self.counts[kind] += 1
            self.events.append(FaultEvent(kind, subject, at))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {kind: self.counts.get(kind, 0) for kind in FAULT_KINDS}

    def log(self) -> list[FaultEvent]:
        with self._lock:
            return list(self.events)


class RateLimiter:
    """Calls admitted in the last second, per client OIN (a sliding window)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._calls: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, limit: int, refuse_when_over) -> bool:
        """Admit a call unless `limit` calls were admitted in the last second and
        `refuse_when_over()` says to enforce it this time. Refused calls do not count."""
        with self._lock:
            now = self._clock()
            window = self._calls.setdefault(key, collections.deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= max(0, limit) and refuse_when_over():
                return False
            window.append(now)
            return True

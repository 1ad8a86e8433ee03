"""Peak shaping: how fast and how many at once bbconnect may deliver to Logius over one connection,
and how a stream's letters can be spread over the coming days. Pure functions, no AWS.

**Send rate and concurrency (per connection).** Each connection (its OIN, the identity Logius sees)
has a token bucket that fills at `Connection.max_send_rate` letters per second up to `capacity`
(`BURST_SECONDS` of the rate, at least one letter). A GLOBE batch of `n` letters may be posted when
the bucket holds `min(n, capacity)` tokens; it then takes all `n`, so a batch larger than the
bucket leaves it in debt, which the refill pays back before the next batch goes. Over any period
`T` a connection so posts at most `capacity + rate x T` letters plus one batch: the configured rate,
whatever the batch sizes. Next to that, at most `Connection.max_concurrent_batches` GLOBE batches of
one connection are *in flight* (posted, not yet acknowledged, refused or expired). A slot is held
under a lease, so a holder that vanishes does not keep it for ever; the holder renews the lease with
each attempt and gives the slot back when its batch ends.

`decide()` takes the bucket as stored, the batch and the limits, and answers `Admit` (with the state
to store) or `Wait` (how long until it may be admitted). The DynamoDB side, with conditional writes
so that racing Lambdas never overdraw, is `bbconnect.adapters.throttle`.

**Spreading PublicatieDatum (per stream).** A stream with `spread_publication_days: N` has the
letters of a file that do not carry their own `publish_at` published over the next `N` days: in line
order, whole days, at `SPREAD_HOUR` (08:00) Europe/Amsterdam, as evenly as the count allows (the
days differ by at most one letter, earlier days take the extra ones). The first day is the first
08:00 after the file was taken, so the last is about `N` days ahead and never past Logius' 13. A letter
whose `act_before` falls before its day is published on the last spread day not after its
`act_before` (or at once, when even the first is too late). Letters with their own `publish_at`
keep it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bbconnect.letters import Letter
from bbconnect.tenants import TenantConfig

__all__ = [
    "BURST_SECONDS",
    "MAX_SPREAD_DAYS",
    "SLOT_RECHECK_SECONDS",
    "SPREAD_HOUR",
    "Admit",
    "BucketState",
    "SendLimits",
    "Wait",
    "capacity",
    "connection_limits",
    "decide",
    "refill",
    "release",
    "spread_assignments",
    "spread_day_indexes",
    "spread_publication",
    "spread_slots",
    "tokens_wait",
]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# The bucket holds this many seconds of the connection's rate: a short burst, not a second peak.
BURST_SECONDS = 10.0
# With every slot taken, look again after this long at most (a slot frees on acknowledgement,
# which is usually much sooner than its lease ends).
SLOT_RECHECK_SECONDS = 5.0
SPREAD_HOUR = time(8, 0)
MAX_SPREAD_DAYS = 13  # Logius: PublicatieDatum at most 13 days after delivery
_TOLERANCE = 1e-6  # tokens: what floating point loses in a refill does not hold a batch back


# ---------------------------------------------------------------------- the token bucket
@dataclass(frozen=True)
class SendLimits:
    """A connection's limits: letters per second, and GLOBE batches in flight at once."""

    rate: float
    max_in_flight: int

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be positive")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")

    @property
    def capacity(self) -> float:
        return capacity(self.rate)


@dataclass(frozen=True)
class BucketState:
    """What is stored per connection: the tokens at `updated_at` (epoch seconds), and the slots
    in flight as holder -> lease end (epoch seconds)."""

    tokens: float
    updated_at: float
    slots: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def full(cls, limits: SendLimits, now: float) -> BucketState:
        return cls(tokens=limits.capacity, updated_at=now, slots={})


@dataclass(frozen=True)
class Admit:
    """The batch may be posted; `state` is the bucket to store (tokens taken, slot leased)."""

    state: BucketState


@dataclass(frozen=True)
class Wait:
    """Not now: look again after `seconds`. `reason` is `rate` or `slots`."""

    seconds: float
    reason: str


def connection_limits(config: TenantConfig, oin: str) -> SendLimits:
    """The limits of the tenant's connection(s) with this OIN. Logius sees the OIN, so connections
    that share one share a bucket; when they disagree, the strictest limit holds."""
    connections = [connection for connection in config.connections.values() if connection.oin == oin]
    if not connections:
        raise ValueError(f"tenant {config.tenant!r} has no connection with OIN {oin}")
    return SendLimits(rate=min(c.max_send_rate for c in connections),
                      max_in_flight=min(c.max_concurrent_batches for c in connections))


def capacity(rate: float) -> float:
    """The most tokens a bucket of this rate holds."""
    return max(1.0, rate * BURST_SECONDS)


def refill(tokens: float, elapsed: float, rate: float) -> float:
    """The tokens after `elapsed` seconds at `rate`, never above the capacity. A clock that went
    backwards adds nothing."""
    return min(capacity(rate), tokens + max(0.0, elapsed) * rate)


def tokens_wait(tokens: float, letters: int, rate: float) -> float:
    """Seconds until a batch of `letters` may go: until the bucket holds `min(letters, capacity)`."""
    missing = min(float(letters), capacity(rate)) - tokens
    return 0.0 if missing <= _TOLERANCE else missing / rate


def decide(state: BucketState | None, *, holder: str, letters: int, limits: SendLimits, now: float,
           lease_seconds: float) -> Admit | Wait:
    """May `holder` (a GLOBE batch) post `letters` letters now?

    A holder that already has a live slot (a retry of its batch) keeps it and renews its lease;
    otherwise it needs a free slot. Either way it needs the tokens. Expired leases are dropped.
    """
    if letters < 1:
        raise ValueError("a GLOBE batch has at least one letter")
    if lease_seconds <= 0:
        raise ValueError("lease_seconds must be positive")
    if state is None:
        state = BucketState.full(limits, now)
    tokens = refill(state.tokens, now - state.updated_at, limits.rate)
    live = {name: until for name, until in state.slots.items() if until > now}
    waits: list[Wait] = []
    if holder not in live and len(live) >= limits.max_in_flight:
        first_free = min(live.values()) - now
        waits.append(Wait(min(first_free, SLOT_RECHECK_SECONDS), "slots"))
    token_wait = tokens_wait(tokens, letters, limits.rate)
    if token_wait > 0:
        waits.append(Wait(token_wait, "rate"))
    if waits:
        return max(waits, key=lambda wait: wait.seconds)
    live[holder] = now + lease_seconds
    return Admit(BucketState(tokens=tokens - letters, updated_at=now, slots=live))


def release(state: BucketState, holder: str, *, now: float) -> BucketState:
    """The bucket with `holder`'s slot given back (and expired leases dropped)."""
    return BucketState(tokens=state.tokens, updated_at=state.updated_at,
                       slots={name: until for name, until in state.slots.items() if name != holder and until > now})


# ---------------------------------------------------------------------- spreading PublicatieDatum
def spread_day_indexes(count: int, days: int) -> list[int]:
    """For `count` letters in line order over `days` days: each letter's day (0 = the first).

    Non-decreasing, each day within one letter of every other, earlier days taking the extras.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if count < 0:
        raise ValueError("count cannot be negative")
    base, extra = divmod(count, days)
    indexes: list[int] = []
    for day in range(days):
        indexes.extend([day] * (base + (1 if day < extra else 0)))
    return indexes


def spread_slots(now: datetime, days: int) -> list[datetime]:
    """The `days` publication moments: 08:00 Europe/Amsterdam on consecutive days, the first being
    the first 08:00 after `now`. Returned UTC-aware (daylight saving time handled per day)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not 1 <= days <= MAX_SPREAD_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_SPREAD_DAYS}")
    first: date = now.astimezone(AMSTERDAM).date()
    if _at_spread_hour(first) <= now:
        first += timedelta(days=1)
    # When winter time starts within the 13 days, the 13th day's 08:00 can lie an hour past now +
    # 13 days: that letter then publishes at the latest moment Logius allows.
    latest = now.astimezone(UTC) + timedelta(days=MAX_SPREAD_DAYS)
    return [min(_at_spread_hour(first + timedelta(days=offset)), latest) for offset in range(days)]


def _at_spread_hour(day: date) -> datetime:
    return datetime.combine(day, SPREAD_HOUR, tzinfo=AMSTERDAM).astimezone(UTC)


def spread_publication(letters: Iterable[Letter], config: TenantConfig, *, now: datetime) -> list[Letter]:
    """The letters, in the order given, with PublicatieDatum spread for the streams that ask.

    Per stream with `spread_publication_days`, its letters without `publish_at` are spread in line
    order over that many days (see the module docstring). Every other letter is returned as it is.
    """
    letters = list(letters)
    spread_by_line = spread_assignments(letters, config, now=now)
    return [letter.model_copy(update={"publish_at": spread_by_line[letter.line]}) if letter.line in spread_by_line
            else letter for letter in letters]


def spread_assignments(letters: Iterable, config: TenantConfig, *, now: datetime) -> dict[int, datetime | None]:
    """The spread PublicatieDatum per line, for the letters that get one (`spread_publication`'s
    rule). `letters` need only `line`, `stream`, `publish_at` and `act_before`, so a file's letters
    can be spread without holding them whole."""
    spread_by_line: dict[int, datetime | None] = {}
    by_stream: dict[str, list] = {}
    for letter in letters:
        stream = config.streams.get(letter.stream)
        if letter.publish_at is None and stream is not None and stream.spread_publication_days:
            by_stream.setdefault(letter.stream, []).append(letter)
    for code, group in by_stream.items():
        days = config.streams[code].spread_publication_days
        if not days:  # only streams that spread are grouped above
            continue
        slots = spread_slots(now, days)
        group.sort(key=lambda letter: letter.line)
        for letter, day in zip(group, spread_day_indexes(len(group), len(slots))):
            spread_by_line[letter.line] = _not_after_deadline(slots[: day + 1], letter.act_before)
    return spread_by_line


def _not_after_deadline(candidates: list[datetime], act_before: datetime | None) -> datetime | None:
    """The last candidate (the letter's own day) unless it falls on a later Amsterdam day than
    `act_before`: then the last earlier one that does not, or None (publish at once)."""
    if act_before is None:
        return candidates[-1]
    deadline = act_before.astimezone(AMSTERDAM).date()
    fitting = [moment for moment in candidates if moment.astimezone(AMSTERDAM).date() <= deadline]
    return fitting[-1] if fitting else None

"""A letter's deadline for digital delivery, and what follows from it. Pure functions, no AWS.

Each stream has a `digital_deadline` (`tenants.Stream`): how long after intake its letters may take
to reach the Berichtenbox. Ingest writes the moment into each chunk (`deadline`, ISO 8601, UTC).
Until then nothing that passes is final: an unreachable subscription check waits and asks again, an
ebMS message that expires goes again as a new message, a processing report is waited for. When the
deadline comes and a letter is still not delivered, it goes on paper, and its reason says so
(`paper_reason`).

Why a letter is on paper is one of three (`PaperBecause`), and each paper letter records which:

- `not_reachable`: Logius says the citizen cannot be reached (no Berichtenbox or no subscription:
  the WUS check, the bulk list, or `NietActiefOfGeabonneerd` in the processing report);
- `deadline`: it could not be delivered digitally before the deadline (an outage that lasted, a
  batch Logius would not take, a processing report that did not come);
- `policy`: the stream sends everything on paper (`paper_only`), or a paper copy besides the
  Berichtenbox (`digital_and_paper`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = [
    "DEADLINE_SOURCE",
    "SEND_TIMEOUT_MARGIN",
    "PaperBecause",
    "deadline_for",
    "deadline_of",
    "paper_because",
    "paper_reason",
    "passed",
    "send_timeout_seconds",
    "subscription_retry_seconds",
]

# The route source of letters whose subscription check could not be done before the deadline.
DEADLINE_SOURCE = "deadline"
# The Send task gives up this long after the last deadline of the file's chunks: the send Lambda
# itself reports at a chunk's deadline, so this only catches a send that was lost altogether.
SEND_TIMEOUT_MARGIN = timedelta(minutes=15)


class PaperBecause(StrEnum):
    NOT_REACHABLE = "not_reachable"
    DEADLINE = "deadline"
    POLICY = "policy"


def deadline_for(accepted_at: datetime, digital_deadline: timedelta) -> datetime:
    """The moment a letter accepted at `accepted_at` must be delivered digitally by (UTC)."""
    if accepted_at.tzinfo is None:
        raise ValueError("accepted_at must be timezone-aware")
    return (accepted_at + digital_deadline).astimezone(UTC)


def deadline_of(chunk: Mapping) -> datetime | None:
    """A chunk's deadline, or None for a chunk written before chunks had one (it then has none)."""
    value = chunk.get("deadline")
    return datetime.fromisoformat(value) if value else None


def passed(deadline: datetime | None, now: datetime) -> bool:
    return deadline is not None and now >= deadline


def send_timeout_seconds(deadlines: Iterable[datetime], now: datetime, *, floor: int) -> int:
    """The Send task's timeout for a file's chunks: past the last deadline (plus a margin), and never
    below `floor` (the deployment's SendTimeoutSeconds)."""
    latest = max(deadlines, default=None)
    if latest is None:
        return floor
    return max(floor, int((latest - now + SEND_TIMEOUT_MARGIN).total_seconds()) + 1)


def subscription_retry_seconds(waits: int, *, base: int, deadline: datetime | None, now: datetime,
                               cap: int = 3600) -> int:
    """How long a chunk whose subscription check could not be done waits before it asks again: `base`
    doubled per wait so far, at most `cap`, and never past the deadline (then it asks once more, at
    the deadline, and decides)."""
    if base < 1:
        raise ValueError("base must be at least 1 second")
    seconds = min(cap, base * 2 ** min(max(waits, 0), 30))
    if deadline is not None:
        left = int((deadline - now).total_seconds() + 0.999)
        seconds = min(seconds, max(1, left))
    return max(1, seconds)


def paper_because(route_source: str | None, *, policy_copy: bool = False, deadline_forced: bool = False) -> PaperBecause:
    """Why a letter is on paper: the stream's policy, the deadline, or Logius' word that the citizen
    is not reachable (the route's source says which check decided)."""
    if deadline_forced or (route_source or "").startswith(DEADLINE_SOURCE):
        return PaperBecause.DEADLINE
    if policy_copy or (route_source or "").startswith("policy"):
        return PaperBecause.POLICY
    return PaperBecause.NOT_REACHABLE


def paper_reason(because: PaperBecause, detail: str) -> str:
    """The reason a paper letter carries in the report: which of the three, and what it rests on."""
    lead = {PaperBecause.NOT_REACHABLE: "not reachable digitally", PaperBecause.DEADLINE: "deadline",
            PaperBecause.POLICY: "policy"}[because]
    return f"{lead}: {detail}"


def at_deadline(deadline: datetime) -> str:
    """`2027-03-01 09:00 UTC`: the deadline as reasons name it."""
    return deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

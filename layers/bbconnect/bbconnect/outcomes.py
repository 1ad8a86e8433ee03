"""Each letter's final state, decided from what its chunk went through. Pure, no AWS.

`final_state` is the one place the rule lives:

- a letter routed to paper is PAPER: because the citizen is not reachable digitally (the route's
  source says which check decided), because of the stream's policy, or because its subscription
  could not be checked before the deadline;
- a letter that could not be put into the GLOBE batch (its PDF could not be made) is FAILED with
  that reason: it never reached Logius;
- a letter whose GLOBE batch was not delivered (the deadline came first, or Logius would not take
  the batch) is PAPER, with that reason: only Logius' word about a letter fails it;
- otherwise the processing report decides: `Verwerkt`/`BerichtBestaatAl` DELIVERED,
  `NietActiefOfGeabonneerd` PAPER (not reachable), any other (or unknown) code FAILED with the code;
  a line with the nil GUID (a letter GLOBE could not read) applies to the letters without a line of
  their own; a letter the report does not mention goes on paper (no word from Logius about it).

`digital_and_paper` letters (route `both`) always get a paper copy; their status is the digital one,
or PAPER when the digital delivery did not happen.
"""
from __future__ import annotations

from dataclasses import dataclass

from bbconnect.deadlines import PaperBecause, paper_because, paper_reason
from bbconnect.logius.globe import outcome_of
from bbconnect.status import Route, Status

__all__ = ["Final", "LogiusLine", "final_state"]


@dataclass(frozen=True)
class LogiusLine:
    """A processing report's line about one letter (or, for `unreadable`, the nil-GUID line)."""

    code: str
    stage: str | None = None
    unreadable: bool = False


@dataclass(frozen=True)
class Final:
    status: Status
    reason: str | None = None
    code: str | None = None  # Logius' VerwerkingsCode, when the report gave one
    paper: bool = False  # printed (PAPER, or a `digital_and_paper` copy)
    paper_because: PaperBecause | None = None


def _logius_reason(line: LogiusLine) -> str:
    stage = f" (stadium {line.stage})" if line.stage and line.stage != "NA" else ""
    if line.unreadable:
        return f"Logius: {line.code} for an unreadable letter{stage}"
    return f"Logius: {line.code}{stage}"


def final_state(*, route: Route | str, route_source: str | None, render_failure: str | None = None,
                in_globe_batch: bool = True, not_delivered: str | None = None,
                line: LogiusLine | None = None) -> Final:
    """The final state of one letter.

    `not_delivered`: why its GLOBE batch did not reach Logius, or why its report never came (already
    phrased for the letter, e.g. "not delivered before the stream's deadline (...)"); None when
    the batch was delivered and its report is in. `line`: the report's line for the letter (or the
    nil-GUID line), None when the report has none."""
    route = Route(route)
    copy = route == Route.BOTH
    if route == Route.PAPER:
        because = paper_because(route_source)
        return Final(Status.PAPER, paper_reason(because, route_source or "no source recorded"), paper=True,
                     paper_because=because)
    if render_failure:
        return Final(Status.FAILED, render_failure, paper=copy, paper_because=PaperBecause.POLICY if copy else None)
    if not in_globe_batch:
        return Final(Status.FAILED, "not in the GLOBE batch", paper=copy, paper_because=PaperBecause.POLICY if copy else None)
    if not_delivered:
        return Final(Status.PAPER, paper_reason(PaperBecause.DEADLINE, not_delivered), paper=True,
                     paper_because=PaperBecause.DEADLINE)
    if line is None:
        return Final(Status.PAPER, paper_reason(PaperBecause.DEADLINE, "Logius' processing report has no line for this letter"),
                     paper=True, paper_because=PaperBecause.DEADLINE)
    kind = "failed" if line.unreadable else outcome_of(line.code)
    if kind == "delivered":
        return Final(Status.DELIVERED, None, line.code, paper=copy, paper_because=PaperBecause.POLICY if copy else None)
    if kind == "paper":
        return Final(Status.PAPER, paper_reason(PaperBecause.NOT_REACHABLE, f"Logius: {line.code}"), line.code, paper=True,
                     paper_because=PaperBecause.NOT_REACHABLE)
    return Final(Status.FAILED, _logius_reason(line), line.code, paper=copy, paper_because=PaperBecause.POLICY if copy else None)

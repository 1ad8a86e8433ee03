"""Each letter's final state from what its chunk went through: FAILED only for Logius' word about
the letter (or a PDF that could not be made); paper when the citizen is not reachable, by policy,
or because the deadline came first."""
from __future__ import annotations

import pytest

from bbconnect.deadlines import PaperBecause
from bbconnect.outcomes import Final, LogiusLine, final_state
from bbconnect.status import Status

DEADLINE = "not delivered before the stream's deadline (2027-02-28 09:00 UTC)"


@pytest.mark.parametrize(("given", "expected"), [
    # routed to paper: why it was routed so
    (dict(route="paper", route_source="wus"),
     Final(Status.PAPER, "not reachable digitally: wus", paper=True, paper_because=PaperBecause.NOT_REACHABLE)),
    (dict(route="paper", route_source="policy paper_only"),
     Final(Status.PAPER, "policy: policy paper_only", paper=True, paper_because=PaperBecause.POLICY)),
    (dict(route="paper", route_source="deadline (2027-02-28 09:00 UTC): the subscription check was unavailable"),
     Final(Status.PAPER, "deadline: deadline (2027-02-28 09:00 UTC): the subscription check was unavailable", paper=True,
           paper_because=PaperBecause.DEADLINE)),
    # its PDF could not be made: FAILED, it never reached Logius
    (dict(route="digital", route_source="wus", render_failure="could not be rendered: x", in_globe_batch=False),
     Final(Status.FAILED, "could not be rendered: x")),
    # the batch did not reach Logius before the deadline, or Logius would not take it: paper
    (dict(route="digital", route_source="wus", not_delivered=DEADLINE),
     Final(Status.PAPER, f"deadline: {DEADLINE}", paper=True, paper_because=PaperBecause.DEADLINE)),
    (dict(route="both", route_source="wus", not_delivered=DEADLINE),
     Final(Status.PAPER, f"deadline: {DEADLINE}", paper=True, paper_because=PaperBecause.DEADLINE)),
    # Logius' word about the letter
    (dict(route="digital", route_source="wus", line=LogiusLine("Verwerkt", "NA")), Final(Status.DELIVERED, None, "Verwerkt")),
    (dict(route="digital", route_source="wus", line=LogiusLine("BerichtBestaatAl", "NA")),
     Final(Status.DELIVERED, None, "BerichtBestaatAl")),
    (dict(route="both", route_source="wus", line=LogiusLine("Verwerkt")),
     Final(Status.DELIVERED, None, "Verwerkt", paper=True, paper_because=PaperBecause.POLICY)),
    (dict(route="digital", route_source="wus", line=LogiusLine("NietActiefOfGeabonneerd")),
     Final(Status.PAPER, "not reachable digitally: Logius: NietActiefOfGeabonneerd", "NietActiefOfGeabonneerd", paper=True,
           paper_because=PaperBecause.NOT_REACHABLE)),
    (dict(route="digital", route_source="wus", line=LogiusLine("BijlageTeGroot", "Validatie")),
     Final(Status.FAILED, "Logius: BijlageTeGroot (stadium Validatie)", "BijlageTeGroot")),
    (dict(route="digital", route_source="wus", line=LogiusLine("GeheelNieuweCode")),
     Final(Status.FAILED, "Logius: GeheelNieuweCode", "GeheelNieuweCode")),  # unknown: never delivered
    (dict(route="digital", route_source="wus", line=LogiusLine("XmlValidatieTegenXsdValtNegatiefUit", unreadable=True)),
     Final(Status.FAILED, "Logius: XmlValidatieTegenXsdValtNegatiefUit for an unreadable letter",
           "XmlValidatieTegenXsdValtNegatiefUit")),
    # the report has no word about the letter: not a reason to fail it
    (dict(route="digital", route_source="wus", line=None),
     Final(Status.PAPER, "deadline: Logius' processing report has no line for this letter", paper=True,
           paper_because=PaperBecause.DEADLINE)),
], ids=lambda value: getattr(value, "status", None) or str(value)[:60])
def test_given_what_a_chunk_went_through_then_each_letter_gets_its_final_state(given, expected):
    assert final_state(**given) == expected


def test_given_any_way_a_batch_is_not_delivered_then_no_letter_is_failed_for_it():
    for reason in (DEADLINE, "not delivered: Logius would not take the GLOBE batch (ebMS error: SecurityFailure (Error))",
                   "no processing report (GLOBE-R-BV-Result) arrived before the stream's deadline (2027-02-28 09:00 UTC)"):
        for route in ("digital", "both"):
            assert final_state(route=route, route_source="wus", not_delivered=reason).status == Status.PAPER

"""The report's figures: Logius' counts summed per file, digital reach and postage saved per stream,
and the per-letter history."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bbconnect.logius.globe import BatchResult, LetterResult, build_result, parse_result
from bbconnect.report import (
    LOGIUS_COUNTS,
    digital_reach,
    figures_total,
    history_jsonl,
    history_record,
    logius_summary,
    stream_figures,
)
from bbconnect.tenants import load_tenant_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "tenants"
GUIDS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 20)]


def _letter(stream: str, status: str, paper_copy: bool = False) -> dict:
    return {"stream": stream, "status": status, "paper_copy": paper_copy}


# ---------------------------------------------------------------------------------------------- reach


def test_given_accepted_letters_when_the_figures_are_made_then_reach_is_delivered_digitally_over_accepted_per_stream():
    # Given 3 of 4 tax letters delivered, 1 of 2 permits, and rejected rows (which have no say)
    letters = [_letter("AANSLAG", "DELIVERED"), _letter("AANSLAG", "DELIVERED"), _letter("AANSLAG", "PAPER"),
               _letter("AANSLAG", "DELIVERED"), _letter("VERGUNN", "DELIVERED"), _letter("VERGUNN", "FAILED"),
               {"status": "REJECTED", "stream": "AANSLAG"}, {"status": "REJECTED"}]
    # When the per-stream figures are made
    figures = stream_figures(letters, {})
    # Then the reach is delivered / accepted per stream
    assert figures["AANSLAG"]["digital_reach"] == 0.75 and figures["AANSLAG"]["accepted"] == 4
    assert figures["VERGUNN"]["digital_reach"] == 0.5
    assert (figures["AANSLAG"]["paper"], figures["VERGUNN"]["failed"]) == (1, 1)
    # And over the file: 4 of 6
    assert figures_total(figures)["digital_reach"] == round(4 / 6, 4)


def test_given_nothing_accepted_then_the_reach_is_unknown_not_zero():
    assert digital_reach(0, 0) is None
    assert digital_reach(0, 5) == 0.0
    assert digital_reach(1, 3) == 0.3333
    assert stream_figures([{"status": "REJECTED", "stream": "X"}], {"X": 98}) == {}
    assert figures_total({})["digital_reach"] is None


# -------------------------------------------------------------------------------------------- postage


def test_given_postage_rates_per_stream_when_letters_are_delivered_digitally_then_postage_saved_is_delivered_without_copy_times_rate():
    # Given 3 tax letters delivered (one with a paper copy too) at 98 cents and 2 permits at 120 cents
    letters = [_letter("AANSLAG", "DELIVERED"), _letter("AANSLAG", "DELIVERED"), _letter("AANSLAG", "DELIVERED", paper_copy=True),
               _letter("AANSLAG", "PAPER", paper_copy=True), _letter("VERGUNN", "DELIVERED"), _letter("VERGUNN", "DELIVERED")]
    # When the figures are made
    figures = stream_figures(letters, {"AANSLAG": 98, "VERGUNN": 120})
    # Then a letter that still went on paper saved nothing
    assert figures["AANSLAG"]["saved_letters"] == 2 and figures["AANSLAG"]["paper_copies"] == 1
    assert figures["AANSLAG"]["postage_saved_cents"] == 196 and figures["AANSLAG"]["postage_rate_cents"] == 98
    assert figures["VERGUNN"]["postage_saved_cents"] == 240
    assert figures_total(figures)["postage_saved_cents"] == 436
    # And a stream without a rate saves nothing that can be counted
    assert stream_figures(letters, {})["AANSLAG"]["postage_saved_cents"] == 0


def test_given_the_tenant_configs_then_the_stream_rate_wins_over_the_tenant_default_and_old_configs_still_load():
    raw = json.loads((CONFIG_DIR / "gemeente-lv.json").read_text(encoding="utf-8"))
    config = load_tenant_config(json.dumps(raw).encode(), source="lv")
    assert config.postage_cents_for("AANSLAG") == 98 and config.print_job_max_letters == 2000
    raw["postage_cents"] = 110
    raw["streams"]["AANSLAG"]["postage_cents"] = 87
    config = load_tenant_config(json.dumps(raw).encode(), source="lv")
    assert config.postage_cents_for("AANSLAG") == 87
    assert config.postage_cents_for("GONE") == 110  # a stream no longer configured: the tenant's rate
    # A config without any of the new fields loads with rate 0 and jobs of 2000
    for field in ("postage_cents", "print_job_max_letters"):
        raw.pop(field)
    raw["streams"]["AANSLAG"].pop("postage_cents")
    config = load_tenant_config(json.dumps(raw).encode(), source="lv")
    assert config.postage_cents_for("AANSLAG") == 0 and config.print_job_max_letters == 2000


@pytest.mark.parametrize("value", [-1, 10_001])
def test_given_an_unreasonable_postage_rate_then_the_config_is_refused(value):
    raw = json.loads((CONFIG_DIR / "gemeente-lv.json").read_text(encoding="utf-8"))
    raw["streams"]["AANSLAG"]["postage_cents"] = value
    with pytest.raises(ValueError, match="postage_cents"):
        load_tenant_config(json.dumps(raw).encode(), source="lv")


# --------------------------------------------------------------------------------------------- Logius


def _result(codes: list[str]) -> dict:
    now = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)
    counts = {code: codes.count(code) for code in set(codes)}
    result = BatchResult(
        batch_id=GUIDS[0], leverancier_code="X", total_received=len(codes), processed_ok=counts.get("Verwerkt", 0),
        no_active_box=counts.get("NietActiefOfGeabonneerd", 0), technical_problem=counts.get("TechnischProbleem", 0),
        berichttype_incorrect=0, publish_date_incorrect=0, created_date_incorrect=0, received_at=now, processed_at=now,
        letters=tuple(LetterResult(bericht_id=GUIDS[n + 1], berichttype="AANSLAG", code=code) for n, code in enumerate(codes)))
    # through the XML, as Finalize reads it
    return parse_result(build_result(result)).counts()


def test_given_the_processing_reports_of_a_files_globe_batches_then_logius_counts_are_summed_and_add_up():
    # Given two processing reports, one with a code Logius counts in no column
    first = _result(["Verwerkt", "Verwerkt", "NietActiefOfGeabonneerd"])
    second = _result(["Verwerkt", "TechnischProbleem", "BijlageTeGroot"])
    # When summed for a file of three GLOBE batches (one without a report yet)
    summary = logius_summary([first, second], globe_batches=3, counts={"paper": 7, "rejected": 2, "delivered": 3})
    # Then the portal's counts are the sums
    assert summary["TotaalAantalOntvangenBerichten"] == 6
    assert summary["AantalBerichtenSuccesvolVerwerkt"] == 3
    assert summary["AantalBerichtenGeenActieveBoxOfGeabonneertOpLeverancier"] == 1
    assert summary["AantalBerichtenMetTechnischProbleem"] == 1
    # And the total is the columns plus what Logius counted nowhere
    assert summary["other_codes"] == 1
    assert summary["TotaalAantalOntvangenBerichten"] == sum(summary[name] for name in LOGIUS_COUNTS[1:]) + summary["other_codes"]
    # And the file's paper and rejected letters, and the missing report, show
    assert (summary["paper"], summary["rejected"]) == (7, 2)
    assert (summary["globe_batches"], summary["results_received"], summary["results_missing"]) == (3, 2, 1)


def test_given_a_report_with_a_count_missing_then_the_others_are_summed_and_it_is_flagged():
    partial = dict.fromkeys(LOGIUS_COUNTS, 1) | {"AantalBerichtenMetTechnischProbleem": None}
    summary = logius_summary([partial], globe_batches=1, counts={})
    assert summary["AantalBerichtenMetTechnischProbleem"] == 0 and summary["AantalBerichtenSuccesvolVerwerkt"] == 1
    assert summary["results_with_missing_counts"] == 1


# -------------------------------------------------------------------------------------------- history


def test_given_a_stored_history_with_more_fields_when_written_then_only_time_status_reason_and_detail_remain():
    stored = [{"at": "2027-02-26T09:00:00.000+00:00", "status": "ACCEPTED", "detail": "batch b line 3", "bsn": "999990019"},
              {"at": "2027-02-26T09:05:00.000+00:00", "status": "PAPER", "text": "Geachte heer"}]
    record = history_record(line=3, reference="r-3", status="PAPER", history=stored, print_job="lv-20270226-abc-1")
    line = history_jsonl([record]).decode()
    assert "999990019" not in line and "Geachte" not in line
    assert json.loads(line) == {"line": 3, "reference": "r-3", "status": "PAPER", "print_job": "lv-20270226-abc-1",
                                "history": [{"at": "2027-02-26T09:00:00.000+00:00", "status": "ACCEPTED", "detail": "batch b line 3"},
                                            {"at": "2027-02-26T09:05:00.000+00:00", "status": "PAPER"}]}
    assert line.endswith("\n") and line.count("\n") == 1


# ------------------------------------------------------------------ routes, paper reasons, honest GLOBE batch counts
from bbconnect.report import paper_reasons, route_sources, source_kind  # noqa: E402


def test_given_letters_then_the_report_shows_per_route_what_decided_it():
    letters = [
        {"status": "DELIVERED", "route": "digital", "route_source": "wus"},
        {"status": "PAPER", "route": "digital", "route_source": "wus", "paper_because": "deadline"},
        {"status": "PAPER", "route": "paper", "route_source": "bulk list of 2027-02-25", "paper_because": "not_reachable"},
        {"status": "PAPER", "route": "paper", "route_source": "deadline (2027-02-28 09:00 UTC): the subscription check was "
                                                              "unavailable until then (WUS fault)", "paper_because": "deadline"},
        {"status": "PAPER", "route": "paper", "route_source": "policy paper_only", "paper_because": "policy"},
        {"status": "REJECTED", "reason": "INVALID_BSN: ..."},
    ]
    assert route_sources(letters) == {"digital": {"wus": 2},
                                      "paper": {"bulk list of 2027-02-25": 1, "deadline": 1, "policy paper_only": 1}}
    assert paper_reasons(letters) == {"deadline": 2, "not_reachable": 1, "policy": 1}
    assert source_kind(None) == "unknown"


def test_given_a_file_whose_chunks_partly_sent_nothing_then_no_result_is_counted_missing_for_them():
    counts = {"received": 3, "rejected": 0, "delivered": 1, "paper": 2, "failed": 0}
    summary = logius_summary([], globe_batches=0, counts=counts, chunks_without_globe_batch=2)
    assert (summary["globe_batches"], summary["chunks_without_globe_batch"], summary["results_missing"]) == (0, 2, 0)

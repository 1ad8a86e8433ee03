"""Execution names for dropped files, and the tenant's report."""
import csv
import io
import re

from bbconnect.ids import batch_id_for, tenant_of_key
from bbconnect.report import accounted, counts_of, report_csv

SHA_A, SHA_B = "a" * 64, "0123456789abcdef" * 4


def test_given_the_same_content_when_named_twice_then_the_execution_name_is_the_same_and_valid():
    name = batch_id_for("gemeente-lv", SHA_A)
    assert name == batch_id_for("gemeente-lv", SHA_A)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name)
    assert name == "gemeente-lv-" + "a" * 32


def test_given_other_content_or_another_tenant_then_the_name_differs():
    base = batch_id_for("t", SHA_A)
    assert base != batch_id_for("t", SHA_B)
    assert base != batch_id_for("u", SHA_A)
    assert batch_id_for(None, SHA_A).startswith("unassigned-")


def test_given_something_that_is_no_sha256_then_no_name_is_made():
    import pytest

    for bad in ("abc", SHA_A.upper(), SHA_A + "0", '"etag"'):
        with pytest.raises(ValueError):
            batch_id_for("t", bad)


def test_given_keys_then_the_tenant_is_the_first_folder_or_none():
    assert tenant_of_key("gemeente-lv/x.csv") == "gemeente-lv"
    assert tenant_of_key("x.csv") is None
    assert tenant_of_key("/x.csv") is None


def test_given_final_letters_then_counts_add_up_and_a_missing_letter_shows():
    letters = [{"status": s} for s in ("DELIVERED", "PAPER", "FAILED", "REJECTED", "DELIVERED")]
    counts = counts_of(letters, received=5)
    assert counts == {"received": 5, "rejected": 1, "delivered": 2, "paper": 1, "failed": 1}
    assert accounted(counts)
    assert not accounted(counts_of(letters, received=6))


def test_given_a_reason_that_starts_like_a_formula_when_written_as_csv_then_a_spreadsheet_will_not_run_it():
    data = report_csv([{"line": 1, "reference": "=HYPERLINK(\"x\")", "status": "REJECTED", "reason": "+1"}])
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0]["reference"].startswith("'=") and rows[0]["reason"] == "'+1"

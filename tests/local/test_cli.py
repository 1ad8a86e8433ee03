"""The `bbconnect` command as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BBCONNECT = [sys.executable, "-m", "bbconnect_local.cli"]


def test_given_the_small_csv_sample_when_run_then_it_exits_0_and_the_report_accounts_for_every_row(repo_root, tmp_path):
    sample = repo_root / "events" / "batches" / "gemeente-lv" / "aanslagen-2027-small.csv"
    result = subprocess.run([*BBCONNECT, "run", str(sample), "--tenant", "gemeente-lv", "--out", str(tmp_path),
                             "--simulator", str(repo_root / "events" / "simulator" / "demo.json")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    rows = len(sample.read_text(encoding="utf-8-sig").splitlines()) - 1
    assert report["counts"]["received"] == rows == len(report["letters"])
    assert report["accounted"]
    assert (tmp_path / "report.csv").exists() and (tmp_path / "logs.jsonl").exists()
    assert list((tmp_path / "pdf").rglob("*.pdf"))
    assert "every row accounted for: yes" in result.stdout
    # And no full BSN of the input appears in any log line or in the report
    import csv

    bsns = {row["bsn"] for row in csv.DictReader(sample.read_text(encoding="utf-8-sig").splitlines())}
    logs = (tmp_path / "logs.jsonl").read_text()
    assert logs.count("\n") > 5
    for text in (logs, (tmp_path / "report.json").read_text(), (tmp_path / "report.csv").read_text(encoding="utf-8-sig")):
        assert not [bsn for bsn in bsns if bsn in text]


def test_given_an_unknown_tenant_when_run_then_it_exits_non_zero_with_a_clear_message(repo_root, tmp_path):
    sample = repo_root / "events" / "batches" / "gemeente-lv" / "aanslagen-2027-small.csv"
    result = subprocess.run([*BBCONNECT, "run", str(sample), "--tenant", "nobody", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no configuration for tenant 'nobody'" in result.stdout + result.stderr


def test_given_a_missing_file_when_run_then_it_exits_non_zero(tmp_path):
    result = subprocess.run([*BBCONNECT, "run", str(tmp_path / "nope.jsonl"), "--tenant", "gemeente-lv", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "does not exist" in result.stdout + result.stderr

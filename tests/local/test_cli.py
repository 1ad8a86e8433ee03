"""The `bbconnect` command as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys

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
    # And the tenant's status events: one final one per row, checked by the summary against the report
    said = " ".join(result.stdout.split())  # rich wraps a piped summary at 80 columns
    assert "one final-status event per row, as the report says; all valid against the schema; no BSN" in said
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sum(1 for event in events if event["detail"]["final"]) == rows
    # And no full BSN of the input appears in any log line or in the report
    import csv

    bsns = {row["bsn"] for row in csv.DictReader(sample.read_text(encoding="utf-8-sig").splitlines())}
    logs = (tmp_path / "logs.jsonl").read_text()
    assert logs.count("\n") > 5
    for text in (logs, (tmp_path / "report.json").read_text(), (tmp_path / "report.csv").read_text(encoding="utf-8-sig"),
                 (tmp_path / "events.jsonl").read_text()):
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


def test_given_a_run_stopped_with_ctrl_c_then_it_leaves_the_snapshot_and_a_report_that_says_it_is_partial(tmp_path):
    # Given a generated tax run going through the local pipeline, its output piped (no terminal)
    import signal
    import time

    # (big enough to be mid-way after 25 s on an idle machine: 20,000 letters take about 7 minutes)
    # A shell starts a command with Ctrl-C at its default, whatever the test worker inherited (a
    # blocked or ignored SIGINT passes on through fork and exec, and Python leaves an ignored one so).
    def as_a_shell_starts_it() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen([*BBCONNECT, "demo", "--letters", "4000", "--chunk-size", "50", "--out", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=as_a_shell_starts_it)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("dropped "):
                break
        # When the run is interrupted while its chunks are going through
        time.sleep(25)
        with open(f"/proc/{process.pid}/status", encoding="ascii") as status:  # for the message, should it fail
            masks = [line.strip() for line in status if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + rest
    # Then it exits 130, saying where the partial report is
    assert process.returncode == 130, f"{masks}\n{output}"
    assert "partial report" in output
    # And the report says it is partial, with every row it knows and its status so far
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["partial"] is True and report["status"] == "partial" and "Ctrl-C" in report["why"]
    assert report["final"] + report["not_final"] == len(report["letters"]) > 0
    assert sum(report["counts"].values()) == len(report["letters"])
    assert (tmp_path / "report.csv").exists()
    # And the state snapshot is there for `bbconnect ops --local`
    assert (tmp_path / "state" / "snapshot.json").is_file()
    # And, piped, no progress bar was drawn
    assert "━" not in output and "\r" not in output


def test_given_the_partial_report_then_it_counts_final_and_unfinished_rows():
    from bbconnect_local.cli import partial_report

    report = partial_report([{"line": 3, "reference": "c", "status": "ROUTED"},
                             {"line": 1, "reference": "a", "status": "DELIVERED"},
                             {"line": 2, "reference": None, "status": "REJECTED", "reason": "INVALID_BSN: x"}],
                            batch_id="b", file="t/f.jsonl", why="stopped (Ctrl-C)")
    assert [row["line"] for row in report["letters"]] == [1, 2, 3]
    assert (report["final"], report["not_final"]) == (2, 1)
    assert report["counts"] == {"DELIVERED": 1, "REJECTED": 1, "ROUTED": 1}
    assert report["why"] == "this report is partial: the run stopped (Ctrl-C)"

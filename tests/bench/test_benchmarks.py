"""The benchmark scripts run and print what the README of ``bench/`` promises (slow: ``-m slow``).

They measure; they do not judge speed (no timed asserts): the numbers go into the report."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_given_a_few_rounds_when_the_render_benchmark_runs_then_its_last_line_is_the_ratio():
    pytest.importorskip("reportlab", reason="reportlab is the benchmark's yardstick: pip install -e '.[bench]'")
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "render_benchmark.py"), "--rounds", "5"],
                            capture_output=True, text=True, check=True, cwd=ROOT)
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio bbconnect/reportlab: \d+\.\d\d", lines[-1])
    assert any(line.startswith("bbconnect ") for line in lines)


def test_given_fifty_letters_when_the_memory_benchmark_runs_then_it_reports_the_peak():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "render_memory.py"), "--letters", "50"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"peak RSS: \d+ MB", result.stdout)


def test_given_forty_letters_when_the_contention_benchmark_runs_then_its_last_line_is_the_ratio():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "render_contention.py"), "--letters", "40"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio 10 threads/1 thread: \d+\.\d\d", lines[-1])
    assert any(line.strip().startswith("2 threads") for line in lines)


def test_given_a_small_run_when_the_load_benchmark_runs_then_it_accounts_for_every_letter_and_ends_with_the_ratio(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "load_pipeline.py"), "--letters", "120", "--chunk-size", "50",
                             "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio pipeline/floor: \d+\.\d\d", lines[-1])
    assert any(re.match(r"report: received 120, rejected 0, .* failed 0; delivered per Logius: \d+, twice: 0", line) for line in lines)
    assert any("garbage collection" in line for line in lines)
    assert (tmp_path / "load-counts.json").exists()


def test_given_a_small_file_when_the_ingest_memory_benchmark_runs_then_it_reports_both_peaks_and_the_ratio():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "ingest_memory.py"), "--letters", "300"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio streamed/whole peak RSS: \d+\.\d\d", lines[-1])
    assert any(line.startswith('streamed: {"accepted": 300,') for line in lines)
    assert re.search(r"streamed peak RSS: [\d.]+ MB", result.stdout)

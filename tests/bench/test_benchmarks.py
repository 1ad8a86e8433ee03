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

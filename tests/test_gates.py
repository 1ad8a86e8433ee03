"""The gates every change passes, with the configuration in pyproject.toml: ruff's rule set on the
whole repository, mypy on the layer and the functions with no errors, and no function of radon grade
D or worse (cyclomatic complexity above 20) in `layers/` and `functions/`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GRADE_D_FROM = 21  # radon: A 1-5, B 6-10, C 11-20, D 21-30, E 31-40, F 41+


def _tool(name: str, *args: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).with_name(name)
    if not executable.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: `./run setup` installs the dev extra")
    return subprocess.run([str(executable), *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_given_the_repository_when_ruff_checks_it_then_it_finds_nothing():
    run = _tool("ruff", "check", "--no-cache", ".")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_given_the_layer_and_the_functions_when_mypy_checks_them_then_it_reports_no_error():
    run = _tool("mypy", "--no-incremental")  # the files and settings: [tool.mypy]
    assert run.returncode == 0 and "Success" in run.stdout, run.stdout[-6000:] + run.stderr[-2000:]


def test_given_the_layer_and_the_functions_when_radon_grades_them_then_no_function_is_d_or_worse():
    from radon.complexity import cc_visit

    too_complex = []
    for folder in ("layers", "functions"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if "python" in path.relative_to(REPO).parts[:3]:  # a built layer's site-packages, not ours
                continue
            for block in cc_visit(path.read_text(encoding="utf-8")):
                for item in [block, *getattr(block, "methods", []), *getattr(block, "closures", [])]:
                    if item.complexity >= GRADE_D_FROM:
                        too_complex.append(f"{path.relative_to(REPO)}:{item.lineno} {item.fullname} {item.complexity}")
    assert too_complex == [], "\n".join(sorted(set(too_complex)))

"""`sam build`, as a vendor runs it, offline but for the package registry: the layer it builds is
what the tests ran (the locked versions, arm64 CPython 3.13 wheels), compiled, with the fonts, and
within Lambda's 250 MB for a function and its layers. Slow (it downloads the wheels): -m slow."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _python313() -> str | None:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob("3.13*/bin"))
    return str(found[-1]) if found else None


def test_given_the_template_when_sam_builds_it_then_the_layer_is_the_locked_arm64_build(repo_root, tmp_path):
    sam = Path(sys.executable).parent / "sam"
    python313 = _python313()
    if not sam.exists() or python313 is None:
        pytest.skip("sam and Python 3.13 are needed")
    env = {**os.environ, "PATH": f"{python313}{os.pathsep}{os.environ['PATH']}", "AWS_DEFAULT_REGION": "eu-west-1",
           "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run([str(sam), "build", "--build-dir", str(tmp_path / "build"), "--cache-dir", str(tmp_path / "cache")],
                            cwd=repo_root, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = tmp_path / "build" / "DomainLayer"
    lock = {}
    for line in (repo_root / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            lock[name.lower().replace("_", "-")] = version
    shipped = {p.name.split("-")[0].lower().replace("_", "-"): p.name.split("-")[1].removesuffix(".dist")
               for p in (layer / "python").glob("*.dist-info")}
    assert {name: version for name, version in shipped.items() if lock.get(name) != version} == {}
    assert {"pikepdf", "lxml", "boto3", "botocore", "pydantic-core"} <= set(shipped)
    assert list((layer / "python").rglob("*aarch64-linux-gnu.so")) and not list((layer / "python").rglob("*x86_64-linux-gnu.so"))
    assert list((layer / "python" / "bbconnect").rglob("*.cpython-313.pyc"))
    assert (layer / "fonts" / "DejaVuSans.ttf").is_file()
    size = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
    assert size < 250 * 1024 * 1024
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)

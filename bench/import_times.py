"""Cold-start import time of each handler, with and without the layer's compiled bytecode.

On Lambda the layer sits read-only under /opt: a module without a .pyc beside it is compiled again
at every cold start, and nothing is cached. This builds the layer as `sam build` does (its Makefile,
with this machine's platform so the wheels load here), once with the CPython 3.13 bytecode the
Makefile writes and once with it removed, and times `import app` of each handler on Python 3.13 in
a fresh interpreter that may not write bytecode (as on Lambda). Each figure is the median of RUNS
fresh interpreters, interleaved, so both builds see the same machine.

    .venv/bin/python bench/import_times.py [--runs 7]

The last line is `ratio with/without bytecode (median over handlers): X`.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local"))

CODE = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"


def runtime_python() -> str:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(root.glob("3.13*/bin/python3.13"))] + [shutil.which("python3.13") or ""]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 13)"], capture_output=True).returncode == 0:
            return candidate
    raise SystemExit("python3.13 (the Lambda runtime's Python) is needed: pyenv install 3.13")


def build_layer(target: Path) -> Path:
    subprocess.run(["make", "-s", "build-DomainLayer", f"ARTIFACTS_DIR={target}", f"ARCH={platform.machine()}",
                    f"PYTHON={sys.executable}"], cwd=REPO / "layers" / "bbconnect", check=True)
    return target


def handler_environment() -> dict[str, str]:
    """What a handler's settings need at import: the template's variables with stand-in values."""
    from bbconnect_local.template import load_template

    template = load_template(REPO / "template.yaml")
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "POWERTOOLS_TRACE_DISABLED": "true", "PYTHONDONTWRITEBYTECODE": "1",
           "PROOF_SIGNING_KEY": "", "SEND_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/send",
           "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:1:stateMachine:batch", "POWERTOOLS_SERVICE_NAME": "bench"}
    for name, value in variables.items():
        env.setdefault(name, value if isinstance(value, str) and not value.startswith("!") and isinstance(value, str) else "stand-in")
    for name in ("RESULT_POLL_SECONDS", "RESULT_TIMEOUT_SECONDS", "SEND_TIMEOUT_SECONDS", "CHUNK_CONCURRENCY", "RETENTION_DAYS",
                 "AUDIT_RETENTION_DAYS"):
        env[name] = "10"
    env["LOGIUS_CA_BUNDLE"] = "secretsmanager:bbconnect/logius-ca-bundle"
    return env


def time_import(python: str, layer: Path, function: Path, env: dict[str, str]) -> float:
    run_env = {**env, "PYTHONPATH": f"{function}{os.pathsep}{layer / 'python'}", "BBCONNECT_FONT_DIR": str(layer / "fonts")}
    out = subprocess.run([python, "-c", CODE], cwd=function, env=run_env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"importing {function.name}/app.py failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = runtime_python()
    env = handler_environment()
    with tempfile.TemporaryDirectory(prefix="bbconnect-layer-") as work:
        compiled = build_layer(Path(work) / "compiled")
        plain = Path(work) / "plain"
        shutil.copytree(compiled, plain)
        for cache in plain.rglob("__pycache__"):
            shutil.rmtree(cache)
        functions = sorted(p for p in (REPO / "functions").iterdir() if (p / "app.py").is_file())
        results: dict[str, tuple[list[float], list[float]]] = {f.name: ([], []) for f in functions}
        for _ in range(args.runs):
            for function in functions:
                results[function.name][0].append(time_import(python, plain, function, env))
                results[function.name][1].append(time_import(python, compiled, function, env))
    print(f"import time of each handler on {Path(python).name} {platform.machine()}, median of {args.runs} fresh interpreters:")
    print(f"  {'handler':24s} {'no bytecode':>12s} {'bytecode':>10s} {'ratio':>7s}")
    ratios = []
    for name, (without, with_) in results.items():
        a, b = statistics.median(without) * 1000, statistics.median(with_) * 1000
        ratios.append(b / a)
        print(f"  {name:24s} {a:10.0f} ms {b:8.0f} ms {b / a:7.2f}")
    print(f"ratio with/without bytecode (median over handlers): {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()

"""A municipal tax run of any size for the demo, built like the sample batch
(`events/make_sample_batch.py`): the same letters, more of them, with test BSNs (9999xxxxx)."""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

from stdnum.nl import bsn as stdnum_bsn

from bbconnect_local.environment import REPO_ROOT

GENERATOR = REPO_ROOT / "events" / "make_sample_batch.py"


def _sample_module():
    spec = importlib.util.spec_from_file_location("bbconnect_sample_batch", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bsns(rng: random.Random, count: int) -> list[str]:
    pool = [f"{n:09d}" for n in range(999_900_000, 1_000_000_000) if stdnum_bsn.is_valid(f"{n:09d}")]
    if count > len(pool):
        raise ValueError(f"at most {len(pool)} letters: there are no more test BSNs")
    return rng.sample(pool, count)


def tax_run(letters: int, *, seed: int = 2027, subscribed_share: float = 0.7) -> tuple[list[dict], dict]:
    """`letters` rows for gemeente-lv, and the simulator settings (who has a Berichtenbox)."""
    sample = _sample_module()
    rng = random.Random(seed)
    bsns = test_bsns(rng, letters)
    rows = [sample._row(rng, sequence, bsns[sequence - 1]) for sequence in range(1, letters + 1)]
    subscribed = sorted(rng.sample(bsns, round(letters * subscribed_share)))
    return rows, {"subscribed": subscribed, "result_codes": {}}


def write_tax_run(path: Path, letters: int, *, seed: int = 2027) -> dict:
    rows, simulator = tax_run(letters, seed=seed)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return simulator

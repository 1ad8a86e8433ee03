"""A municipal tax run of any size for the demo, built like the sample batch
(`events/make_sample_batch.py`): the same letters, more of them, with test BSNs (9999xxxxx). There
are 9,091 of those: a larger run gives citizens more than one letter each."""
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


def _citizens(rng: random.Random, letters: int) -> list[str]:
    """One test BSN per letter; past the 9,091 test BSNs there are, citizens get more than one letter."""
    pool_size = sum(1 for n in range(999_900_000, 1_000_000_000) if stdnum_bsn.is_valid(f"{n:09d}"))
    return test_bsns(rng, min(letters, pool_size))


def tax_run(letters: int, *, seed: int = 2027, subscribed_share: float = 0.7) -> tuple[list[dict], dict]:
    """`letters` rows for gemeente-lv, and the simulator settings (who has a Berichtenbox)."""
    rows: list[dict] = []
    settings = _generate(letters, rows.append, seed=seed, subscribed_share=subscribed_share)
    return rows, settings


def _generate(letters: int, emit, *, seed: int, subscribed_share: float = 0.7) -> dict:
    sample = _sample_module()
    rng = random.Random(seed)
    citizens = _citizens(rng, letters)
    for sequence in range(1, letters + 1):
        emit(sample._row(rng, sequence, citizens[(sequence - 1) % len(citizens)]))
    subscribed = sorted(rng.sample(citizens, round(len(citizens) * subscribed_share)))
    return {"subscribed": subscribed, "result_codes": {}}


def write_tax_run(path: Path, letters: int, *, seed: int = 2027) -> dict:
    """Write the tax run row by row (a 100,000-letter run is never held whole) and return the
    simulator settings."""
    with open(path, "w", encoding="utf-8") as handle:
        return _generate(letters, lambda row: handle.write(json.dumps(row, ensure_ascii=False) + "\n"), seed=seed)

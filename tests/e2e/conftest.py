"""One local bbconnect (moto + the Logius simulator + the inbound endpoint) for the end-to-end tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bbconnect_local.environment import REPO_ROOT, LocalEnvironment, simulator_config_from_file


@pytest.fixture(scope="package")
def local_env(tmp_path_factory):
    simulator = simulator_config_from_file(REPO_ROOT / "events" / "simulator" / "demo.json")
    with LocalEnvironment(config_dir=REPO_ROOT / "config" / "tenants", simulator=simulator, chunk_size=50,
                          workdir=tmp_path_factory.mktemp("local")) as env:
        yield env


def _bsn(seed: int) -> str:
    """A BSN that passes the 11-test, from a range no real citizen has (test numbers 9999xxxxx)."""
    for candidate in range(999_900_000 + seed * 10, 999_900_000 + seed * 10 + 10_000):
        digits = [int(c) for c in str(candidate)]
        if (sum(d * w for d, w in zip(digits[:8], range(9, 1, -1))) - digits[8]) % 11 == 0:
            return str(candidate)
    raise AssertionError("no BSN found")


@pytest.fixture
def make_batch(tmp_path):
    """Writes a JSON Lines batch for gemeente-lv with letters built from (reference, bsn) pairs."""
    def make(name: str, letters: list[tuple[str, str]], **overrides) -> Path:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8") as handle:
            for reference, bsn in letters:
                row = {
                    "reference": reference, "sender": "lv", "stream": "AANSLAG", "bsn": bsn,
                    "subject": "Aanslag gemeentelijke belastingen 2027", "text": "Geachte heer, mevrouw,\n\nHierbij uw aanslag.",
                    "act_before": "2027-04-30",
                    "data": {"assessment_number": reference[-10:], "tax_year": 2027, "dagtekening": "2027-02-26",
                             "vervaldag": "2027-04-30",
                             "lines": [{"code": "OZBE", "description": "Onroerende-zaakbelasting eigenaren", "period": "2027",
                                        "basis": "226000", "amount": "192.55"}], "total": "192.55"},
                    "address": {"name": "J. Jansen", "street": "Raadhuisplein", "house_number": "1", "postcode": "2260 BA",
                                "city": "Leidschendam"},
                    **overrides,
                }
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path

    return make


@pytest.fixture
def bsn():
    return _bsn

"""The demo batch of tenant gemeente-lv, its CSV twin and the simulator's demo settings."""
from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from stdnum.nl import bsn as stdnum_bsn

from bbconnect.batchfile import RawRow, parse_batch_file
from bbconnect.letters import Letter
from bbconnect.tenants import load_tenant_config
from bbconnect.validation import validate_rows

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
NOW = datetime(2027, 2, 26, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))  # the dagtekening


def _generator():
    spec = importlib.util.spec_from_file_location("make_sample_batch", EVENTS / "make_sample_batch.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_sample_batch", module)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


@pytest.fixture(scope="module")
def tenant():
    path = REPO / "config" / "tenants" / "gemeente-lv.json"
    return load_tenant_config(path.read_bytes(), source=str(path))


@pytest.fixture(scope="module")
def jsonl_bytes() -> bytes:
    return GENERATOR.JSONL_PATH.read_bytes()


@pytest.fixture(scope="module")
def validated(tenant, jsonl_bytes):
    return validate_rows(parse_batch_file(GENERATOR.JSONL_PATH.name, jsonl_bytes), tenant, now=NOW)


def test_files_are_up_to_date_and_deterministic():
    first, second = GENERATOR.render(), GENERATOR.render()
    assert first == second
    for path, content in first.items():
        assert path.read_bytes() == content, f"{path} is stale: run python events/make_sample_batch.py"
    assert GENERATOR.main(["--check"]) == 0


def test_sample_yields_200_letters_and_exactly_the_5_designed_rejections(validated, jsonl_bytes):
    letters, rejections = validated
    assert len(letters) == 200
    assert {r.line: r.code for r in rejections} == GENERATOR.BAD_ROWS
    assert len({r.code for r in rejections}) == 5
    received = sum(1 for line in jsonl_bytes.splitlines() if line.strip())
    assert received == 205 == len(letters) + len(rejections)
    duplicate = next(r for r in rejections if r.code == "DUPLICATE_REFERENCE")
    assert f"line {GENERATOR.DUPLICATED_LINE}" in duplicate.reason


def test_rejection_reasons_hold_no_bsn(validated, jsonl_bytes):
    _, rejections = validated
    bsns = {json.loads(line)["bsn"] for line in jsonl_bytes.splitlines()}
    for rejection in rejections:
        assert not any(bsn in rejection.reason for bsn in bsns)


def test_sample_letters(validated):
    letters, _ = validated
    assert all(isinstance(l, Letter) for l in letters)
    assert len({l.bsn for l in letters}) == 200
    assert all(l.publish_at is None for l in letters)
    assert all(l.act_before is not None and l.act_before.astimezone(ZoneInfo("Europe/Amsterdam")).date().isoformat()
               == l.data["vervaldag"] for l in letters)
    assert all(l.template == "aanslag" and l.address is not None for l in letters)
    assert {l.address.city for l in letters} <= {"Leidschendam", "Voorburg", "Stompwijk"}
    codes = {line["code"] for l in letters for line in l.data["lines"]}
    assert codes == {"OZBE", "AFV", "RIOG"}


def test_all_sample_bsns_are_from_the_test_range(jsonl_bytes):
    rows = [json.loads(line) for line in jsonl_bytes.splitlines()]
    assert len({row["bsn"] for row in rows}) == len(rows)
    assert all(row["bsn"].startswith("99999") for row in rows)
    invalid = [row for row in rows if not stdnum_bsn.is_valid(row["bsn"])]
    assert len(invalid) == 1  # the designed INVALID_BSN row


def test_csv_twin_gives_the_same_first_20_letters(tenant, validated):
    letters, _ = validated
    content = GENERATOR.CSV_PATH.read_bytes()
    rows = list(parse_batch_file(GENERATOR.CSV_PATH.name, content))
    assert all(isinstance(r, RawRow) for r in rows)
    from_csv, rejected = validate_rows(rows, tenant, now=NOW)
    assert rejected == [] and len(from_csv) == 20
    assert [l.line for l in from_csv] == list(range(2, 22))  # header is line 1, one letter per line
    for a, b in zip(letters[:20], from_csv):
        assert a.model_dump(exclude={"line"}) == b.model_dump(exclude={"line"})


def test_demo_simulator_settings(validated):
    letters, _ = validated
    demo = json.loads(GENERATOR.DEMO_PATH.read_text(encoding="utf-8"))
    assert set(demo) == {"subscribed", "result_codes"}
    good = {l.bsn for l in letters}
    subscribed = demo["subscribed"]
    assert len(subscribed) == len(set(subscribed)) and set(subscribed) <= good
    assert 0.6 <= len(subscribed) / len(good) <= 0.8
    assert list(demo["result_codes"].values()) == ["TechnischProbleem"]
    (failing,) = demo["result_codes"]
    assert failing in subscribed

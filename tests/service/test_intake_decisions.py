"""What the steps decide about a file and its letters' timing, together, on the fakes (no moto): a file
that cannot be read is reported to its tenant and nothing is sent; a stream that spreads publication
gives Logius one day a letter at 08:00. Moved down from tests/e2e, where they only tested these
decisions; the e2e suite keeps one bad file to prove the report's wiring."""
from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from fakes import CONFIG_DIR, FakeLogius, world
from fakes.pipeline import bsn, drop, rows, run_batch
from lxml import etree

from bbconnect.validation import AMSTERDAM, PUBLISH_MAX_AHEAD


@pytest.mark.parametrize("name,content,expected", [
    ("latin1.csv", "reference,sender\nr\xe9f,lv\n".encode("latin-1"), "UTF-8"),
    ("letters.xlsx", b"PK\x03\x04", "format"),
])
def test_given_a_bad_file_when_dropped_then_the_tenant_gets_an_error_report_and_nothing_is_sent(name, content, expected):
    # Given a file of gemeente-lv that cannot be read
    memory = world()
    start = drop(memory, "gemeente-lv", name, content)
    # When it runs
    answer, report = run_batch(memory, start)
    # Then the tenant gets an error report saying why, in its own folder, and Logius gets nothing
    assert answer["status"] == "bad_file"
    assert report is not None and report["status"] == "bad_file" and expected.lower() in report["error"].lower()
    assert answer["report"].startswith("gemeente-lv/reports/")
    assert memory.logius.posted == [] and memory.logius.wus_calls == 0


@pytest.fixture(scope="module")
def spread_configs(tmp_path_factory):
    """gemeente-lv's configuration once more as gemeente-lv-spread, its tax stream spreading
    PublicatieDatum over 3 days."""
    root = tmp_path_factory.mktemp("spread")
    shutil.copytree(CONFIG_DIR, root / "tenants")
    shutil.copytree(CONFIG_DIR.parent / "cpa", root / "cpa")
    config = json.loads((CONFIG_DIR / "gemeente-lv.json").read_text(encoding="utf-8"))
    config["tenant"] = "gemeente-lv-spread"
    config["streams"]["AANSLAG"]["spread_publication_days"] = 3
    config.pop("event_targets")  # its secrets are gemeente-lv's own: another tenant may not name them
    (root / "tenants" / "gemeente-lv-spread.json").write_text(json.dumps(config), encoding="utf-8")
    return root / "tenants"


def test_given_a_stream_that_spreads_publication_when_a_file_is_dropped_then_logius_gets_one_day_per_letter_at_0800(
        spread_configs):
    # Given four letters of a stream that spreads over 3 days, the last with its own publication date
    letters = [(f"spread-{n}", bsn(150 + n)) for n in range(4)]
    memory = world(config_dir=spread_configs, logius=FakeLogius({number for _, number in letters}))
    own = (datetime.now(UTC) + timedelta(days=5)).astimezone(AMSTERDAM).replace(hour=12, minute=0, second=0, microsecond=0)
    content = rows(letters[:3]) + [{**rows(letters[3:])[0], "publish_at": own.isoformat()}]
    # When it is dropped
    dropped_at = datetime.now(UTC)
    answer, report = run_batch(memory, drop(memory, "gemeente-lv-spread", "spread.jsonl", content))
    # Then every letter is delivered
    assert answer["status"] == "completed" and report is not None
    assert report["counts"]["delivered"] == 4 and report["accounted"] is True
    # And in the GLOBE batch, the three letters without a date publish at 08:00 Amsterdam time on
    # three consecutive days in line order, the first within a day, all within Logius' 13 days
    (message,) = memory.logius.posted
    published = {}
    for bericht in etree.fromstring(message.payloads[0].data).iter("{*}Bericht"):
        when = bericht.findtext(".//{*}PublicatieDatum")
        published[bericht.findtext(".//{*}BerichtID")] = datetime.fromisoformat(when).astimezone(AMSTERDAM) if when else None
    by_reference = {letter["reference"]: published[letter["bericht_id"]] for letter in report["letters"]}
    spread = [by_reference[reference] for reference, _ in letters[:3]]
    assert all(moment is not None and (moment.hour, moment.minute) == (8, 0) for moment in spread)
    assert [(moment.date() - spread[0].date()).days for moment in spread] == [0, 1, 2]
    assert dropped_at < spread[0] <= dropped_at + timedelta(days=1)
    assert spread[-1] <= dropped_at + PUBLISH_MAX_AHEAD
    # And the letter with its own date keeps it
    assert by_reference[letters[3][0]] == own

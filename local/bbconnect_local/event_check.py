"""What a local run's tenant received as status events (`OUT/events.jsonl`), checked against the
run's report: the demo's summary says whether they agree.

- every event is valid against `schemas/letter-status-event.schema.json`, and is the run's tenant's;
- every row of the report has exactly one final-status event of the run's batch (not counting a late
  correction), with the report's status; every accepted letter has its `Letter Accepted`;
- a correction (a late processing report) is listed in `late-results.json` with the same status;
- no event carries a BSN of the dropped file.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from bbconnect_local.environment import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "schemas" / "letter-status-event.schema.json"
FINAL = ("REJECTED", "DELIVERED", "PAPER", "FAILED")
_DIGIT_RUNS = re.compile(r"[0-9]+")  # a BSN is a number of its own (an account id that starts with one is not it)


@cache
def validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problems(event: dict) -> list[str]:
    """Each way the event breaks the schema, with where (empty: valid)."""
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(event)'}: {error.message}"
            for error in sorted(validator().iter_errors(event), key=lambda e: list(e.absolute_path))]


def input_bsns(path: Path) -> set[str]:
    """The BSN field of every row of a batch file (JSON Lines or CSV), as given; rows that cannot be
    read are skipped (they were rejected, and their BSN, if any, is still looked for in the file's text)."""
    text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
    found: set[str] = set()
    if Path(path).suffix.lower() == ".csv":
        for row in csv.DictReader(io.StringIO(text)):
            if isinstance(row.get("bsn"), str) and row["bsn"].strip():
                found.add(row["bsn"].strip())
        return found
    for line in text.splitlines():
        try:
            value = json.loads(line).get("bsn")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str) and value.strip():
            found.add(value.strip())
    return found


@dataclass
class EventCheck:
    events: int = 0
    by_status: Counter = field(default_factory=Counter)
    corrections: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_events(events: Iterable[dict], report: dict, *, tenant: str, bsns: set[str] | frozenset[str] = frozenset(),
                 late_results: list[dict] = ()) -> EventCheck:
    """`events` in one pass (a file's lines as they are read: a big run's do not all fit in memory)."""
    check = EventCheck()
    problems = check.problems
    batch_id = report["batch_id"]
    finals: dict[int, list[str]] = {}
    accepted: set[int] = set()
    corrections: dict[int, str] = {}
    for number, event in enumerate(events, 1):
        check.events = number
        text = json.dumps(event, ensure_ascii=False)
        for problem in schema_problems(event)[:3]:
            problems.append(f"event {number}: not valid against the schema: {problem}")
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        if detail.get("tenant") != tenant:
            problems.append(f"event {number}: of tenant {detail.get('tenant')!r}, in the queue of {tenant!r}")
        if bsns and not bsns.isdisjoint(_DIGIT_RUNS.findall(text)):
            problems.append(f"event {number}: carries a BSN of the dropped file")
        status = detail.get("status")
        check.by_status[status] += 1
        if detail.get("batch_id") != batch_id:
            continue
        line = int(detail.get("line") or 0)
        if detail.get("correction_of"):
            check.corrections += 1
            corrections[line] = status
        elif status in FINAL:
            finals.setdefault(line, []).append(status)
        elif status == "ACCEPTED":
            accepted.add(line)
    rows = {int(row["line"]): row for row in report["letters"]}
    for line, row in sorted(rows.items()):
        got = finals.get(line, [])
        if len(got) != 1:
            problems.append(f"line {line}: {len(got)} final-status events ({', '.join(got) or 'none'}); exactly one expected")
        elif got[0] != row["status"]:
            problems.append(f"line {line}: the final-status event says {got[0]}, the report {row['status']}")
        if row["status"] != "REJECTED" and line not in accepted:
            problems.append(f"line {line}: no Letter Accepted event")
    for line in sorted(set(finals) - set(rows)):
        problems.append(f"line {line}: a final-status event for a row the report does not have")
    late = {int(letter["line"]): letter["status"] for entry in late_results for letter in entry.get("letters") or []}
    for line, status in sorted(corrections.items()):
        if late.get(line) != status:
            problems.append(f"line {line}: a correction to {status} that late-results.json does not list")
    return check

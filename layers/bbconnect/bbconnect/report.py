"""The batch report a tenant gets: counts and one entry per input row, as JSON and CSV. No BSN.

Besides the final states, a report carries what Logius' Leveranciersportaal shows per batch (the
summed counts of the GLOBE batches' `BerichtVerwerkResponse`s) and what the portal does not: the
digital reach and the postage saved per stream, and each letter's history (`history.jsonl`).
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping

from bbconnect.logius.globe import RESULT_COUNTS

REPORT_COLUMNS = ("line", "reference", "status", "reason")
PAPER_COLUMNS = ("reference", "name", "street", "house_number", "postcode", "city", "country", "bundle")

#: Logius' counts of a processing report, by element name, in the portal's order.
LOGIUS_COUNTS = tuple(element for element, _ in RESULT_COUNTS)
_TOTAL = "TotaalAantalOntvangenBerichten"

#: What of a letter's history goes into `history.jsonl` (never the BSN nor the letter's text).
HISTORY_FIELDS = ("at", "status", "reason", "detail")


def counts_of(letters: list[dict], received: int) -> dict[str, int]:
    counts = {"received": received, "rejected": 0, "delivered": 0, "paper": 0, "failed": 0}
    for letter in letters:
        counts[letter["status"].lower()] += 1
    return counts


def accounted(counts: dict[str, int]) -> bool:
    """Every letter received is in exactly one final state."""
    return counts["received"] == counts["rejected"] + counts["delivered"] + counts["paper"] + counts["failed"]


def csv_bytes(rows: Iterable[Mapping], columns: tuple[str, ...]) -> bytes:
    """UTF-8 CSV with a BOM (spreadsheets then read it as UTF-8), CRLF, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        # A spreadsheet must not run what a tenant's data put in a cell.
        writer.writerow({k: neutral(row.get(k)) for k in columns})
    return buffer.getvalue().encode("utf-8-sig")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
# A spreadsheet in a Dutch locale splits a .csv on `;`: what follows a `;` inside a cell starts a
# cell there (a quote or spaces before the `=` do not stop it).
_FORMULA_AFTER_SEMICOLON = re.compile(r';(?=[\s"]*[=+\-@])')


def neutral(value) -> str:
    """The cell's text, with a `'` put before the text, and after any `;` in it, that a
    spreadsheet would read as the start of a formula (`=`, `+`, `-`, `@`, or a tab or line break)."""
    text = "" if value is None else str(value)
    text = _FORMULA_AFTER_SEMICOLON.sub(";'", text)
    return "'" + text if text[:1] in _FORMULA_START else text


def report_csv(letters: list[dict]) -> bytes:
    return csv_bytes(letters, REPORT_COLUMNS)


def paper_csv(rows: list[dict]) -> bytes:
    return csv_bytes(rows, PAPER_COLUMNS)


# ---------------------------------------------------------------------------------------------- Logius


def logius_summary(results: Iterable[Mapping[str, int | None]], *, globe_batches: int, counts: Mapping[str, int],
                   chunks_without_globe_batch: int = 0) -> dict:
    """The Leveranciersportaal's view of a batch file: Logius' counts summed over the processing
    reports of its GLOBE batches (`results`, each `BatchResult.counts()`), plus the file's paper and
    rejected letters. `globe_batches` counts only the chunks that had letters for the Berichtenbox:
    a chunk without any (all on paper) sends nothing to Logius, and is counted apart
    (`chunks_without_globe_batch`), never as a batch whose report is missing.

    `other_codes` is what Logius received but counted in none of its columns (e.g. `BerichtBestaatAl`,
    `BijlageTeGroot`), so that the total is the sum of the columns and `other_codes`. A report with a
    count missing is still summed where it has numbers, and shows in `results_with_missing_counts`.
    """
    totals = dict.fromkeys(LOGIUS_COUNTS, 0)
    received = incomplete = 0
    for result in results:
        received += 1
        if any(result.get(name) is None for name in LOGIUS_COUNTS):
            incomplete += 1
        for name in LOGIUS_COUNTS:
            totals[name] += result.get(name) or 0
    other = totals[_TOTAL] - sum(value for name, value in totals.items() if name != _TOTAL)
    return {
        "globe_batches": globe_batches, "chunks_without_globe_batch": chunks_without_globe_batch,
        "results_received": received, "results_missing": globe_batches - received,
        "results_with_missing_counts": incomplete, **totals, "other_codes": other,
        "paper": counts.get("paper", 0), "rejected": counts.get("rejected", 0),
    }


# ---------------------------------------------------------------------------- reach and postage per stream


def digital_reach(delivered: int, accepted: int) -> float | None:
    """The share of the accepted letters that reached the citizen digitally (0..1, four decimals);
    None when nothing was accepted."""
    if accepted <= 0:
        return None
    return round(delivered / accepted, 4)


def stream_figures(letters: Iterable[Mapping], postage_cents: Mapping[str, int]) -> dict[str, dict]:
    """Per stream of the accepted letters (rejected rows have no trustworthy stream):

    - `accepted`, `delivered`, `paper`, `failed`, and `paper_copies` (delivered letters that also
      went on paper, the `digital_and_paper` policy);
    - `digital_reach`: delivered digitally / accepted;
    - `postage_saved_cents`: the letters delivered digitally *without* a paper copy, times the
      stream's postage rate (`postage_rate_cents`; 0 when the tenant set none).
    """
    figures: dict[str, dict] = {}
    for letter in letters:
        status, stream = letter.get("status"), letter.get("stream")
        if status == "REJECTED" or not stream:
            continue
        row = figures.setdefault(stream, {"accepted": 0, "delivered": 0, "paper": 0, "failed": 0, "paper_copies": 0,
                                          "saved_letters": 0})
        if status is None:
            raise ValueError(f"letter {letter.get('reference')!r} of stream {stream!r} has no status")
        row["accepted"] += 1
        row[status.lower()] += 1
        if status == "DELIVERED":
            if letter.get("paper_copy"):
                row["paper_copies"] += 1
            else:
                row["saved_letters"] += 1
    for stream, row in figures.items():
        rate = int(postage_cents.get(stream, 0))
        row["digital_reach"] = digital_reach(row["delivered"], row["accepted"])
        row["postage_rate_cents"] = rate
        row["postage_saved_cents"] = row["saved_letters"] * rate
    return dict(sorted(figures.items()))


def figures_total(figures: Mapping[str, Mapping]) -> dict:
    """The streams' figures together: accepted, delivered, reach and postage saved for the file."""
    accepted = sum(row["accepted"] for row in figures.values())
    delivered = sum(row["delivered"] for row in figures.values())
    return {"accepted": accepted, "delivered": delivered, "digital_reach": digital_reach(delivered, accepted),
            "postage_saved_cents": sum(row["postage_saved_cents"] for row in figures.values())}


# ------------------------------------------------------------------------------------------- history


def history_record(*, line: int, reference: str | None, status: str, history: Iterable[Mapping],
                   print_job: str | None = None) -> dict:
    """One line of `history.jsonl`: where the row ended and each step on the way (time, status,
    reason, detail). Only those fields are kept, whatever else the stored history holds."""
    steps = [{k: str(step[k]) for k in HISTORY_FIELDS if step.get(k) is not None} for step in history]
    record = {"line": int(line), "reference": reference, "status": status, "history": steps}
    if print_job:
        record["print_job"] = print_job
    return record


def history_jsonl(records: Iterable[Mapping]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n" for record in records).encode("utf-8")


# ------------------------------------------------------------------------------------------- routes


def source_kind(source: str | None) -> str:
    """A route's source as the report groups it: `wus`, `bulk list of <date>`, `policy paper_only`,
    or `deadline` (whatever the deadline's moment and the outage's detail)."""
    if not source:
        return "unknown"
    return "deadline" if source.startswith("deadline") else source


def route_sources(letters: Iterable[Mapping]) -> dict[str, dict[str, int]]:
    """Per route (digital, paper, both), how many letters each source decided: what the report shows
    of why a letter went the way it went. Rejected rows have no route."""
    routes: dict[str, dict[str, int]] = {}
    for letter in letters:
        route = letter.get("route")
        if not route or letter.get("status") == "REJECTED":
            continue
        kind = source_kind(letter.get("route_source"))
        routes.setdefault(route, {})[kind] = routes.setdefault(route, {}).get(kind, 0) + 1
    return {route: dict(sorted(sources.items())) for route, sources in sorted(routes.items())}


def paper_reasons(letters: Iterable[Mapping]) -> dict[str, int]:
    """How many paper letters went on paper for each of the three reasons (`deadlines.PaperBecause`)."""
    found: dict[str, int] = {}
    for letter in letters:
        because = letter.get("paper_because")
        if because:
            found[because] = found.get(because, 0) + 1
    return dict(sorted(found.items()))

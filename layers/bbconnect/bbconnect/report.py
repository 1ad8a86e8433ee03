"""The batch report a tenant gets: counts and one entry per input row, as JSON and CSV. No BSN."""
from __future__ import annotations

import csv
import io

REPORT_COLUMNS = ("line", "reference", "status", "reason")
PAPER_COLUMNS = ("reference", "name", "street", "house_number", "postcode", "city", "country", "bundle")


def counts_of(letters: list[dict], received: int) -> dict[str, int]:
    counts = {"received": received, "rejected": 0, "delivered": 0, "paper": 0, "failed": 0}
    for letter in letters:
        counts[letter["status"].lower()] += 1
    return counts


def accounted(counts: dict[str, int]) -> bool:
    """Every letter received is in exactly one final state."""
    return counts["received"] == counts["rejected"] + counts["delivered"] + counts["paper"] + counts["failed"]


def _csv(rows: list[dict], columns: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        # A spreadsheet must not run what a tenant's data put in a cell.
        writer.writerow({k: _neutral(row.get(k)) for k in columns})
    return buffer.getvalue().encode("utf-8-sig")


def _neutral(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(letters: list[dict]) -> bytes:
    return _csv(letters, REPORT_COLUMNS)


def paper_csv(rows: list[dict]) -> bytes:
    return _csv(rows, PAPER_COLUMNS)

#!/usr/bin/env python3
"""Render speed: bbconnect's renderer against reportlab, on the same two-page aanslagbiljet; and the
size of the demo's letters.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/render_benchmark.py [--rounds N] [--breakdown]

The letter is :func:`bbconnect.rendering.letter.sample_assessment_letter` (paper variant: logo, window
address, 24 tax lines continued on page 2, payment block with EPC QR code and iDEAL link,
explanation of the codes, objection text, invitation to go digital). In one process, after a
warm-up, the renderers take turns (interleaved, so drift in the machine's speed hits all alike);
each render is timed on its own and the median is reported. Set-up that a long-running process
does once (loading fonts, registering them with reportlab) is not timed.

Two reportlab renderings of the same page are measured (see ``bench/reportlab_letter.py``):
*platypus* (``BaseDocTemplate``, ``Paragraph``, ``Table`` with ``repeatRows``: the way reportlab's
documentation builds flowing documents) and *canvas* (a hand-placed layout with ``drawString``,
leaner). Both draw the EPC QR code the usual way, with segno's ``make_epc_qr``; bbconnect draws
the same symbol from its own faster mask choice (``bbconnect.rendering.qr``). Every renderer's
time includes its QR code.

``--breakdown`` also times the parts of bbconnect's render (the payment block with and without its
QR code, the tax table, writing the PDF, ...), the numbers of the README.

**Size.** The demo's letters (``events/batches/gemeente-lv/aanslagen-2027.jsonl``, the good rows)
rendered as the pipeline renders them (``service.documents.letter_document`` with the tenant's
configuration and logo): digital for the citizens ``events/simulator/demo.json`` lists as
subscribed, paper for the others. Printed: the median size of all of them, of the digital and of
the paper ones.

The last lines are ``ratio bbconnect/reportlab canvas: X`` and ``ratio bbconnect/reportlab: X``
(against platypus).
"""
from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for ``bench.reportlab_letter`` when run as a script

from bbconnect.rendering import letter as letter_module  # noqa: E402
from bbconnect.rendering.letter import LetterRenderer, sample_assessment_letter  # noqa: E402
from bbconnect.rendering.passthrough import count_pages  # noqa: E402
from bbconnect.rendering.qr import epc_matrix  # noqa: E402

DEMO_BATCH = ROOT / "events" / "batches" / "gemeente-lv" / "aanslagen-2027.jsonl"
DEMO_SIMULATOR = ROOT / "events" / "simulator" / "demo.json"


def _logo() -> bytes:
    path = ROOT / "config" / "tenants" / "logos" / "gemeente-lv.png"
    return path.read_bytes() if path.is_file() else None  # type: ignore[return-value]


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def demo_letter_sizes(renderer: LetterRenderer) -> dict[str, list[int]]:
    """Sizes in bytes of the demo batch's letters as the pipeline makes them: the file parsed and
    validated as ingest does it (the designed bad rows drop out), each letter digital or paper as the
    demo's simulator decides."""
    from datetime import UTC, datetime

    from bbconnect.batchfile import RawRow, parse_batch_file
    from bbconnect.service.documents import LogoSource, directory_reader, letter_document
    from bbconnect.tenants import load_tenant_config
    from bbconnect.validation import validate_rows

    config_dir = ROOT / "config" / "tenants"
    config = load_tenant_config((config_dir / "gemeente-lv.json").read_bytes(), source="gemeente-lv.json")
    logos = LogoSource(directory_reader(config_dir))
    subscribed = set(json.loads(DEMO_SIMULATOR.read_text(encoding="utf-8"))["subscribed"])
    rows = [row for row in parse_batch_file(DEMO_BATCH.name, DEMO_BATCH.read_bytes()) if isinstance(row, RawRow)]
    letters, _ = validate_rows(rows, config, now=datetime(2027, 2, 20, tzinfo=UTC))
    sizes: dict[str, list[int]] = {"digital": [], "paper": []}
    for validated in letters:
        letter = validated.model_dump(mode="json")
        variant = "digital" if letter["bsn"] in subscribed else "paper"
        doc = letter_document(letter, config.organisations[letter["sender"]], config.streams[letter["stream"]],
                              variant=variant, logos=logos)
        sizes[variant].append(len(renderer.render(doc)))
    return sizes


def _breakdown(renderer: LetterRenderer, doc, rounds: int) -> dict[str, float]:
    """Median ms of each part of a render (parts nest: the payment block includes its QR code)."""
    parts = {
        "letterhead, window, header block, subject, paragraphs": [],
        "tax table (24 lines, 2 pages)": [],
        "payment block, without the QR code": [],
        "EPC QR code (encode, mask, draw)": [],
        "explanation and objection": [],
        "writing the PDF (structure tree, fonts, object stream)": [],
    }
    spent: dict[str, float] = {}

    def timed(owner, name, key):
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - start
        setattr(owner, name, wrapper)
        return original

    keys = list(parts)
    saved = [
        (LetterRenderer, "_tax_table", timed(LetterRenderer, "_tax_table", keys[1])),
        (LetterRenderer, "_payment_block", timed(LetterRenderer, "_payment_block", "payment")),
        (LetterRenderer, "_municipal_explanation", timed(LetterRenderer, "_municipal_explanation", keys[4])),
        (letter_module.LetterPdf, "output", timed(letter_module.LetterPdf, "output", keys[5])),
        (letter_module, "epc_matrix", timed(letter_module, "epc_matrix", "qr")),
        (letter_module, "qr_operators", timed(letter_module, "qr_operators", "qr draw")),
    ]
    totals = []
    try:
        for _ in range(rounds):
            spent.clear()
            start = time.perf_counter()
            renderer.render(doc)
            total = time.perf_counter() - start
            totals.append(total)
            qr = spent.get("qr", 0) + spent.get("qr draw", 0)
            parts[keys[3]].append(qr)
            parts[keys[2]].append(spent.get("payment", 0) - qr)
            for key in (keys[1], keys[4], keys[5]):
                parts[key].append(spent.get(key, 0))
            parts[keys[0]].append(total - spent.get("payment", 0) - sum(spent.get(k, 0) for k in (keys[1], keys[4], keys[5])))
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    result = {key: _median_ms(values) for key, values in parts.items()}
    result["total"] = _median_ms(totals)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="renders per renderer (default 200)")
    parser.add_argument("--breakdown", action="store_true", help="also time the parts of bbconnect's render")
    args = parser.parse_args(argv)

    from bench.reportlab_letter import PlatypusLetter, ReportlabLetter

    doc = sample_assessment_letter(logo=_logo())
    bbconnect = LetterRenderer()
    renderers = {
        "bbconnect": bbconnect.render,
        "reportlab platypus": PlatypusLetter().render,
        "reportlab canvas": ReportlabLetter().render,
    }
    outputs = {name: render(doc) for name, render in renderers.items()}  # warm-up
    for name, data in outputs.items():
        pages = count_pages(data)
        if pages != 2:
            raise SystemExit(f"{name} rendered {pages} pages; the benchmark letter must have 2")
    samples: dict[str, list[float]] = {name: [] for name in renderers}
    segno_samples: list[float] = []
    fast_samples: list[float] = []
    payment = doc.payment
    assert payment is not None
    gc.collect()
    for _ in range(args.rounds):
        for name, render in renderers.items():
            start = time.perf_counter()
            render(doc)
            samples[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        payment.epc_qr()
        segno_samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        epc_matrix(payment)
        fast_samples.append(time.perf_counter() - start)

    medians = {name: _median_ms(values) for name, values in samples.items()}
    print(f"letter: 2-page aanslagbiljet, {len(doc.assessment.lines)} tax lines, paper variant, "
          f"{args.rounds} interleaved renders each, Python {sys.version.split()[0]}")
    for name, median in medians.items():
        print(f"{name:<20} median {median:6.2f} ms  ({len(outputs[name])} bytes)")
    print(f"EPC QR code: segno's make_epc_qr (in reportlab's time) median {_median_ms(segno_samples):.2f} ms, "
          f"bbconnect's (in its time) {_median_ms(fast_samples):.2f} ms, the same symbol")
    if args.breakdown:
        print("bbconnect's render, median ms per part:")
        for part, value in _breakdown(bbconnect, doc, args.rounds).items():
            print(f"  {part:<56} {value:6.2f}")
    sizes = demo_letter_sizes(bbconnect)
    everything = sizes["digital"] + sizes["paper"]
    if everything:
        print(f"demo letters: {len(everything)}; median size {statistics.median(everything) / 1000:.1f} kB "
              f"(digital {len(sizes['digital'])}: {statistics.median(sizes['digital']) / 1000:.1f} kB, "
              f"paper {len(sizes['paper'])}: {statistics.median(sizes['paper']) / 1000:.1f} kB)")
    print(f"ratio bbconnect/reportlab canvas: {medians['bbconnect'] / medians['reportlab canvas']:.2f}")
    print(f"ratio bbconnect/reportlab: {medians['bbconnect'] / medians['reportlab platypus']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

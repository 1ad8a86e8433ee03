#!/usr/bin/env python3
"""Render speed: bbconnect's renderer against reportlab, on the same two-page aanslagbiljet.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/render_benchmark.py [--rounds N]

The letter is :func:`bbconnect.rendering.letter.sample_assessment_letter` (paper variant: logo, window
address, 24 tax lines continued on page 2, payment block with EPC QR code and iDEAL link,
explanation of the codes, objection text, invitation to go digital). In one process, after a
warm-up, the renderers take turns (interleaved, so drift in the machine's speed hits all alike);
each render is timed on its own and the median is reported. Set-up that a long-running process
does once (loading fonts, registering them with reportlab) is not timed.

Two reportlab renderings of the same page are measured (see ``bench/reportlab_letter.py``):
*platypus* (``BaseDocTemplate``, ``Paragraph``, ``Table`` with ``repeatRows``: the way reportlab's
documentation builds flowing documents; the yardstick of the last line) and *canvas* (a
hand-placed layout with ``drawString``, leaner). Both draw the same segno EPC QR code, whose
encoding (segno evaluates all eight masks, about 4 ms) is part of every renderer's time; the
line "without QR encoding" shows the rest.

The last line is ``ratio bbconnect/reportlab: X`` (median bbconnect / median reportlab platypus).
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for ``bench.reportlab_letter`` when run as a script

from bbconnect.rendering.letter import LetterRenderer, sample_assessment_letter  # noqa: E402
from bbconnect.rendering.passthrough import count_pages  # noqa: E402


def _logo() -> bytes:
    path = ROOT / "config" / "tenants" / "logos" / "gemeente-lv.png"
    return path.read_bytes() if path.is_file() else None  # type: ignore[return-value]


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="renders per renderer (default 200)")
    args = parser.parse_args(argv)

    from bench.reportlab_letter import PlatypusLetter, ReportlabLetter

    doc = sample_assessment_letter(logo=_logo())
    renderers = {
        "bbconnect": LetterRenderer().render,
        "reportlab platypus": PlatypusLetter().render,
        "reportlab canvas": ReportlabLetter().render,
    }
    outputs = {name: render(doc) for name, render in renderers.items()}  # warm-up
    for name, data in outputs.items():
        pages = count_pages(data)
        if pages != 2:
            raise SystemExit(f"{name} rendered {pages} pages; the benchmark letter must have 2")
    samples: dict[str, list[float]] = {name: [] for name in renderers}
    qr_samples: list[float] = []
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
        qr_samples.append(time.perf_counter() - start)

    medians = {name: _median_ms(values) for name, values in samples.items()}
    qr = _median_ms(qr_samples)
    print(f"letter: 2-page aanslagbiljet, {len(doc.assessment.lines)} tax lines, paper variant, "
          f"{args.rounds} interleaved renders each, Python {sys.version.split()[0]}")
    for name, median in medians.items():
        print(f"{name:<20} median {median:6.2f} ms  ({len(outputs[name])} bytes)")
    print(f"segno EPC QR encoding (in every renderer's time): median {qr:.2f} ms")
    print(
        "without QR encoding: "
        + ", ".join(f"{name} {median - qr:.2f} ms" for name, median in medians.items())
    )
    print(f"ratio bbconnect/reportlab canvas: {medians['bbconnect'] / medians['reportlab canvas']:.2f}")
    print(f"ratio bbconnect/reportlab: {medians['bbconnect'] / medians['reportlab platypus']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Peak memory of rendering one full chunk: 1000 different aanslagbiljetten (each with payment block
and EPC QR code) rendered in one process, kept in memory and wrapped in one GLOBE ``Berichten``
batch, as the render Lambda does.

    .venv/bin/python bench/render_memory.py [--letters 1000]

Prints the peak resident set size of the process (its own ``VmHWM``, what Lambda bills against its
memory setting; not ``ru_maxrss``, which carries over the peak of whatever started the benchmark),
measured as the Render function's container would hold it: only the packages the layer ships can
be imported (bench/lambda_process.py). Also the peak of Python allocations during the run (tracemalloc would slow it down,
so it is off unless ``--tracemalloc``), the batch size and the time taken.
"""
from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from lambda_process import layer_packages_only, peak_rss_mb, rss_mb

TARGET_MB = 512


def _bsn(n: int) -> str:
    for candidate in range(999_900_000 + n * 10, 999_900_000 + n * 10 + 100):
        digits = [int(c) for c in str(candidate)]
        if (sum(d * w for d, w in zip(digits[:8], range(9, 1, -1))) - digits[8]) % 11 == 0:
            return str(candidate)
    raise AssertionError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args(argv)

    layer_packages_only()  # before bbconnect is imported: fpdf, for one, imports numpy if it can
    from bbconnect.logius.globe import GlobeAttachment, GlobeLetter, build_batch
    from bbconnect.payment import text_with_payment
    from bbconnect.rendering.letter import LetterRenderer, TaxLine, sample_assessment_letter

    base_rss = rss_mb()
    if args.tracemalloc:
        tracemalloc.start()
    start = time.perf_counter()
    renderer = LetterRenderer()
    template = sample_assessment_letter(variant="digital")
    letters: list[GlobeLetter] = []
    for i in range(args.letters):
        # every letter differs: recipient, its lines, amount, QR code
        lines = tuple(replace(line, description=f"Voorbeeldstraat {i % 300 + 1}-{n} Leidschendam")
                      for n, line in enumerate(template.assessment.lines[: 10 + i % 15]))
        lines += (TaxLine("RIOG", "Rioolheffing", "2025", None, Decimal(i % 97) + Decimal("0.37")),)
        total = sum((ln.amount for ln in lines if ln.amount is not None), Decimal(0))
        doc = replace(
            template,
            recipient_lines=(f"Bewoner {i}", f"Voorbeeldstraat {i % 300 + 1}", "2261 AB Leidschendam"),
            assessment=replace(template.assessment, number=f"2025{i:06d}", lines=lines, total=total),
            payment=replace(template.payment, amount=total),
        )
        pdf = renderer.render(doc)
        letters.append(GlobeLetter(
            bericht_id=str(uuid.UUID(int=i + 1)), berichttype="AANSLAG", subject=doc.subject[:50],
            text=text_with_payment("Geachte heer, mevrouw,\n\nHierbij uw aanslag.", doc.payment), reference=f"2025{i:06d}",
            bsn=_bsn(i), publish_at=None, act_before=None,
            attachments=(GlobeAttachment(content=pdf, description="Aanslagbiljet", order=1),),
        ))
    render_seconds = time.perf_counter() - start
    xml = build_batch(str(uuid.uuid4()), datetime.now(UTC), "00000001899410741000", letters)
    elapsed = time.perf_counter() - start
    pdf_bytes = sum(len(letter.attachments[0].content) for letter in letters)
    traced = ""
    if args.tracemalloc:
        _, peak = tracemalloc.get_traced_memory()
        traced = f"; Python allocations peak {peak / 2**20:.0f} MB (tracemalloc)"
    peak = peak_rss_mb()
    print(f"{args.letters} letters rendered in {render_seconds:.1f} s ({render_seconds / args.letters * 1000:.1f} ms "
          f"per letter), batch built in {elapsed - render_seconds:.1f} s; PDFs {pdf_bytes / 2**20:.1f} MB, "
          f"Berichten XML {len(xml) / 2**20:.1f} MB{traced}")
    print(f"Python {sys.version.split()[0]}; process RSS before start {base_rss:.0f} MB (bbconnect imported)")
    print(f"peak RSS: {peak:.0f} MB (target <= {TARGET_MB} MB)")
    return 0 if peak <= TARGET_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""What rendering side by side in one interpreter costs: CPU per PDF with 1, 2 and 10 threads.

    .venv/bin/python bench/render_contention.py [--letters 400]

Locally every function runs on a thread of one Python interpreter; on AWS every Lambda has a CPU of
its own. This renders the same letters (the load run's, Berichtenbox variant) on one thread, then
split over N threads at once, and reports each thread's CPU time (`time.thread_time`) per PDF,
with the ratio to one thread measured in the same process. One-thread rounds come first and last,
so drift in the machine shows. bench/load_pipeline.py runs its chunks one at a time because of
what this prints.

The last line is `ratio 10 threads/1 thread: X`.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "local"), str(REPO / "layers" / "bbconnect")]

from bench.load_pipeline import TENANT, tax_run  # noqa: E402


def documents(letters: int) -> list:
    from bbconnect.batchfile import RawRow
    from bbconnect.service.documents import LogoSource, directory_reader, letter_document
    from bbconnect.tenants import TenantConfig
    from bbconnect.validation import validate_rows

    config_path = REPO / "config" / "tenants" / f"{TENANT}.json"
    config = TenantConfig.model_validate_json(config_path.read_text(encoding="utf-8"))
    raw, _subscribed = tax_run(letters)
    valid, rejected = validate_rows([RawRow(line=i + 1, fields=row) for i, row in enumerate(raw)], config, now=datetime.now(UTC))
    assert not rejected, rejected[:3]
    logos = LogoSource(directory_reader(config_path.parent))
    rows = [letter.model_dump(mode="json") for letter in valid]
    return [letter_document(row, config.organisations[row["sender"]], config.streams[row["stream"]], variant="digital", logos=logos)
            for row in rows]


def cpu_per_pdf(docs: list, threads: int) -> float:
    """Render all `docs` split over `threads` threads started together: mean thread CPU per PDF."""
    from bbconnect.service.render import renderer

    spent: list[float] = []
    lock = threading.Lock()

    def work(share: list) -> None:
        started = time.thread_time()
        for doc in share:
            renderer().render(doc)
        with lock:
            spent.append(time.thread_time() - started)

    workers = [threading.Thread(target=work, args=(docs[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(spent) / len(docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=400)
    args = parser.parse_args(argv)
    from bbconnect.service.render import renderer

    docs = documents(args.letters)
    for doc in docs[:20]:  # warm: fonts loaded, caches filled, as in a Lambda after its first letter
        renderer().render(doc)
    measured: dict[int, list[float]] = {1: [], 2: [], 10: []}
    for threads in (1, 10, 2, 1):
        measured[threads].append(cpu_per_pdf(docs, threads))
    one = sum(measured[1]) / len(measured[1])
    print(f"{args.letters} letters, Berichtenbox variant; thread CPU per PDF:")
    print(f"   1 thread   {measured[1][0] * 1000:6.2f} ms first, {measured[1][1] * 1000:6.2f} ms last")
    for threads in (2, 10):
        print(f"  {threads:2d} threads  {measured[threads][0] * 1000:6.2f} ms  ({measured[threads][0] / one:.2f} x one thread)")
    print(f"ratio 10 threads/1 thread: {measured[10][0] / one:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

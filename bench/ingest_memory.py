"""Peak memory of Ingest on a big batch file: the streamed intake against reading the file whole.

    .venv/bin/python bench/ingest_memory.py [--letters 100000]

Generates a municipal tax run of N rows (100,000 rows is about 126 MB of JSON Lines) and runs the
Ingest service on it in a fresh process of its own, twice:

- `streamed`: `service.ingest.ingest` as deployed: the file read from the inbox in pieces, each row
  validated as it comes, the accepted letters spooled to /tmp, the chunks written one at a time;
- `whole` (the baseline): the file read whole and parsed and validated at once
  (`parse_batch_file` + `validate_rows`), as Ingest did before.

Each child's storage is a folder on disk and its ledger a stand-in that keeps nothing (so what is
measured is Ingest's own memory, not moto's); its own peak resident size (`VmHWM`, not
`ru_maxrss`, which carries over the peak of the process that started it), with only the packages
the layer ships importable (bench/lambda_process.py), is what a Lambda's MemorySize must hold.
It prints each child's floor (the process with everything imported), peak, CPU seconds and the
chunks written, and last `ratio streamed/whole peak RSS: X`.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lambda_process import layer_packages_only, peak_rss_mb, rss_mb

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "bbconnect"), str(REPO / "local")]

TENANT = "gemeente-lv"


class _Folder:
    """The inbox, work and outbox buckets as folders (what Ingest calls of `BlobStore`, with its
    signatures). A folder keeps one version of each object: the benchmark's event names no
    `version_id`, so Ingest asks for the current one; asking for another is refused, not ignored."""

    def __init__(self, root: Path, bucket: str) -> None:
        self.root, self.bucket = root, bucket

    def _path(self, key: str, version_id: str | None = None) -> Path:
        if version_id is not None:
            raise NotImplementedError(f"{self.bucket}/{key}: a folder keeps no versions (asked for {version_id!r})")
        return self.root / key

    def head(self, key: str, *, version_id: str | None = None):
        path = self._path(key, version_id)
        return {"ContentLength": path.stat().st_size} if path.exists() else None

    def stream(self, key: str, piece_bytes: int = 4 * 1024 * 1024, *, version_id: str | None = None):
        with open(self._path(key, version_id), "rb") as handle:
            while piece := handle.read(piece_bytes):
                yield piece

    def get(self, key: str, *, version_id: str | None = None) -> bytes:
        return self._path(key, version_id).read_bytes()

    def get_or_none(self, key: str):
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    def put(self, key: str, data: bytes, content_type: str = "", *, letter_content: bool = False) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def put_json(self, key: str, value) -> None:
        self.put(key, json.dumps(value, ensure_ascii=False, default=str).encode())


class _Ledger:
    """The letters and batches tables, keeping nothing: Ingest's writes are counted, not stored."""

    def __init__(self) -> None:
        self.letters = 0

    def recorded(self, tenant, references):
        return {}

    def open_chunks(self, tenant, batch_id, chunks, *, recorded=frozenset()):
        self.letters += sum(len(chunk["letters"]) for chunk in chunks)

    def record_rejections(self, tenant, batch_id, rejections):
        pass

    def take_intake_lock(self, tenant, holder, *, lease_seconds):
        return True

    def release_intake_lock(self, tenant, holder):
        pass

    def record_file(self, batch_id, **fields):
        pass


def child(mode: str, folder: Path) -> dict:
    from datetime import UTC, datetime

    layer_packages_only()  # before bbconnect is imported, as in the function's container
    from bbconnect import runtime
    from bbconnect.adapters.tenant_configs import TenantConfigStore
    from bbconnect.batchfile import parse_batch_file
    from bbconnect.service.context import Services
    from bbconnect.service.ingest import ingest
    from bbconnect.validation import validate_rows

    settings = runtime.Settings.model_validate({
        "LETTERS_TABLE": "letters", "BATCHES_TABLE": "batches", "IDEMPOTENCY_TABLE": "idempotency",
        "INBOX_BUCKET": "inbox", "OUTBOX_BUCKET": "outbox", "WORK_BUCKET": "work", "LOGIUS_CA_BUNDLE": "file:none"})
    ledger = _Ledger()
    configs = TenantConfigStore(directory=str(REPO / "config" / "tenants"))
    services = Services(settings=settings, inbox=_Folder(folder / "inbox", "inbox"), outbox=_Folder(folder / "outbox", "outbox"),
                        work=_Folder(folder / "work", "work"), letters=ledger, batches=ledger, configs=configs)
    configs.get(TENANT)
    floor = rss_mb()
    cpu = time.process_time()
    now = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)
    if mode == "streamed":
        answer = ingest({"batch_id": "bench", "key": f"{TENANT}/tax-run.jsonl"}, services, now=now)
        result = {"accepted": answer["accepted"], "rejected": answer["rejected"], "chunks": answer["chunk_count"]}
    else:
        content = services.inbox.get(f"{TENANT}/tax-run.jsonl")
        letters, rejections = validate_rows(parse_batch_file("tax-run.jsonl", content), configs.get(TENANT), now=now)
        result = {"accepted": len(letters), "rejected": len(rejections), "chunks": None}
    return {**result, "floor_mb": round(floor, 1), "peak_mb": round(peak_rss_mb(), 1),
            "cpu_seconds": round(time.process_time() - cpu, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--child", choices=("streamed", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.folder)))
        return 0
    from bbconnect_local.demo_batch import write_tax_run

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as temp:
        folder = Path(temp)
        source = folder / "inbox" / TENANT / "tax-run.jsonl"
        source.parent.mkdir(parents=True)
        write_tax_run(source, args.letters)
        size_mb = source.stat().st_size / 1024 / 1024
        print(f"file: {args.letters} rows, {size_mb:.1f} MB")
        results = {}
        for mode in ("streamed", "whole"):
            run = subprocess.run([sys.executable, __file__, "--child", mode, "--folder", str(folder)],
                                 capture_output=True, text=True, check=True)
            results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{mode}: {json.dumps(results[mode])}")
    print(f"streamed peak RSS: {results['streamed']['peak_mb']} MB for a {size_mb:.0f} MB file")
    print(f"ratio streamed/whole peak RSS: {results['streamed']['peak_mb'] / results['whole']['peak_mb']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

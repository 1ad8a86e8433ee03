"""Load: a tax run of 100,000 letters through the local pipeline (moto + the Logius simulator),
against the floor of the same letters: only rendering their PDFs and building the GLOBE XML.

    .venv/bin/python bench/load_pipeline.py [--letters 100000] [--out out/load] [--chunk-concurrency 1]

Prints letters per second, CPU seconds per letter and peak memory for the pipeline; the same for
the floor, measured in the same run for the same letters; and as its last line
`ratio pipeline/floor: X` (target: at most 1.3).

What is measured (bbconnect_local.metering): the pipeline's CPU is the CPU time of bbconnect's
Lambda handlers, each invocation on its own thread, without the time moto spends inside the AWS
calls they make (moto emulating S3, DynamoDB, SQS and Step Functions is Amazon's work on AWS, paid
for through the request prices that bench/cost_model.py adds up). The simulator (Logius' work)
is not in it either. Both are printed beside it, with the whole process's CPU, so nothing is
hidden. The floor renders each letter in the variant its route needs (the Berichtenbox PDF for a
citizen with a Berichtenbox, the paper letter otherwise) and builds the GLOBE batches of the
digital ones, measured the same way (thread CPU time), in a thread beside the pipeline that renders
its n-th letter when the pipeline has rendered n: both work under the same load of the one shared
interpreter (run after the pipeline on a quiet machine, the same renders took 17 % less CPU).

The file's GLOBE batches go through their steps one at a time here (the template parameter
ChunkConcurrency, 10 on AWS, set to 1 by `--chunk-concurrency`). On AWS each chunk's Lambda has a
CPU of its own; here the chunks would be threads of one interpreter, and ten threads rendering side
by side each use 12 to 20 % more CPU per PDF than one (the switching between them, not our code:
bench/render_contention.py measures it), which would be counted against the pipeline. The work is
the same either way; only the local wall time grows, by the waits for Logius no longer overlapping.

The counts for the cost model (state transitions, invocations, GB-seconds, requests, DynamoDB
units, S3 PUTs, log bytes) are written to OUT/load-counts.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from lambda_process import peak_rss_mb

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "local"), str(REPO / "layers" / "bbconnect")]

TENANT = "gemeente-lv"


def bsns(count: int, seed: int) -> list[str]:
    """`count` distinct numbers that pass the 11-test, counted down from 999999999 (test numbers
    that never leave this machine), shuffled."""
    from stdnum.nl import bsn as stdnum_bsn

    found, number = [], 999_999_999
    while len(found) < count:
        candidate = f"{number:09d}"
        if stdnum_bsn.is_valid(candidate):
            found.append(candidate)
        number -= 1
    random.Random(seed).shuffle(found)
    return found


def tax_run(letters: int, *, seed: int = 2027, subscribed_share: float = 0.7) -> tuple[list[dict], set[str]]:
    from bbconnect_local.demo_batch import _sample_module

    sample = _sample_module()
    rng = random.Random(seed)
    numbers = bsns(letters, seed)
    rows = [sample._row(rng, sequence, numbers[sequence - 1]) for sequence in range(1, letters + 1)]
    return rows, set(rng.sample(numbers, round(letters * subscribed_share)))


# ------------------------------------------------------------------ the floor (a thread beside the pipeline)
def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def floor(raw: list[dict], subscribed_bsns: set[str], configs, logos, *, pace=None) -> dict:
    """Render the letters (digital when the citizen has a Berichtenbox, paper otherwise) and build
    the GLOBE batches of the digital ones, 1,000 a batch: the work no design can avoid, measured like
    the handlers (thread CPU time). `pace(n)` blocks until the pipeline has rendered n letters: the
    floor then runs beside the pipeline, in the same process and under the same load (one Python
    interpreter shared by moto, the simulator and every function), letter for letter.

    `configs` (a `TenantConfigStore`) and `logos` (a `LogoSource`) are where the Render function
    finds the tenant's configuration and its logos: the config bucket (`bucket_sources`)."""
    subscribed = [row["bsn"] in subscribed_bsns for row in raw]
    from bbconnect.batchfile import RawRow
    from bbconnect.chunking import bericht_id
    from bbconnect.logius.globe import GlobeAttachment, GlobeLetter, build_batch
    from bbconnect.payment import text_with_payment
    from bbconnect.service.documents import letter_document
    from bbconnect.service.render import renderer
    from bbconnect.validation import validate_rows

    config = configs.get(TENANT)  # parsed and checked as the functions do (load_tenant_config, its CPAs)
    # The letters as the pipeline renders them (validated), made before the clock starts.
    letters, rejected = validate_rows([RawRow(line=i + 1, fields=row) for i, row in enumerate(raw)], config, now=datetime.now(UTC))
    assert not rejected, rejected[:3]
    rows = [letter.model_dump(mode="json") for letter in letters]
    for organisation in config.organisations.values():  # the logos the pipeline's letters carry, read once
        if organisation.logo_path:
            logos.get(organisation.logo_path)
    renderer()  # warm, as a Lambda container is after its first letter (its logos kept too)
    wall_started, started = time.perf_counter(), time.thread_time()
    render_cpu = 0.0
    digital, pdfs, xml_bytes = [], 0, 0
    now = datetime.now(UTC)
    for number, (row, has_box) in enumerate(zip(rows, subscribed, strict=True), start=1):
        if pace is not None:
            pace(number)
        organisation, stream = config.organisations[row["sender"]], config.streams[row["stream"]]
        document = letter_document(row, organisation, stream, variant="digital" if has_box else "paper", logos=logos)
        render_started = time.thread_time()
        pdf = renderer().render(document)
        render_cpu += time.thread_time() - render_started
        pdfs += 1
        if has_box:
            digital.append(GlobeLetter(
                bericht_id=bericht_id(TENANT, row["reference"]), berichttype=stream.code, subject=row["subject"],
                text=text_with_payment(row.get("text") or "", document.payment), reference=None, bsn=row["bsn"],
                publish_at=_when(row.get("publish_at")), act_before=_when(row.get("act_before")),
                attachments=(GlobeAttachment(content=pdf, description=row["subject"][:128], order=1),)))
        if len(digital) == 1000:
            xml_bytes += len(build_batch(f"00000000-0000-4000-8000-{pdfs:012d}", now, organisation.oin, digital))
            digital = []
    if digital:
        xml_bytes += len(build_batch(f"00000000-0000-4000-8000-{pdfs:012d}", now, organisation.oin, digital))
    return {"cpu_seconds": time.thread_time() - started, "render_cpu_seconds": render_cpu, "pdfs": pdfs,
            "xml_bytes": xml_bytes, "wall_seconds": time.perf_counter() - wall_started}


def bucket_sources(bucket: str):
    """A tenant configuration store and a logo source on the config bucket, built as a function's
    container builds them (`service.context`, `service.documents.container_logos`): the local
    environment keeps the configurations there, localised, with their secrets in Secrets Manager."""
    import boto3

    from bbconnect.adapters.tenant_configs import TenantConfigStore
    from bbconnect.service.documents import LogoSource, bucket_reader

    s3 = boto3.client("s3")
    return TenantConfigStore(s3=s3, bucket=bucket), LogoSource(bucket_reader(s3, bucket))


# ------------------------------------------------------------------ the pipeline
def pipeline(rows: list[dict], subscribed: set[str], out: Path, chunk_size: int,
             chunk_concurrency: int) -> tuple[dict, dict, dict]:
    from bbconnect_local.environment import REPO_ROOT, LocalEnvironment
    from bbconnect_local.metering import Meter, table_item_sizes
    from bbconnect_local.simulator import SimulatorConfig

    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(REPO_ROOT / "config", work / "config")
    tenant_file = work / "config" / "tenants" / f"{TENANT}.json"
    config = json.loads(tenant_file.read_text(encoding="utf-8"))
    config["connections"]["lv-logius"]["max_send_rate"] = 1000  # the highest rate a connection may have
    tenant_file.write_text(json.dumps(config), encoding="utf-8")
    batch = work / "tax-run.jsonl"
    with open(batch, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    logs = out / "logs.jsonl"
    real_stdout = sys.stdout
    logging.getLogger().setLevel(logging.WARNING)
    meter = Meter().install()
    try:
        with open(logs, "w", encoding="utf-8") as log_file:
            sys.stdout = log_file  # the handlers' JSON logs and EMF metrics: what CloudWatch Logs would ingest
            simulator = SimulatorConfig(subscribed=set(subscribed), keep_payloads=False)
            with LocalEnvironment(config_dir=work / "config" / "tenants", simulator=simulator, chunk_size=chunk_size,
                                  workdir=work / "local", parameter_overrides={"ChunkConcurrency": chunk_concurrency}) as env:
                configs, logos = bucket_sources(env.outputs["ConfigBucketName"])
                done = threading.Event()

                def pace(number: int) -> None:
                    while meter.renders < number and not done.is_set():
                        time.sleep(0.02)

                base: dict = {}
                failed: list[BaseException] = []

                def beside_the_pipeline() -> None:
                    try:
                        base.update(floor(rows, subscribed, configs, logos, pace=pace))
                    except BaseException as error:  # handed to the main thread: the benchmark fails with it
                        failed.append(error)

                def floor_alive(_described) -> None:
                    if failed:  # no floor, no ratio: stop waiting for the pipeline
                        raise RuntimeError("the floor failed") from failed[0]

                beside = threading.Thread(target=beside_the_pipeline, name="floor", daemon=True)
                cpu_before, wall_before = time.process_time(), time.perf_counter()
                key = env.drop(batch, TENANT)
                beside.start()
                try:
                    run = env.wait_for_execution(key, timeout=6 * 3600, on_progress=floor_alive)
                finally:
                    done.set()
                wall = time.perf_counter() - wall_before
                beside.join()
                floor_alive(None)
                process_cpu = time.process_time() - cpu_before
                meter.uninstall()
                if run.status != "SUCCEEDED":
                    raise SystemExit(f"the batch execution ended {run.status}; see {logs}")
                env.simulator.wait_idle(timeout=60)
                report = json.loads(env.outbox_object(run.output["report"]))
                deliveries = env.simulator.delivery_log_json()
                sizes, indexed = table_item_sizes([env.outputs["LettersTableName"], env.outputs["BatchesTableName"]])
                log_bytes = logs.stat().st_size if logs.exists() else 0
                counts = meter.summary(sizes, indexed)
    finally:
        sys.stdout = real_stdout
        meter.uninstall()
    delivered_once = len({d["bericht_id"] for d in deliveries})
    counts.update(letters=len(rows), wall_seconds=round(wall, 1), process_cpu_seconds=round(process_cpu, 1),
                  log_bytes=log_bytes, report_counts=report["counts"], delivered_by_logius=delivered_once,
                  delivered_twice=len(deliveries) - delivered_once)
    return counts, report, base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--chunk-concurrency", type=int, default=1,
                        help="GLOBE batches of the file in their steps at once (ChunkConcurrency; 10 on AWS)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "load")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    rows, subscribed = tax_run(args.letters)
    print(f"{args.letters} letters, {len(subscribed)} citizens with a Berichtenbox; running the pipeline ...", flush=True)
    counts, report, base = pipeline(rows, subscribed, args.out, args.chunk_size, args.chunk_concurrency)
    peak_mb = peak_rss_mb()  # the process's own (ru_maxrss would carry over its parent's)
    counts["floor"] = {key: round(value, 3) if isinstance(value, float) else value for key, value in base.items()}
    counts["peak_rss_mb"] = round(peak_mb)
    (args.out / "load-counts.json").write_text(json.dumps(counts, indent=2), encoding="utf-8")

    n = args.letters
    pipeline_cpu = counts["handler_cpu_seconds"]
    ratio = pipeline_cpu / base["cpu_seconds"]
    c = report["counts"]
    print(f"report: received {c['received']}, rejected {c['rejected']}, delivered {c['delivered']}, paper {c['paper']}, "
          f"failed {c['failed']}; delivered per Logius: {counts['delivered_by_logius']}, twice: {counts['delivered_twice']}")
    print(f"pipeline: {n / counts['wall_seconds']:.1f} letters/s ({counts['wall_seconds']:.0f} s wall), "
          f"{pipeline_cpu / n * 1000:.2f} ms CPU per letter in the Lambda handlers ({pipeline_cpu:.0f} s), "
          f"peak memory {peak_mb:.0f} MB (one process: moto, the simulator and every function)")
    print(f"  beside it: moto emulating AWS {counts['emulation_cpu_seconds']:.0f} s CPU; whole process "
          f"{counts['process_cpu_seconds']:.0f} s CPU (with the simulator and the harness)")
    for name, use in counts["functions"].items():
        print(f"  {name:28s} {use['invocations']:6d} invocations {use['cpu_seconds']:9.1f} s CPU {use['gb_seconds']:9.1f} GB-s")
    print(f"  of the handlers' CPU, rendering {counts['render_cpu_seconds']:.0f} s ({counts['renders']} PDFs); "
          f"the rest {pipeline_cpu - counts['render_cpu_seconds']:.0f} s")
    gc_of = counts["gc_seconds"]
    handler_gc = sum(v for k, v in gc_of.items() if k.startswith("handler "))
    print(f"  garbage collection (every object of the one process, moto's too): in the handlers {handler_gc:.0f} s "
          f"(full collections {gc_of.get('handler gen2', 0):.0f} s), in the floor "
          f"{sum(v for k, v in gc_of.items() if k.startswith('floor ')):.0f} s")
    print(f"floor (a thread beside the pipeline, paced by its rendering): {n / base['wall_seconds']:.1f} letters/s, "
          f"{base['cpu_seconds'] / n * 1000:.2f} ms CPU per letter ({base['cpu_seconds']:.0f} s, of which rendering "
          f"{base['render_cpu_seconds']:.0f} s for {base['pdfs']} PDFs)")
    print(f"counts for the cost model: {args.out / 'load-counts.json'}")
    print(f"ratio pipeline/floor: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

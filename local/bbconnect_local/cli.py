"""`bbconnect`: run batch files through the whole pipeline on this machine (moto + the Logius
simulator). `bbconnect demo` runs the sample municipal tax run; `bbconnect run FILE --tenant T`
runs any batch file for any tenant configuration.

A run takes as long as it takes (no fixed timeout): on a terminal a progress bar shows the letters
that have reached their final state; piped, it prints only the result. However a run ends (done,
failed, or stopped with Ctrl-C), it leaves the state snapshot in `OUT/state`; a run that did not
complete also leaves `report.json` and `report.csv` marked partial, with each row's status so far."""
from __future__ import annotations

import base64
import io
import json
import logging
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bbconnect_local.environment import REPO_ROOT, LocalEnvironment, simulator_config_from_file
from bbconnect_local.ops import ops_app
from bbconnect_local.snapshot import save_snapshot

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(ops_app, name="ops")
console = Console(file=sys.__stdout__)

# The file's GLOBE batches in their steps at once, locally: this machine's two cores gain nothing from
# more (each would be a rendering thread of one interpreter), and each holds a batch's letters.
LOCAL_CHUNK_CONCURRENCY = 2

DEMO_FILE = REPO_ROOT / "events" / "batches" / "gemeente-lv" / "aanslagen-2027.jsonl"
DEMO_TENANT = "gemeente-lv"
DEMO_SIMULATOR = REPO_ROOT / "events" / "simulator" / "demo.json"
CONFIG_DIR = REPO_ROOT / "config" / "tenants"


class RunFailed(Exception):
    pass


@app.command()
def demo(out: Path = typer.Option(REPO_ROOT / "out" / "demo", "--out", help="Where the report, PDFs and paper list go."),
         letters: int | None = typer.Option(None, "--letters", min=1, max=100_000,
                                            help="Generate a tax run of N letters instead of the 205-row sample."),
         faults: float = typer.Option(0.0, "--faults", min=0.0, max=1.0,
                                      help="Share of simulator calls that misbehave, spread over the fault kinds."),
         bulk: bool = typer.Option(False, "--bulk", help="Fetch the bulk subscription list first (GLOBE-R-A-Request)."),
         chunk_size: int = typer.Option(50, help="Letters per GLOBE batch (at most 1000); small here to show several."),
         chunk_concurrency: int = typer.Option(LOCAL_CHUNK_CONCURRENCY, "--chunk-concurrency", min=1, max=10,
                                               help="GLOBE batches in their steps at once (ChunkConcurrency).")) -> None:
    """Run the sample municipal tax run (205 rows, a few bad ones) end to end, or a generated one."""
    if letters is None:
        _run(DEMO_FILE, DEMO_TENANT, out, CONFIG_DIR, DEMO_SIMULATOR, chunk_size, faults=faults, bulk=bulk,
             chunk_concurrency=chunk_concurrency)
        return
    from bbconnect_local.demo_batch import write_tax_run

    out.mkdir(parents=True, exist_ok=True)
    batch = out / f"tax-run-{letters}.jsonl"
    settings = write_tax_run(batch, letters)
    simulator = out / "simulator-settings.json"
    simulator.write_text(json.dumps(settings), encoding="utf-8")
    _run(batch, DEMO_TENANT, out, CONFIG_DIR, simulator, max(chunk_size, min(1000, letters // 5 or 1)), faults=faults, bulk=bulk,
         chunk_concurrency=chunk_concurrency)


@app.command()
def run(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="A batch file (.jsonl, .ndjson or .csv)."),
        tenant: str = typer.Option(..., "--tenant", help="The tenant id: its configuration is <config-dir>/<tenant>.json."),
        out: Path = typer.Option(..., "--out", help="Where the report, PDFs and paper list go."),
        config_dir: Path = typer.Option(CONFIG_DIR, "--config-dir", exists=True, file_okay=False),
        simulator: Path | None = typer.Option(None, "--simulator", exists=True, dir_okay=False,
                                              help="Simulator settings: which BSNs have a Berichtenbox, result codes."),
        chunk_size: int = typer.Option(1000, help="Letters per GLOBE batch (at most 1000)."),
        faults: float = typer.Option(0.0, "--faults", min=0.0, max=1.0,
                                     help="Share of simulator calls that misbehave, spread over the fault kinds."),
        bulk: bool = typer.Option(False, "--bulk", help="Fetch the bulk subscription list first (GLOBE-R-A-Request)."),
        attachment: list[Path] = typer.Option([], "--attachment", exists=True, dir_okay=False,
                                              help="A PDF the batch file's rows name in `attachments`."),
        chunk_concurrency: int = typer.Option(LOCAL_CHUNK_CONCURRENCY, "--chunk-concurrency", min=1, max=10,
                                              help="GLOBE batches in their steps at once (ChunkConcurrency).")) -> None:
    """Run one batch file for one tenant through the local pipeline."""
    if not (config_dir / f"{tenant}.json").is_file():
        console.print(f"[red]no configuration for tenant {tenant!r} in {config_dir}[/red]")
        raise typer.Exit(2)
    _run(file, tenant, out, config_dir, simulator, chunk_size, attachment, faults=faults, bulk=bulk,
         chunk_concurrency=chunk_concurrency)


def _run(file: Path, tenant: str, out: Path, config_dir: Path, simulator: Path | None, chunk_size: int,
         attachments: list[Path] = (), *, faults: float = 0.0, bulk: bool = False,
         chunk_concurrency: int = LOCAL_CHUNK_CONCURRENCY) -> None:
    if not 1 <= chunk_size <= 1000:
        console.print("[red]--chunk-size must be between 1 and 1000 (a GLOBE batch holds at most 1000 letters)[/red]")
        raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "report.csv"):  # a report left by an earlier run must not pass for this one's
        (out / stale).unlink(missing_ok=True)
    log_path = out / "logs.jsonl"
    real_stdout = sys.stdout
    progress = RunProgress(console)
    try:
        with open(log_path, "w", encoding="utf-8") as log_file:
            sys.stdout = log_file  # the handlers' JSON logs and EMF metrics go to the log file
            _log_to(log_file)
            progress.phase("starting moto, the Logius simulator and the inbound endpoint")
            simulator_config = simulator_config_from_file(simulator)
            if faults:
                simulator_config = simulator_config.with_fault_rate(faults)
            simulator_config.keep_payloads = False  # the simulator forgets a batch's letters once judged
            with LocalEnvironment(config_dir=config_dir, simulator=simulator_config, chunk_size=chunk_size,
                                  parameter_overrides={"ChunkConcurrency": chunk_concurrency}) as env:
                key = None
                try:
                    if bulk:
                        progress.phase("fetching the bulk subscription lists (GLOBE-R-A-Request)")
                        for asked in env.refresh_subscriptions(tenant):
                            progress.say(f"bulk subscription list for {asked['sender_oin']}: {asked['kind']}, {asked['state']}")
                    key = env.drop(file, tenant, attachments=list(attachments))
                    progress.say(f"dropped {file.name} as s3://{env.outputs['InboxBucketName']}/{key}")
                    progress.follow(env)
                    batch = env.wait_for_execution(key, timeout=None, on_progress=progress.update)
                    progress.stop()
                    if batch.status != "SUCCEEDED":
                        raise RunFailed(f"the batch execution ended {batch.status}; see {log_path}"
                                        + "".join(f"\n  {violation}" for violation in env.deployment.violations))
                    _export(env, batch.output, out)
                    env.simulator.wait_idle(timeout=30)
                except BaseException as error:
                    progress.stop()
                    why = "stopped (Ctrl-C)" if isinstance(error, KeyboardInterrupt) else f"did not complete: {error}"
                    _leave_partial(env, out, key, progress.batch_id, why, config_dir)
                    raise
                save_snapshot(env.outputs, out, config_dir=config_dir)
                deliveries = env.simulator.delivery_log_json()
                (out / "simulator-deliveries.json").write_text(json.dumps(deliveries, indent=1, default=str), encoding="utf-8")
                faults_seen = dict(getattr(env.simulator, "fault_counts", {}) or {})
                errors = list(env.deployment.handler_errors)
                refused = [str(violation) for violation in env.deployment.violations]
                # one pass over the delivery log (asking the simulator per BerichtID is quadratic: an
                # hour at 100,000 letters)
                times = Counter(record.bericht_id.lower() for record in env.simulator.delivery_log)
                delivered_twice = [bericht_id for bericht_id, count in times.items() if count > 1]
    except KeyboardInterrupt:
        sys.stdout = real_stdout
        console.print(f"[yellow]stopped:[/yellow] the partial report and the state snapshot are in {out}")
        raise typer.Exit(130) from None
    except Exception as error:
        sys.stdout = real_stdout
        console.print(f"[red]run failed:[/red] {error}")
        console.print(f"the partial report and the state snapshot are in {out}")
        raise typer.Exit(1) from error
    finally:
        sys.stdout = real_stdout
        progress.stop()
    _summarise(batch.output, out, errors, delivered_twice, deliveries, faults_seen, refused)


def _leave_partial(env: LocalEnvironment, out: Path, key: str | None, batch_id: str | None, why: str, config_dir: Path) -> None:
    """What a run that did not complete leaves: the state snapshot, and a report marked partial with
    each row's status so far (final or not). Best effort: a failure here is logged, not raised."""
    try:
        save_snapshot(env.outputs, out, config_dir=config_dir)
    except Exception as error:
        logging.getLogger(__name__).warning("state snapshot not saved: %s", error)
    try:
        for attempt in range(5):  # moto's table may change under the scan while the run winds down
            try:
                letters = [letter for letter in env.letters() if batch_id is None or letter.get("batch_id") == batch_id]
                break
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.5)
        report = partial_report(letters, batch_id=batch_id, file=key, why=why)
        (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        from bbconnect.report import report_csv

        (out / "report.csv").write_bytes(report_csv(report["letters"]))
    except Exception as error:
        logging.getLogger(__name__).warning("partial report not written: %s", error)


def partial_report(letters: list[dict], *, batch_id: str | None, file: str | None, why: str) -> dict:
    """The report of a run that did not complete: every row known so far with its status (final or
    not), the counts per status, and `"partial": true` with why."""
    from bbconnect.status import FINAL, Status

    rows = sorted(({"line": letter.get("line"), "reference": letter.get("reference"), "status": letter.get("status"),
                    "reason": letter.get("reason")} for letter in letters), key=lambda row: int(row["line"] or 0))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    final = sum(count for status, count in counts.items() if status in {s.value for s in FINAL})
    return {"batch_id": batch_id, "file": file, "status": "partial", "partial": True,
            "why": f"this report is partial: the run {why}", "counts": dict(sorted(counts.items())),
            "final": final, "not_final": len(rows) - final,
            "note": f"rows still {', '.join(s.value for s in Status if s.value not in {f.value for f in FINAL})} "
                    "were not finished when the run ended", "letters": rows}


class RunProgress:
    """On a terminal: a rich progress bar of the letters in their final state (rejected rows count
    as final), with the run's phase; piped: nothing (`say` lines only, the result after)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.batch_id: str | None = None
        self._env = None
        self._bar = None
        self._task = None
        self._last = 0.0
        self._manifest: list[dict] | None = None
        self._source: dict | None = None
        self._settled: set[str] = set()

    @property
    def live(self) -> bool:
        return self.console.is_terminal

    def phase(self, text: str) -> None:
        if not self.live:
            return
        self._ensure_bar()
        self._bar.update(self._task, description=text)

    def say(self, text: str) -> None:
        (self._bar.console if self._bar is not None else self.console).print(text)

    def follow(self, env) -> None:
        self._env = env
        self.phase("waiting for the execution to start")

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _ensure_bar(self) -> None:
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console, transient=False)
            self._task = self._bar.add_task("starting", total=None)
            self._bar.start()

    def update(self, described: dict | None) -> None:
        if described is not None:
            self.batch_id = described.get("name")
        if not self.live or self._env is None or self.batch_id is None or time.monotonic() - self._last < 1:
            return
        self._last = time.monotonic()
        try:
            self._refresh()
        except Exception as error:  # a progress line is not worth stopping the run for
            logging.getLogger(__name__).debug("progress not refreshed: %s", error)

    def _refresh(self) -> None:
        from bbconnect.service import keys

        env, batch_id = self._env, self.batch_id
        if self._source is None:
            self._source = _work_json(env, keys.source(batch_id))
            if self._source is None:
                self.phase("ingest: reading and validating the file")
                return
            self._manifest = _work_json(env, keys.manifest(batch_id)) or []
        total = int(self._source.get("received") or 0)
        chunks = {item["index"]: item for item in self._manifest}
        for key in env.work_keys(f"{keys.batch_prefix(batch_id)}/chunks/"):
            if key.endswith("/outcome.json"):
                self._settled.add(key)
        done = sum(int(chunks.get(int(key.split("/")[-2]), {}).get("letters", 0)) for key in self._settled)
        finished = len(self._settled)
        described = (f"GLOBE batches {finished}/{len(chunks)} done" if finished < len(chunks)
                     else "finalizing: report, print jobs")
        self._bar.update(self._task, total=total or None, completed=int(self._source.get("rejected") or 0) + done,
                         description=described)


def _work_json(env, key: str) -> dict | list | None:
    try:
        return json.loads(env.work_object(key))
    except Exception:
        return None


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"level": record.levelname, "logger": record.name, "message": record.getMessage()})


def _log_to(stream) -> None:
    """moto's and Python's warnings go to the log file too, not over the progress display."""
    logging.captureWarnings(True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def _export(env: LocalEnvironment, output: dict, out: Path) -> None:
    if output.get("status") == "bad_file":
        report = json.loads(env.outbox_object(output["report"]))
        (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        return
    prefix = output["report"].rsplit("/", 1)[0]
    for key in env.outbox_keys(prefix + "/"):
        (out / key.rsplit("/", 1)[-1]).write_bytes(env.outbox_object(key))
    report = json.loads((out / "report.json").read_bytes())
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    paper_dir, digital_dir = out / "pdf" / "paper", out / "pdf" / "digital"
    for folder in (paper_dir, digital_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.pdf"):
            old.unlink()
    tenant, batch_id = report["tenant"], report["batch_id"]
    print_dir = out / "print"
    print_dir.mkdir(exist_ok=True)
    for job in report.get("print_jobs", []):
        for suffix in (".pdf", "-manifest.csv"):
            key = f"{tenant}/print/{job['name']}{suffix}"
            if env.outbox_keys(key):
                (print_dir / f"{job['name']}{suffix}").write_bytes(env.outbox_object(key))
    proofs = out / "proofs"
    proofs.mkdir(exist_ok=True)
    for globe_id in {letter.get("globe_batch_id") for letter in report["letters"] if letter.get("globe_batch_id")}:
        key = f"{tenant}/proofs/proof-{globe_id}.xml"
        if env.outbox_keys(key):
            (proofs / f"proof-{globe_id}.xml").write_bytes(env.outbox_object(key))
    for key in env.outbox_keys(f"{tenant}/paper/{batch_id}/"):
        with zipfile.ZipFile(io.BytesIO(env.outbox_object(key))) as bundle:
            for name in bundle.namelist():
                (paper_dir / Path(name).name).write_bytes(bundle.read(name))
    _export_digital(env, report, digital_dir)


def _export_digital(env: LocalEnvironment, report: dict, folder: Path) -> None:
    """The PDFs as they went to Logius, taken from the GLOBE batches themselves."""
    import boto3

    from bbconnect.chunking import MAX_GLOBE_BATCH_BYTES
    from bbconnect.xmlsafe import parse_xml

    reference_of = {letter.get("bericht_id"): letter["reference"] for letter in report["letters"] if letter.get("bericht_id")}
    bucket = env.outputs["WorkBucketName"]
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"batches/{report['batch_id']}/chunks/")
    for item in (item for page in pages for item in page.get("Contents", [])):
        if not item["Key"].endswith("berichten.xml"):
            continue
        root = parse_xml(env.work_object(item["Key"]), max_bytes=MAX_GLOBE_BATCH_BYTES * 2)
        for bericht in root.iter("{*}Bericht"):
            bericht_id = next(bericht.iter("{*}BerichtID")).text
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in reference_of.get(bericht_id, bericht_id))
            for number, content in enumerate(bericht.iter("{*}Inhoud"), 1):
                suffix = "" if number == 1 else f"-attachment-{number - 1}"
                (folder / f"{name}{suffix}.pdf").write_bytes(base64.b64decode(content.text))


def _summarise(output: dict, out: Path, errors: list[str], delivered_twice: list[str], deliveries: list[dict],
               faults_seen: dict[str, int], refused: list[str] = ()) -> None:
    if refused:
        # What AWS would have refused (a function's role, a limit): this run does not show that it works there.
        console.print(f"[red]{len(refused)} calls AWS would refuse:[/red]")
        for line in refused[:20]:
            console.print(f"  {line}")
        raise typer.Exit(1)
    if output.get("status") == "bad_file":
        console.print(f"[yellow]the file was not taken:[/yellow] {output.get('error')}")
        console.print(f"error report: {out / 'report.json'}")
        return
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    counts = report["counts"]
    table = Table(title=f"batch {report['batch_id']}")
    for column in ("received", "rejected", "delivered", "paper", "failed"):
        table.add_column(column, justify="right")
    table.add_row(*(str(counts[c]) for c in ("received", "rejected", "delivered", "paper", "failed")))
    console.print(table)
    reasons: dict[str, int] = {}
    for letter in report["letters"]:
        if letter["status"] in ("REJECTED", "FAILED"):
            reasons[f"{letter['status']}: {letter['reason']}"] = reasons.get(f"{letter['status']}: {letter['reason']}", 0) + 1
    for reason, count in sorted(reasons.items()):
        console.print(f"  {count} x {reason}")
    delivered_by_logius = len({d["bericht_id"] for d in deliveries})
    console.print(f"every row accounted for: {'yes' if report['accounted'] else '[red]NO[/red]'}; "
                  f"letters delivered twice by Logius: {len(delivered_twice)}; "
                  f"delivered per Logius' log: {delivered_by_logius}, per the report: {counts['delivered']}")
    if faults_seen:
        console.print("simulator faults: " + ", ".join(f"{kind} {n}" for kind, n in sorted(faults_seen.items()) if n))
    console.print(f"report: {out / 'report.json'} (and report.csv, history.jsonl); PDFs: {out / 'pdf'}; "
                  f"print jobs: {out / 'print'}; proofs of dispatch: {out / 'proofs'}; logs: {out / 'logs.jsonl'}")
    console.print(f"inspect it: bbconnect ops --local {out} batches")
    if errors:
        console.print(f"[yellow]{len(errors)} handler errors were retried; see the log[/yellow]")
    if not report["accounted"] or delivered_twice or delivered_by_logius != counts["delivered"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

"""`bbconnect`: run batch files through the whole pipeline on this machine (moto + the Logius
simulator). `bbconnect demo` runs the sample municipal tax run; `bbconnect run FILE --tenant T`
runs any batch file for any tenant configuration."""
from __future__ import annotations

import base64
import io
import json
import logging
import sys
import time
import zipfile
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

DEMO_FILE = REPO_ROOT / "events" / "batches" / "gemeente-lv" / "aanslagen-2027.jsonl"
DEMO_TENANT = "gemeente-lv"
DEMO_SIMULATOR = REPO_ROOT / "events" / "simulator" / "demo.json"
CONFIG_DIR = REPO_ROOT / "config" / "tenants"


class RunFailed(Exception):
    pass


@app.command()
def demo(out: Path = typer.Option(REPO_ROOT / "out" / "demo", "--out", help="Where the report, PDFs and paper list go."),
         letters: int | None = typer.Option(None, "--letters", min=1, max=9000,
                                            help="Generate a tax run of N letters instead of the 205-row sample."),
         faults: float = typer.Option(0.0, "--faults", min=0.0, max=1.0,
                                      help="Share of simulator calls that misbehave, spread over the fault kinds."),
         bulk: bool = typer.Option(False, "--bulk", help="Fetch the bulk subscription list first (GLOBE-R-A-Request)."),
         chunk_size: int = typer.Option(50, help="Letters per GLOBE batch (at most 1000); small here to show several.")) -> None:
    """Run the sample municipal tax run (205 rows, a few bad ones) end to end, or a generated one."""
    if letters is None:
        _run(DEMO_FILE, DEMO_TENANT, out, CONFIG_DIR, DEMO_SIMULATOR, chunk_size, faults=faults, bulk=bulk)
        return
    from bbconnect_local.demo_batch import write_tax_run

    out.mkdir(parents=True, exist_ok=True)
    batch = out / f"tax-run-{letters}.jsonl"
    settings = write_tax_run(batch, letters)
    simulator = out / "simulator-settings.json"
    simulator.write_text(json.dumps(settings), encoding="utf-8")
    _run(batch, DEMO_TENANT, out, CONFIG_DIR, simulator, max(chunk_size, min(1000, letters // 5 or 1)), faults=faults, bulk=bulk)


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
                                              help="A PDF the batch file's rows name in `attachments`.")) -> None:
    """Run one batch file for one tenant through the local pipeline."""
    if not (config_dir / f"{tenant}.json").is_file():
        console.print(f"[red]no configuration for tenant {tenant!r} in {config_dir}[/red]")
        raise typer.Exit(2)
    _run(file, tenant, out, config_dir, simulator, chunk_size, attachment, faults=faults, bulk=bulk)


def _run(file: Path, tenant: str, out: Path, config_dir: Path, simulator: Path | None, chunk_size: int,
         attachments: list[Path] = (), *, faults: float = 0.0, bulk: bool = False) -> None:
    if not 1 <= chunk_size <= 1000:
        console.print("[red]--chunk-size must be between 1 and 1000 (a GLOBE batch holds at most 1000 letters)[/red]")
        raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "logs.jsonl"
    real_stdout = sys.stdout
    try:
        with open(log_path, "w", encoding="utf-8") as log_file:
            sys.stdout = log_file  # the handlers' JSON logs and EMF metrics go to the log file
            _log_to(log_file)
            with console.status("starting moto, the Logius simulator and the inbound endpoint") as status:
                simulator_config = simulator_config_from_file(simulator)
                if faults:
                    simulator_config = simulator_config.with_fault_rate(faults)
                with LocalEnvironment(config_dir=config_dir, simulator=simulator_config, chunk_size=chunk_size) as env:
                    if bulk:
                        status.update("fetching the bulk subscription lists (GLOBE-R-A-Request)")
                        for asked in env.refresh_subscriptions(tenant):
                            console.print(f"bulk subscription list for {asked['sender_oin']}: {asked['kind']}, {asked['state']}")
                    key = env.drop(file, tenant, attachments=list(attachments))
                    console.print(f"dropped [bold]{file.name}[/bold] as s3://{env.outputs['InboxBucketName']}/{key}")

                    last = [0.0]

                    def progress(described):
                        if time.monotonic() - last[0] < 2:
                            return
                        last[0] = time.monotonic()
                        try:
                            counts = env.letter_statuses()
                        except RuntimeError:  # moto's table changed under the scan: try next time
                            return
                        status.update("batch running - letters: " + (", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())) or "waiting for ingest"))

                    batch = env.wait_for_execution(key, timeout=900, on_progress=progress)
                    if batch.status != "SUCCEEDED":
                        save_snapshot(env.outputs, out, config_dir=config_dir)  # a failed run can be inspected too
                        raise RunFailed(f"the batch execution ended {batch.status}; see {log_path}"
                                        + "".join(f"\n  {violation}" for violation in env.deployment.violations))
                    _export(env, batch.output, out)
                    env.simulator.wait_idle(timeout=30)
                    save_snapshot(env.outputs, out, config_dir=config_dir)
                    deliveries = env.simulator.delivery_log_json()
                    (out / "simulator-deliveries.json").write_text(json.dumps(deliveries, indent=1, default=str), encoding="utf-8")
                    faults_seen = dict(getattr(env.simulator, "fault_counts", {}) or {})
                    errors = list(env.deployment.handler_errors)
                    refused = [str(violation) for violation in env.deployment.violations]
                    delivered_twice = [r for r in {d.bericht_id for d in env.simulator.delivery_log}
                                       if env.simulator.deliveries_of(r) > 1]
    except RunFailed as error:
        sys.stdout = real_stdout
        console.print(f"[red]run failed:[/red] {error}")
        raise typer.Exit(1)
    finally:
        sys.stdout = real_stdout
    _summarise(batch.output, out, errors, delivered_twice, deliveries, faults_seen, refused)


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

"""`bbconnect ops`: look after bbconnect as a service, on AWS (`--stack NAME`) or on the state a
local run left behind (`--local DIR`, the run's --out folder), e.g.
`bbconnect ops --local out/demo failed` or `bbconnect ops --stack bbconnect-prod batches`.

Exit codes: 0 done, 1 not found (or AWS said no), 2 wrong use. No BSN is ever shown: the tables
hold none, and every nine-digit number in what is shown is masked.
"""
from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bbconnect.masking import scrub

OK, NOT_FOUND, USAGE = 0, 1, 2
LOGIUS_TIMEZONE = ZoneInfo("Europe/Amsterdam")
NOT_YET_SENT = ("ACCEPTED", "ROUTED", "RENDERED")

ops_app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


class OpsError(Exception):
    def __init__(self, message: str, code: int = NOT_FOUND):
        super().__init__(message)
        self.code = code


# ============================================================================ the backends
@dataclass
class OpsBackend:
    """What the commands need of a bbconnect: its outputs and boto3 clients that reach it."""

    kind: str  # "aws" or "local"
    where: str  # for people: "stack X in eu-west-1", "the snapshot in DIR"
    outputs: dict[str, Any]
    region: str
    session: Any  # a boto3 Session
    directory: Path | None = None  # local: the run's folder (its snapshot is in state/)
    _clients: dict = field(default_factory=dict, repr=False)

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]

    def dynamodb(self):
        """The DynamoDB resource (items as Python values)."""
        if "dynamodb-resource" not in self._clients:
            self._clients["dynamodb-resource"] = self.session.resource("dynamodb", region_name=self.region)
        return self._clients["dynamodb-resource"]

    def table(self, output: str):
        return self.dynamodb().Table(self.output(output))

    def output(self, name: str) -> str:
        value = self.outputs.get(name)
        if not value:
            raise OpsError(f"{self.where} has no output {name!r}; is it a bbconnect stack?", USAGE)
        return value

    @property
    def letters(self):
        return self.table("LettersTableName")

    @property
    def batches(self):
        return self.table("BatchesTableName")

    @property
    def work_bucket(self) -> str:
        return self.output("WorkBucketName")

    @property
    def outbox_bucket(self) -> str:
        return self.output("OutboxBucketName")

    @property
    def state_machine_arn(self) -> str:
        return self.output("BatchStateMachineArn")

    def queues(self, which: str) -> tuple[str, str]:
        """(source queue URL, its dead-letter queue URL) for `intake` or `send`."""
        prefix = {"intake": "Intake", "send": "Send"}[which]
        return self.output(f"{prefix}QueueUrl"), self.output(f"{prefix}DeadLetterQueueUrl")

    @property
    def can_resend(self) -> bool:
        return self.kind == "aws"

    def config_folder(self) -> Path | None:
        """Locally: the tenant configurations the run saved with its snapshot."""
        if self.directory is None:
            return None
        folder = self.directory / "state" / "config"
        return folder if folder.is_dir() else None

    def persist(self) -> None:
        """After a change (redrive): a snapshot is written back, so the change outlives this command."""
        if self.kind != "local":
            return
        from bbconnect_local.snapshot import save_snapshot

        save_snapshot(self.outputs, self.directory, config_dir=self.config_folder(), include_source_queues=True,
                      region=self.region)


def aws_session(region: str | None):
    """The boto3 session for `--stack` (tests replace this to stub CloudFormation)."""
    import boto3

    return boto3.session.Session(region_name=region) if region else boto3.session.Session()


def aws_backend(stack: str, region: str | None) -> OpsBackend:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    session = aws_session(region)
    region = region or session.region_name
    if not region:
        raise OpsError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION", USAGE)
    try:
        stacks = session.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"]
    except NoCredentialsError:
        raise OpsError("no AWS credentials: set a profile (AWS_PROFILE) or credentials for the account of the stack", USAGE) from None
    except NoRegionError:
        raise OpsError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION", USAGE) from None
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        if "does not exist" in message:
            raise OpsError(f"no stack {stack!r} in {region}", NOT_FOUND) from None
        raise OpsError(f"CloudFormation refused describe_stacks for {stack!r}: {message}", NOT_FOUND) from None
    except BotoCoreError as error:
        raise OpsError(f"could not reach CloudFormation in {region}: {error}", NOT_FOUND) from None
    if not stacks:
        raise OpsError(f"no stack {stack!r} in {region}", NOT_FOUND)
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs") or []}
    if "LettersTableName" not in outputs or "BatchesTableName" not in outputs:
        raise OpsError(f"stack {stack!r} has no LettersTableName/BatchesTableName outputs: is it a bbconnect stack?", USAGE)
    return OpsBackend("aws", f"stack {stack} in {region}", outputs, region, session)


@contextmanager
def local_backend(directory: Path) -> Iterator[OpsBackend]:
    """A fresh moto mock in this process, filled from `DIR/state/`. Nothing runs in it: no handlers,
    no state machine, no queue pollers; it is for looking (and for moving dead letters)."""
    import boto3
    from moto import mock_aws
    from moto.core.models import MockAWS

    from bbconnect_local.snapshot import SnapshotError, has_snapshot, load_snapshot, snapshot_region, state_dir

    directory = Path(directory)
    if not has_snapshot(directory):
        raise OpsError(f"no local state in {state_dir(directory)}: `bbconnect run`/`bbconnect demo` write it to "
                       "<out>/state; pass that --out folder", USAGE)
    if getattr(MockAWS, "_nested_count", 0):
        raise OpsError("a moto mock is already running in this process (a local run?); "
                       "run `bbconnect ops --local` after it has finished", USAGE)
    mock = mock_aws()
    mock.start()
    try:
        try:
            outputs = load_snapshot(directory)
        except SnapshotError as error:
            raise OpsError(str(error), USAGE) from None
        region = snapshot_region(directory)
        yield OpsBackend("local", f"the local state in {state_dir(directory)}", outputs, region,
                         boto3.session.Session(region_name=region), directory=directory)
    finally:
        mock.stop()


@dataclass
class BackendChoice:
    stack: str | None
    region: str | None
    local: Path | None


@contextmanager
def _backend(ctx: typer.Context) -> Iterator[OpsBackend]:
    chosen = ctx.obj
    if isinstance(chosen, OpsBackend):  # injected (tests, or a caller that has one)
        yield chosen
        return
    if not isinstance(chosen, BackendChoice) or (chosen.stack is None) == (chosen.local is None):
        raise OpsError("give exactly one of --stack NAME (AWS) or --local DIR (a local run's output folder), "
                       "before the command: `bbconnect ops --local out/demo batches`", USAGE)
    if chosen.local is not None:
        with local_backend(chosen.local) as backend:
            yield backend
    else:
        yield aws_backend(chosen.stack, chosen.region)


@ops_app.callback()
def _choose(ctx: typer.Context,
            stack: str | None = typer.Option(None, "--stack", envvar="BBCONNECT_STACK",
                                             help="The CloudFormation stack of a deployed bbconnect."),
            region: str | None = typer.Option(None, "--region", help="The stack's region (default: from the AWS environment)."),
            local: Path | None = typer.Option(None, "--local", file_okay=False,
                                              help="The --out folder of a local run (`bbconnect run`/`demo`): "
                                                   "its state/ snapshot.")) -> None:
    """Operate bbconnect: batches, letters, failures, resends, dead letters, the volume forecast."""
    if isinstance(ctx.obj, OpsBackend):
        return
    ctx.obj = BackendChoice(stack, region, local)  # checked when a command runs, so `--help` works without


# ============================================================================ output helpers
def _console(stderr: bool = False) -> Console:
    """Rich output on the current stdout; wide when it is not a terminal, so IDs are never cut."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, highlight=False, soft_wrap=False, width=None if stream.isatty() else 1000)


def _error(message: str) -> None:
    _console(stderr=True).print(Text(scrub(message), style="red"))


def _t(value: Any) -> Text:
    """A table cell: None as '-', every nine-digit number masked, no rich markup interpreted."""
    if value is None or value == "":
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    return Text(scrub(str(value)))


def _num(value: Any) -> str:
    if value is None or value == "":
        return "-"
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return scrub(str(value))


def _command(function):
    """Run a command body with its backend; an OpsError becomes its message and exit code."""
    import functools

    @functools.wraps(function)
    def wrapper(ctx: typer.Context, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with _backend(ctx) as backend:
                code = function(ctx, backend, _console(), *args, **kwargs) or OK
        except OpsError as error:
            _error(str(error))
            raise typer.Exit(error.code) from None
        except ClientError as error:
            details = error.response.get("Error", {})
            _error(f"AWS refused {error.operation_name}: {details.get('Code')}: {details.get('Message')}")
            raise typer.Exit(NOT_FOUND) from None
        except BotoCoreError as error:
            _error(f"AWS could not be reached: {error}")
            raise typer.Exit(NOT_FOUND) from None
        if code:
            raise typer.Exit(code)

    # typer reads the signature: hide the backend and console parameters
    import inspect

    signature = inspect.signature(function)
    parameters = [p for name, p in signature.parameters.items() if name not in ("backend", "console")]
    wrapper.__signature__ = signature.replace(parameters=parameters)
    return wrapper


# ============================================================================ DynamoDB reading
def _scan(table, **kwargs) -> Iterator[dict]:
    while True:
        page = table.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _batch_file(backend: OpsBackend, batch_id: str) -> dict | None:
    return backend.batches.get_item(Key={"pk": f"file#{batch_id}"}, ConsistentRead=True).get("Item")


def _ledger(backend: OpsBackend):
    from bbconnect.adapters.letters import LetterRepository

    return LetterRepository(backend.letters, retention_days=0)  # read only: the retention is never used


def _letters_of_batch(backend: OpsBackend, batch_id: str) -> list[dict]:
    """The letters (and rejected rows) of a batch file, each as one record: its chunk records and
    rejected rows through the `by_batch` index, then the letters the chunks name."""
    return _ledger(backend).letters_of(batch_id)


def _all_letters(backend: OpsBackend) -> list[dict]:
    """Every letter in the table, each as one record (a scan: for `failed` and `forecast`)."""
    from bbconnect.ledger import compose_all

    return compose_all(_scan(backend.letters))


def _globe_batches(backend: OpsBackend, batch_id: str) -> list[dict]:
    """The GLOBE batches a batch file made, current and retired (a resend keeps the earlier record as
    `globe#<BatchID>#<generation>`). A scan: the batches table has no index on batch_id."""
    from boto3.dynamodb.conditions import Attr

    condition = Attr("pk").begins_with("globe#") & Attr("batch_id").eq(batch_id)
    return sorted(_scan(backend.batches, FilterExpression=condition),
                  key=lambda item: (int(item.get("chunk") or 0), item.get("created_at") or ""))


# ============================================================================ commands
@ops_app.command()
@_command
def batches(ctx: typer.Context, backend: OpsBackend, console: Console,
            tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's files."),
            limit: int = typer.Option(20, "--limit", min=1, help="How many of the most recent files.")) -> int:
    """The most recent batch files: id, tenant, file, status and counts."""
    from boto3.dynamodb.conditions import Attr

    condition = Attr("pk").begins_with("file#")
    if tenant:
        condition = condition & Attr("tenant").eq(tenant)
    files = sorted(_scan(backend.batches, FilterExpression=condition),
                   key=lambda item: item.get("updated_at") or "", reverse=True)
    if not files:
        console.print(Text(f"no batch files{f' for tenant {tenant}' if tenant else ''} in {backend.where}"))
        return OK
    table = Table(title=Text(f"batch files ({len(files[:limit])} of {len(files)}, newest first) - {backend.where}"))
    for column in ("batch id", "tenant", "file", "status", "received", "rejected", "delivered", "paper", "failed", "updated"):
        table.add_column(column, justify="right" if column in ("received", "rejected", "delivered", "paper", "failed") else "left",
                         overflow="fold")
    for item in files[:limit]:
        counts = item.get("counts") or {}
        status = item.get("status") or "-"
        if item.get("resend_of"):
            status = f"{status} (resend of {item['resend_of']})"
        table.add_row(_t(item["pk"].split("#", 1)[1]), _t(item.get("tenant")), _t(item.get("file")), _t(status),
                      _num(counts.get("received", item.get("received"))), _num(counts.get("rejected", item.get("rejected"))),
                      _num(counts.get("delivered")), _num(counts.get("paper")), _num(counts.get("failed")),
                      _t(item.get("updated_at")))
    console.print(table)
    return OK


@ops_app.command()
@_command
def batch(ctx: typer.Context, backend: OpsBackend, console: Console,
          batch_id: str = typer.Argument(..., help="The batch id (the execution name; see `ops batches`).")) -> int:
    """One batch file: its status and counts, its GLOBE batches with their ebMS state, and its letters now."""
    item = _batch_file(backend, batch_id)
    if item is None:
        raise OpsError(f"no batch file {batch_id!r} in {backend.where}", NOT_FOUND)
    counts = item.get("counts") or {}
    summary = Table(title="batch file", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value", overflow="fold")
    for label, value in (("batch id", batch_id), ("tenant", item.get("tenant")), ("file", item.get("file")), ("status", item.get("status")),
                         ("resend of", item.get("resend_of")), ("error", item.get("error")),
                         ("received", _num(counts.get("received", item.get("received")))),
                         ("accepted", _num(item.get("accepted"))),
                         ("rejected", _num(counts.get("rejected", item.get("rejected")))),
                         ("delivered", _num(counts.get("delivered"))), ("paper", _num(counts.get("paper"))),
                         ("failed", _num(counts.get("failed"))), ("chunks", _num(item.get("chunks"))),
                         ("GLOBE batches sent to Logius", _num(item.get("globe_batches"))),
                         ("chunks with nothing for Logius", _num(item.get("chunks_without_globe_batch"))),
                         ("finished", item.get("finished_at")), ("updated", item.get("updated_at"))):
        if value not in (None, "", "-") or label in ("status", "received"):
            summary.add_row(label, _t(value))
    console.print(summary)

    globes = _globe_batches(backend, batch_id)
    if globes:
        table = Table(title=Text(f"GLOBE batches of {batch_id}"))
        for column in ("GLOBE BatchID", "chunk", "connection", "letters", "ebMS state", "attempts", "MessageId",
                       "acknowledged", "result arrived", "problem"):
            table.add_column(column, overflow="fold")
        for globe in globes:
            pk = globe["pk"].split("#")
            name = pk[1] + (f" (earlier: {pk[2]})" if len(pk) > 2 else "")
            result = f"yes, {globe['result_at']}" if globe.get("result_key") else "no"
            problem = globe.get("reason") or globe.get("last_problem")
            # the letters in the GLOBE batch (its chunk's paper letters are not); the attempts of its
            # current message, and which message it is when an earlier one expired
            attempts = _num(globe.get("attempts")) + (f" (message {int(globe['generation'])})"
                                                      if int(globe.get("generation") or 1) > 1 else "")
            table.add_row(_t(name), _num(globe.get("chunk")), _t(globe.get("connection")),
                          _num(globe.get("globe_letters", globe.get("letters"))),
                          _t(globe.get("state")), _t(attempts), _t(globe.get("message_id")),
                          _t(globe.get("acknowledged_at")), _t(result), _t(problem))
        console.print(table)
    elif item.get("status") == "completed":
        console.print(Text("no GLOBE batches: no letter of this batch file was for the Berichtenbox, nothing was sent to Logius"))
    else:
        console.print(Text("no GLOBE batches (yet) for this batch file"))
    if globes and item.get("chunks_without_globe_batch"):
        console.print(Text(f"{item['chunks_without_globe_batch']} chunk(s) had no letter for the Berichtenbox: "
                           "nothing was sent to Logius for them"))

    letters = _letters_of_batch(backend, batch_id)
    if letters:
        now = Counter(letter.get("status", "?") for letter in letters)
        console.print(Text("letters now: " + ", ".join(f"{status} {count}" for status, count in sorted(now.items()))))
    return OK


@ops_app.command()
@_command
def letter(ctx: typer.Context, backend: OpsBackend, console: Console,
           tenant: str = typer.Option(..., "--tenant"), reference: str = typer.Option(..., "--reference")) -> int:
    """One letter: status, reason, route (and what decided it), BerichtID, GLOBE BatchID, its history."""
    item = _ledger(backend).get(tenant, reference)
    if item is None:
        raise OpsError(f"no letter {reference!r} of tenant {tenant!r} in {backend.where} (a rejected row is kept "
                       f"under its batch and line: `bbconnect ops failed --batch B --rejected`)", NOT_FOUND)
    summary = Table(title="letter", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value", overflow="fold")
    for label, value in (("tenant", tenant), ("reference", reference), ("status", item.get("status")),
                         ("reason", item.get("reason")), ("route", item.get("route")),
                         ("route source", item.get("route_source")), ("paper copy", item.get("paper_copy")),
                         ("BerichtID", item.get("bericht_id")), ("GLOBE BatchID", item.get("globe_batch_id")),
                         ("batch", item.get("batch_id")), ("line", _num(item.get("line"))), ("sender", item.get("sender")),
                         ("stream", item.get("stream")), ("updated", item.get("updated_at"))):
        summary.add_row(label, _t(value))
    console.print(summary)
    history = Table(title=Text("history"))
    for column in ("at", "status", "detail"):
        history.add_column(column, overflow="fold")
    for entry in item.get("history") or []:
        detail = "; ".join(str(part) for part in (entry.get("reason"), entry.get("detail")) if part)
        history.add_row(_t(entry.get("at")), _t(entry.get("status")), _t(detail))
    console.print(history)
    return OK


@ops_app.command()
@_command
def failed(ctx: typer.Context, backend: OpsBackend, console: Console,
           tenant: str | None = typer.Option(None, "--tenant"), batch_id: str | None = typer.Option(None, "--batch"),
           rejected: bool = typer.Option(False, "--rejected", help="Also the rows rejected at intake.")) -> int:
    """The letters that FAILED, with their reasons (by tenant and/or batch)."""
    wanted = {"FAILED", "REJECTED"} if rejected else {"FAILED"}
    if batch_id:
        if _batch_file(backend, batch_id) is None:
            raise OpsError(f"no batch file {batch_id!r} in {backend.where}", NOT_FOUND)
        items = [item for item in _letters_of_batch(backend, batch_id)
                 if item.get("status") in wanted and (not tenant or item.get("tenant") == tenant)]
    else:
        items = sorted((item for item in _all_letters(backend)
                        if item.get("status") in wanted and (not tenant or item.get("tenant") == tenant)),
                       key=lambda item: (item.get("batch_id") or "", int(item.get("line") or 0)))
    what = "failed or rejected letters" if rejected else "failed letters"
    scope = " ".join(part for part in (f"tenant {tenant}" if tenant else "", f"batch {batch_id}" if batch_id else "") if part)
    if not items:
        console.print(Text(f"no {what}{' for ' + scope if scope else ''} in {backend.where}"))
        return OK
    table = Table(title=Text(f"{len(items)} {what}{' - ' + scope if scope else ''}"))
    for column in ("tenant", "reference", "batch", "line", "status", "GLOBE BatchID", "reason", "since"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(_t(item.get("tenant")), _t(item.get("reference")), _t(item.get("batch_id")), _num(item.get("line")),
                      _t(item.get("status")), _t(item.get("globe_batch_id")), _t(item.get("reason")), _t(item.get("updated_at")))
    console.print(table)
    reasons = Counter(item.get("reason") or "-" for item in items)
    for reason, count in reasons.most_common():
        console.print(Text(f"  {count} x {scrub(str(reason))}"))
    return OK


@ops_app.command()
@_command
def resend(ctx: typer.Context, backend: OpsBackend, console: Console,
           tenant: str = typer.Option(..., "--tenant"), batch_id: str = typer.Option(..., "--batch"),
           references: list[str] = typer.Option([], "--reference",
                                                help="Only these letters (repeat); default: every FAILED letter of the batch.")) -> int:
    """Send the FAILED letters of a batch again (same BatchID and BerichtID), after the cause is fixed."""
    if not backend.can_resend:
        raise OpsError(
            "`bbconnect ops --local` can show a local run's state but not resend from it: a resend needs the "
            "running pipeline (its state machine and handlers), and a local pipeline lives only inside "
            "`bbconnect run`/`bbconnect demo`. Resend against a deployed stack with `bbconnect ops --stack NAME resend`.",
            USAGE)
    try:
        from bbconnect.service.resend import start_resend
    except ImportError as error:
        raise OpsError(f"this bbconnect has no resend yet (bbconnect.service.resend.start_resend: {error})", NOT_FOUND) from None
    item = _batch_file(backend, batch_id)
    if item is None:
        raise OpsError(f"no batch file {batch_id!r} in {backend.where}", NOT_FOUND)
    if item.get("tenant") != tenant:
        raise OpsError(f"batch {batch_id} belongs to tenant {item.get('tenant')!r}, not {tenant!r}", USAGE)
    if references:
        chosen = []
        for reference in dict.fromkeys(references):
            found = _ledger(backend).get(tenant, reference)
            if found is None:
                console.print(Text(f"skipped {reference}: no such letter", style="yellow"))
            elif found.get("status") != "FAILED":
                console.print(Text(f"skipped {reference}: it is {found.get('status')}, only FAILED letters are resent", style="yellow"))
            else:
                chosen.append(reference)
        if not chosen:
            raise OpsError("none of the letters named is FAILED: nothing to resend", NOT_FOUND)
        count = len(chosen)
    else:
        chosen = None
        count = sum(1 for letter in _letters_of_batch(backend, batch_id) if letter.get("status") == "FAILED")
        if not count:
            raise OpsError(f"batch {batch_id} has no FAILED letters (a letter resent before belongs to the resend's "
                           "batch id: see `bbconnect ops failed --tenant T`)", NOT_FOUND)
    name = start_resend(backend.client("stepfunctions"), backend.state_machine_arn, tenant=tenant, batch_id=batch_id,
                        references=chosen)
    console.print(Text(f"started resend {name}: {count} FAILED letter(s) of batch {batch_id} go out again with their "
                       f"BatchID and BerichtID; follow it with `bbconnect ops batch {name}`"))
    return OK


class QueueChoice(StrEnum):
    intake = "intake"
    send = "send"


@ops_app.command()
@_command
def redrive(ctx: typer.Context, backend: OpsBackend, console: Console,
            queue: QueueChoice = typer.Option(..., "--queue", help="Which dead-letter queue to empty back into its queue.")) -> int:
    """Move the messages of a dead-letter queue back to its source queue."""
    source, dead = backend.queues(queue.value)
    sqs = backend.client("sqs")
    if backend.kind == "aws":
        source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"])["Attributes"]
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
        if not waiting:
            console.print(Text(f"the {queue.value} dead-letter queue is empty: nothing to move"))
            return OK
        task = sqs.start_message_move_task(SourceArn=attributes["QueueArn"], DestinationArn=source_arn)
        console.print(Text(f"moving about {waiting} message(s) from the {queue.value} dead-letter queue back to the "
                           f"{queue.value} queue (task {task.get('TaskHandle', '?')}); follow it with "
                           f"`aws sqs list-message-move-tasks --source-arn {attributes['QueueArn']}`"))
        return OK
    moved = 0
    while True:
        messages = sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0,
                                       MessageAttributeNames=["All"]).get("Messages") or []
        if not messages:
            break
        for message in messages:
            kwargs: dict = {"QueueUrl": source, "MessageBody": message["Body"]}
            attributes = {name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
                          for name, value in (message.get("MessageAttributes") or {}).items()}
            if attributes:
                kwargs["MessageAttributes"] = attributes
            sqs.send_message(**kwargs)
            sqs.delete_message(QueueUrl=dead, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    if not moved:
        console.print(Text(f"the {queue.value} dead-letter queue is empty: nothing to move"))
        return OK
    backend.persist()
    console.print(Text(f"moved {moved} message(s) from the {queue.value} dead-letter queue back to the {queue.value} queue "
                       f"of {backend.where} (saved; no local pipeline is running, so nothing processes them now)"))
    return OK


# ============================================================================ forecast
@dataclass
class Forecast:
    today: date
    days: int
    waiting: dict[tuple[date, str], int] = field(default_factory=lambda: defaultdict(int))
    announced: dict[tuple[date, str], int] = field(default_factory=lambda: defaultdict(int))
    later: int = 0  # waiting letters to publish after the window
    notes: list[str] = field(default_factory=list)
    planned_runs_seen: bool = False

    @property
    def last_day(self) -> date:
        return self.today + timedelta(days=self.days)


def _publication_day(publish_at: str | None, today: date) -> date:
    if not publish_at:
        return today
    try:
        moment = datetime.fromisoformat(str(publish_at).replace("Z", "+00:00"))
    except ValueError:
        return today
    day = moment.astimezone(LOGIUS_TIMEZONE).date() if moment.tzinfo else moment.date()
    return max(day, today)


def _chunk_letters(backend: OpsBackend, batch_id: str) -> dict[str, tuple[str | None, str | None]]:
    """reference -> (connection, publish_at) from the batch's chunk files in the work bucket."""
    s3 = backend.client("s3")
    bucket = backend.work_bucket

    def read(key: str):
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    manifest = read(f"batches/{batch_id}/manifest.json")
    if manifest is not None:
        chunk_keys = [entry["key"] for entry in manifest]
    else:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"batches/{batch_id}/chunks/")
        chunk_keys = [item["Key"] for page in pages
                      for item in page.get("Contents", []) if item["Key"].endswith("/letters.json")]
    letters: dict[str, tuple[str | None, str | None]] = {}
    for key in chunk_keys:
        chunk = read(key) or {}
        for entry in chunk.get("letters") or []:
            letters[entry["reference"]] = (chunk.get("connection"), entry.get("publish_at"))
    return letters


def _tenant_configs(backend: OpsBackend, config_dir: Path | None) -> dict[str, dict]:
    """The raw tenant configurations: --config-dir, else the ones a local run saved, else the config bucket."""
    folder = config_dir or backend.config_folder()
    configs: dict[str, dict] = {}
    if folder is not None:
        for path in sorted(Path(folder).glob("*.json")):
            try:
                configs[path.stem] = json.loads(path.read_text(encoding="utf-8-sig"))
            except (ValueError, OSError):
                continue
        return configs
    bucket = backend.outputs.get("ConfigBucketName")
    if not bucket:
        return configs
    s3 = backend.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="tenants/"):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith(".json") and key.count("/") == 1:
                try:
                    configs[key[len("tenants/"):-5]] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                except ValueError:
                    continue
    return configs


def _config_without_planned_runs(tenant: str, raw: dict):
    """The TenantConfig of a raw configuration (its `planned_runs` are read from the raw document
    here, so an older model without the field still validates); (None, note) when it does not."""
    from bbconnect.tenants import TenantConfigError, load_tenant_config

    document = {k: v for k, v in raw.items() if k != "planned_runs"}
    try:
        return load_tenant_config(json.dumps(document).encode(), source=f"{tenant}.json"), None
    except TenantConfigError as error:
        return None, f"{tenant}: configuration invalid, planned runs not matched to a connection ({error})"


def _announced_connection(tenant: str, config, run: dict) -> tuple[str | None, str | None]:
    """(connection label, or None when the run goes on paper; a note when it is unclear)."""
    stream = config.streams.get(str(run.get("stream")))
    if stream is None:
        return f"{tenant}/?", f"{tenant}: planned run names unknown stream {run.get('stream')!r}"
    if stream.policy == "paper_only":
        return None, None
    senders = [run["sender"]] if run.get("sender") else (stream.senders or sorted(config.organisations))
    connections = sorted({c.id for c in (config.connection_for(s) for s in senders) if c is not None})
    if not connections:
        return None, None
    note = None
    if len(connections) > 1:
        note = (f"{tenant}: stream {stream.code} is sent over {', '.join(connections)}; its planned runs are counted on "
                f"{connections[0]} (give a `sender` in the planned run to choose)")
    return f"{tenant}/{connections[0]}", note


def compute_forecast(backend: OpsBackend, days: int, *, config_dir: Path | None = None, today: date | None = None) -> Forecast:
    """What Logius will get per connection and day: the letters waiting in bbconnect (accepted,
    routed or rendered; not on the paper route) on their publication day (today when they have
    none), plus the runs tenants announce in their configuration (`planned_runs`)."""
    forecast = Forecast(today or datetime.now(LOGIUS_TIMEZONE).date(), days)
    pending = [item for item in _all_letters(backend) if item.get("status") in NOT_YET_SENT and item.get("route") != "paper"]
    by_batch: dict[str, list[dict]] = defaultdict(list)
    for item in pending:
        by_batch[item.get("batch_id") or ""].append(item)
    for batch_id, items in by_batch.items():
        chunk_letters = _chunk_letters(backend, batch_id) if batch_id else {}
        for item in items:
            connection, publish_at = chunk_letters.get(item.get("reference"), ("?", None))
            if connection is None:  # a sender without a connection: paper only
                continue
            day = _publication_day(publish_at, forecast.today)
            if day > forecast.last_day:
                forecast.later += 1
                continue
            forecast.waiting[(day, f"{item.get('tenant')}/{connection}")] += 1
    for tenant, raw in sorted(_tenant_configs(backend, config_dir).items()):
        runs = raw.get("planned_runs") if isinstance(raw, dict) else None
        if not runs:
            continue
        forecast.planned_runs_seen = True
        config, note = _config_without_planned_runs(tenant, raw)
        if note:
            forecast.notes.append(note)
        for run in runs if isinstance(runs, list) else []:
            try:
                day = date.fromisoformat(str(run["date"])[:10])
                letters = int(run["letters"])
                if letters < 0:
                    raise ValueError
            except (KeyError, TypeError, ValueError):
                forecast.notes.append(f"{tenant}: a planned run is not {{stream, date, letters}}: {run!r}")
                continue
            if not forecast.today <= day <= forecast.last_day:
                continue
            connection, note = _announced_connection(tenant, config, run) if config else (f"{tenant}/?", None)
            if note and note not in forecast.notes:
                forecast.notes.append(note)
            if connection is not None:
                forecast.announced[(day, connection)] += letters
    return forecast


@ops_app.command()
@_command
def forecast(ctx: typer.Context, backend: OpsBackend, console: Console,
             days: int = typer.Option(14, "--days", min=0, max=60, help="How many days after today."),
             config_dir: Path | None = typer.Option(None, "--config-dir", file_okay=False, exists=True,
                                                    help="Read the tenants' planned runs here (default: the stack's "
                                                         "config bucket, or the configurations a local run saved).")) -> int:
    """The expected volume per Logius connection for today and the next days (the peak forecast Logius asks for)."""
    result = compute_forecast(backend, days, config_dir=config_dir)
    cells = sorted(set(result.waiting) | set(result.announced))
    if not cells:
        console.print(Text(f"no letters waiting and none announced from {result.today} to {result.last_day} in {backend.where}"))
    else:
        table = Table(title=Text(f"expected letters to Logius per connection, {result.today} to {result.last_day} (Europe/Amsterdam)"))
        for column in ("day", "connection", "waiting in bbconnect", "announced", "total"):
            table.add_column(column, justify="right" if column in ("waiting in bbconnect", "announced", "total") else "left")
        totals: dict[str, int] = defaultdict(int)
        peaks: dict[str, tuple[date, int]] = {}
        for day, connection in cells:
            waiting, announced = result.waiting.get((day, connection), 0), result.announced.get((day, connection), 0)
            total = waiting + announced
            table.add_row(_t(f"{day} {day:%a}"), _t(connection), str(waiting), str(announced), str(total))
            totals[connection] += total
            if total > peaks.get(connection, (day, -1))[1]:
                peaks[connection] = (day, total)
        console.print(table)
        peak_table = Table(title=Text("peak per connection"))
        for column in ("connection", "peak day", "letters that day", f"total over {result.days + 1} days"):
            peak_table.add_column(column)
        for connection in sorted(totals):
            day, count = peaks[connection]
            peak_table.add_row(_t(connection), _t(str(day)), str(count), str(totals[connection]))
        console.print(peak_table)
    if result.later:
        console.print(Text(f"{result.later} waiting letter(s) publish after {result.last_day}"))
    if result.planned_runs_seen:
        console.print(Text("announced volumes come from the tenants' `planned_runs`", style="dim"))
    for note in result.notes:
        console.print(Text(note, style="yellow"))
    return OK


from bbconnect_local import ops_events  # noqa: E402, F401  (registers `subscribe` and `replay`: the tenants' status events)

if __name__ == "__main__":
    ops_app()

"""The handlers' EMF metrics as CloudWatch gets them: the letter counts by stream (dimensions
service + stream) next to the service-only ones the alarms use, BatchesWithoutResult24h, and the
milliseconds of each call to Logius."""
from __future__ import annotations

import importlib.util
import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bbconnect import observability, runtime
from bbconnect.adapters import transport
from bbconnect.adapters.logius import LogiusConnection, LogiusUnavailable
from bbconnect.service import context as service_context
from bbconnect.service.context import Services
from bbconnect.service.contracts.sending import SendProgress
from bbconnect.service.records import GlobeRecord
from bbconnect.service.results import await_result
from bbconnect_local.deployment import LambdaContext

ENVIRONMENT = {
    "POWERTOOLS_METRICS_NAMESPACE": "bbconnect", "AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_TRACE_DISABLED": "true",
    "LETTERS_TABLE": "letters", "BATCHES_TABLE": "batches", "IDEMPOTENCY_TABLE": "idempotency", "INBOX_BUCKET": "inbox",
    "OUTBOX_BUCKET": "outbox", "WORK_BUCKET": "work", "LOGIUS_CA_BUNDLE": "file:/dev/null",
}


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for key, value in ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    service_context.reset()
    yield
    runtime.reset()
    service_context.reset()


@pytest.fixture
def load_handler(repo_root):
    """Import functions/<name>/app.py as its own module (every handler file is called app.py)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"bbconnect_test_metrics_{name}", repo_root / "functions" / name / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.metrics.clear_metrics()  # Powertools' Metrics share one metric set per process
        return module
    return load


def emf_lines(captured: str) -> list[dict]:
    """The EMF blobs among the handler's stdout lines (the logs are JSON too, without `_aws`)."""
    blobs = []
    for line in captured.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            blobs.append(blob)
    return blobs


def points(blobs: list[dict]) -> list[tuple[str, dict[str, str], float]]:
    """(metric name, its dimensions, value) for every value of every metric of every blob (EMF
    gives a metric one value or a list of them)."""
    found = []
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "bbconnect"
            for dimension_set in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    values = blob[metric["Name"]]
                    for value in values if isinstance(values, list) else [values]:
                        found.append((metric["Name"], {d: blob[d] for d in dimension_set}, value))
    return found


def _globe(globe_id: str, **fields) -> GlobeRecord:
    return GlobeRecord(globe_batch_id=globe_id, batch_id="b1", chunk=0, tenant="gemeente-lv", connection="lv-logius",
                       endpoint="https://globe.example/ebms", cpa_id="CPA-1", from_oin="00000001899410741000",
                       to_oin="00000004003214345001", **fields)


def _chunk_task(globe_id: str) -> dict:
    return {"batch_id": "b1", "chunk": {"index": 0, "key": "k", "globe_batch_id": globe_id}}


def _services(**fields) -> Services:
    values = dict.fromkeys(Services.__dataclass_fields__)
    values.update(fields)
    return Services(**values)


# ---------------------------------------------------------------------- fallback: delivered / paper / failed
def test_given_a_finished_chunk_when_fallback_reports_then_each_count_carries_the_chunks_stream(load_handler, monkeypatch, capsys):
    app = load_handler("fallback")
    monkeypatch.setattr(app, "services", lambda: _services())
    # Fallback reads the chunk's letters anyway: it says the chunk's stream, and the handler reads nothing for a label
    monkeypatch.setattr(app, "fallback", lambda event, services: {"counts": {"delivered": 7, "paper": 2, "failed": 1},
                                                                  "stream": "AANSLAG"})

    app.handler({"batch_id": "b1", "tenant": "gemeente-lv", "chunk": {"index": 0, "key": "work/chunk.json", "globe_batch_id": "g1"}},
                LambdaContext("fallback"))

    found = points(emf_lines(capsys.readouterr().out))
    by_stream = {(name, value) for name, dims, value in found if dims == {"service": "fallback", "stream": "AANSLAG"}}
    assert by_stream == {("LettersDelivered", 7), ("LettersPaper", 2), ("LettersFailed", 1)}
    service_only = {(name, value) for name, dims, value in found if dims == {"service": "fallback"}}
    assert service_only == {("LettersDelivered", 7), ("LettersPaper", 2), ("LettersFailed", 1)}, "the alarms' metrics stay as they were"


def test_given_a_chunk_whose_stream_cannot_be_read_when_fallback_reports_then_the_service_counts_still_go_out(load_handler, monkeypatch, capsys):
    app = load_handler("fallback")
    monkeypatch.setattr(app, "services", lambda: _services())
    # Fallback could not say the chunk's stream (its letters file was not read)
    monkeypatch.setattr(app, "fallback", lambda event, services: {"counts": {"delivered": 1, "paper": 0, "failed": 0}})

    result = app.handler({"batch_id": "b1", "chunk": {"index": 0, "key": "k", "globe_batch_id": "g1"}}, LambdaContext("fallback"))

    assert result == {"counts": {"delivered": 1, "paper": 0, "failed": 0}}
    found = points(emf_lines(capsys.readouterr().out))
    assert all("stream" not in dims for _name, dims, _value in found)
    assert ("LettersDelivered", {"service": "fallback"}, 1) in found


# ---------------------------------------------------------------------- ingest: received / rejected
def test_given_a_file_with_two_streams_when_ingest_reports_then_received_and_rejected_carry_the_stream(load_handler, monkeypatch, capsys):
    app = load_handler("ingest")
    monkeypatch.setattr(app, "services", lambda: _services())

    def fake_ingest(event, services):
        # as the real ingest: r1, r2 (AANSLAG) and r4 (WOZ) recorded; r3 (AANSLAG) used by an earlier file; line 5 invalid
        return {"status": "ok", "batch_id": "b1", "received": 5, "accepted": 3, "rejected": 2, "chunk_count": 2,
                "streams": {"AANSLAG": {"accepted": 2, "duplicates": 1}, "WOZ": {"accepted": 1, "duplicates": 0}}}

    monkeypatch.setattr(app, "ingest", fake_ingest)

    app.handler({"batch_id": "b1", "bucket": "inbox", "key": "gemeente-lv/file.jsonl"}, LambdaContext("ingest"))

    found = points(emf_lines(capsys.readouterr().out))
    by_stream = {(name, dims["stream"], value) for name, dims, value in found if "stream" in dims}
    assert all(dims["service"] == "ingest" for _n, dims, _v in found)
    assert by_stream == {
        ("LettersReceived", "AANSLAG", 3), ("LettersRejected", "AANSLAG", 1),
        ("LettersReceived", "WOZ", 1), ("LettersRejected", "WOZ", 0),
        ("LettersReceived", observability.UNATTRIBUTED_STREAM, 1), ("LettersRejected", observability.UNATTRIBUTED_STREAM, 1),
    }
    for name, total in (("LettersReceived", 5), ("LettersRejected", 2)):
        assert sum(v for n, _s, v in by_stream if n == name) == total, f"{name}: the streams add up to the file"
        assert (name, {"service": "ingest"}, total) in found


def test_given_ingest_streams_and_file_totals_when_split_by_stream_then_the_rest_is_unattributed_and_all_add_up():
    # Given 3 letters recorded and 1 duplicate over two streams, in a file of 6 rows with 2 rejected before their stream was known
    streams = {"AANSLAG": {"accepted": 2, "duplicates": 1}, "WOZ": {"accepted": 1, "duplicates": 0}}
    # When split by stream
    counts = observability.by_stream(streams, received=6, rejected=3)
    # Then each stream has its own, and the rows without a stream are counted apart
    assert counts == {"AANSLAG": {"received": 3, "rejected": 1}, "WOZ": {"received": 1, "rejected": 0},
                      observability.UNATTRIBUTED_STREAM: {"received": 2, "rejected": 2}}


# ---------------------------------------------------------------------- await-result: BatchesWithoutResult24h
@pytest.mark.parametrize(("status", "waited", "expected"), [
    ("waiting", 25 * 3600, 1), ("timed_out", 48 * 3600, 1), ("waiting", 3600, 0), ("arrived", 30 * 3600, 0),
])
def test_given_a_waiting_batch_when_its_result_is_checked_then_a_wait_over_24_hours_is_counted(
        load_handler, monkeypatch, capsys, status, waited, expected):
    app = load_handler("await_result")
    monkeypatch.setattr(app, "services", lambda: None)
    monkeypatch.setattr(app, "await_result", lambda event, services: {"status": status, "checked_at": "now", "waited_seconds": waited})

    result = app.handler({"batch_id": "b1", "chunk": {"index": 0, "key": "k", "globe_batch_id": "g1"}}, LambdaContext("await-result"))

    assert result["status"] == status
    found = points(emf_lines(capsys.readouterr().out))
    assert ("BatchesWithoutResult24h", {"service": "await-result"}, expected) in found


def test_given_an_acknowledged_batch_when_await_result_checks_then_it_says_how_long_it_has_waited():
    now = datetime(2027, 3, 2, 12, 0, tzinfo=UTC)
    records = {"g1": _globe("g1", acknowledged_at=(now - timedelta(hours=25)).isoformat()),
               "g2": _globe("g2", acknowledged_at=(now - timedelta(hours=30)).isoformat(), result_key="results/g2.xml")}
    services = _services(batches=SimpleNamespace(globe=records.get),
                         settings=SimpleNamespace(result_timeout_seconds=172800, result_poll_seconds=300))

    waiting = await_result(_chunk_task("g1"), services, now=now)
    arrived = await_result(_chunk_task("g2"), services, now=now)

    assert (waiting["status"], waiting["waited_seconds"]) == ("waiting", 25 * 3600)
    assert (arrived["status"], arrived["waited_seconds"]) == ("arrived", 30 * 3600)
    assert await_result(_chunk_task("unknown"), services, now=now)["waited_seconds"] == 0


# ---------------------------------------------------------------------- Logius latency
def _connection() -> LogiusConnection:
    connection = object.__new__(LogiusConnection)  # no TLS context: the transport is faked
    connection.connection = SimpleNamespace(endpoint="https://globe.example/ebms", wus_endpoint="https://globe.example/wus",
                                            logius_oin="00000004003214345001")
    connection._context, connection._timeout = None, 5
    return connection


def _slow_answer(*args, **kwargs):
    time.sleep(0.02)
    return transport.HttpAnswer(status=200, headers={}, body=b"")


def _metric_values(metrics, name: str) -> list[float]:
    metric = metrics.serialize_metric_set()
    value = metric.get(name, [])
    return value if isinstance(value, list) else [value]


def test_given_a_bound_handler_when_it_posts_ebms_then_each_post_adds_its_milliseconds(monkeypatch):
    metrics = observability.metrics_for("send")
    metrics.clear_metrics()
    monkeypatch.setattr(transport, "post", _slow_answer)
    connection = _connection()

    connection.post_ebms({"Content-Type": "text/xml"}, b"<x/>")  # not bound: not counted
    with observability.logius_latency(metrics):
        connection.post_ebms({"Content-Type": "text/xml"}, b"<x/>")
        connection.post_ebms({"Content-Type": "text/xml"}, b"<x/>")

    values = _metric_values(metrics, "LogiusEbmsLatency")
    metrics.clear_metrics()
    assert len(values) == 2 and all(value >= 20 for value in values)


def test_given_a_wus_call_that_fails_when_bound_then_its_time_to_fail_is_counted(monkeypatch):
    metrics = observability.metrics_for("check-subscriptions")
    metrics.clear_metrics()

    def unreachable(*args, **kwargs):
        time.sleep(0.01)
        raise transport.TransportError("connection refused")

    monkeypatch.setattr(transport, "post", unreachable)
    with observability.logius_latency(metrics), pytest.raises(LogiusUnavailable):
        _connection().validate_subscriptions("00000001234567890000", "AANSLAG", ["111222333"])

    values = _metric_values(metrics, "LogiusWusLatency")
    metrics.clear_metrics()
    assert len(values) == 1 and values[0] >= 10


def test_given_the_send_handler_when_a_message_posts_to_logius_then_the_latency_goes_out_with_service_send(
        load_handler, monkeypatch, capsys):
    app = load_handler("send")
    monkeypatch.setattr(transport, "post", _slow_answer)
    monkeypatch.setattr(app, "services", lambda: None)

    class PostingSender:
        def __init__(self, *args, **kwargs):
            pass

        def handle(self, request):
            _connection().post_ebms({"Content-Type": "text/xml"}, b"<x/>")
            return SendProgress(waiting_until="later")

    monkeypatch.setattr(app, "Sender", PostingSender)
    body = {"tenant": "t", "batch_id": "b1", "chunk": {"index": 0, "key": "k", "globe_batch_id": "g1"}}
    record = {"messageId": "m1", "receiptHandle": "h", "body": json.dumps(body),
              "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
              "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:send", "awsRegion": "eu-west-1"}

    answer = app.handler({"Records": [record]}, LambdaContext("send"))

    assert answer == {"batchItemFailures": []}
    found = points(emf_lines(capsys.readouterr().out))
    latencies = [value for name, dims, value in found if name == "LogiusEbmsLatency" and dims == {"service": "send"}]
    assert latencies and latencies[0] >= 20


def test_given_two_functions_in_one_process_when_one_flushes_then_the_other_keeps_its_own_metrics(capsys):
    # Given the local run's two functions in one process, each with a metric of its own
    from bbconnect.observability import metrics_for

    send, finalize = metrics_for("send"), metrics_for("finalize")
    send.add_metric(name="GlobeBatchesSent", unit="Count", value=1)
    finalize.add_metric(name="ChunksUnfinished", unit="Count", value=0)
    # When Send flushes
    send.flush_metrics()
    # Then only Send's metric went, labelled send, and Finalize still has (and flushes) its own, labelled finalize
    sent = emf_lines(capsys.readouterr().out)
    assert [(line["service"], "GlobeBatchesSent" in line, "ChunksUnfinished" in line) for line in sent] == [("send", True, False)]
    finalize.flush_metrics(raise_on_empty_metrics=True)
    flushed = emf_lines(capsys.readouterr().out)
    assert [(line["service"], "ChunksUnfinished" in line) for line in flushed] == [("finalize", True)]

"""Powertools Logger, Metrics and Tracer as every handler uses them: JSON logs with the batch id as
correlation id (`CHUNK_CORRELATION`, Powertools' `correlation_id_path`) and the tenant appended, EMF
metrics in the `bbconnect` namespace, X-Ray traces of the handlers, their AWS calls and their calls
to Logius (never with a response that holds letters: `capture_response=False`).

Besides a handler's own metrics (dimension `service` only), this module gives:
- `count_by_stream`: a count with dimensions `service` + `stream` (the berichttype code), as a
  separate EMF blob, so the `service`-only metric of the same name (and the alarms on it) stay as
  they are;
- `StreamTally`: counts per stream the letters ingest records, without changing what it does;
- `logius_latency`: while bound, every call to Logius (each ebMS POST, each WUS call) adds its
  duration in milliseconds to the handler's metrics (`LogiusEbmsLatency`, `LogiusWusLatency`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

STREAM_DIMENSION = "stream"
# The stream of a row rejected before it had a valid stream (ingest does not say which it was).
UNATTRIBUTED_STREAM = "unattributed"
# LogiusConnection method -> the latency metric each call of it adds.
LOGIUS_LATENCY_METRICS = {"post_ebms": "LogiusEbmsLatency", "validate_subscriptions": "LogiusWusLatency"}
# The correlation id of a state machine task: its batch id (a chunk's GLOBE BatchID when it has none).
CHUNK_CORRELATION = "batch_id || chunk.globe_batch_id"

# Powertools' Tracer keeps one configuration per process; the adapters trace their calls with it.
tracer = Tracer()


class BatchLogger(Logger):
    """Powertools' Logger whose per-invocation keys (the correlation id, the tenant, the chunk) are
    kept per thread: one Lambda runs one invocation at a time, but the local run calls several
    handlers at once in one process, and their log lines must not borrow each other's ids. Setting
    the correlation id (`inject_lambda_context(correlation_id_path=...)` does, first) starts the
    invocation's keys afresh."""

    def set_correlation_id(self, value: str | None) -> None:
        self.thread_safe_clear_keys()
        if value:
            self.thread_safe_append_keys(correlation_id=value)


def logger_for(service: str) -> BatchLogger:
    return BatchLogger(service=service)


def metrics_for(service: str) -> Metrics:
    """The function's Metrics, with a metric set of its own. Powertools' Metrics share one set per
    process: right on Lambda (one function a container), but the local run has every function in one
    process, where Send's flush took Finalize's metrics (labelled `service: send`) and left Finalize
    an empty set to flush ("Must contain at least one metric", the task failed)."""
    provider = AmazonCloudWatchEMFProvider(service=service, metric_set={}, dimension_set={}, metadata_set={},
                                           default_dimensions={})
    return Metrics(service=service, provider=provider)


def tracer_for(service: str) -> Tracer:
    return Tracer(service=service)


def append_chunk_keys(logger: Logger, *, tenant: str | None, chunk: int | None = None,
                      globe_batch_id: str | None = None) -> None:
    """The tenant (and the chunk) on this invocation's log lines. Never letter content or a BSN."""
    keys: dict[str, object] = {}
    if tenant:
        keys["tenant"] = tenant
    if chunk is not None:
        keys["chunk"] = chunk
        keys["globe_batch_id"] = globe_batch_id
    if keys:
        logger.thread_safe_append_keys(**keys)


# ---------------------------------------------------------------------- by stream
def count_by_stream(metrics: Metrics, name: str, value: int, stream: str) -> None:
    """Emit `name` with dimensions service + stream at once (its own EMF line)."""
    dimensions = {STREAM_DIMENSION: stream}
    if metrics.provider.service:
        dimensions = {"service": str(metrics.provider.service), **dimensions}
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=metrics.provider.namespace,
                       default_dimensions=dimensions):
        pass


def by_stream(streams: dict[str, dict[str, int]], received: int, rejected: int) -> dict[str, dict[str, int]]:
    """From Ingest's `streams` ({stream: {"accepted", "duplicates"}}: the letters it recorded and
    those whose reference an earlier file already used) to {stream: {"received", "rejected"}}; the
    rows rejected before their stream was known go to `UNATTRIBUTED_STREAM`, so the streams add up
    to the file's totals."""
    counts: dict[str, dict[str, int]] = {}
    for stream in sorted(streams):
        accepted, duplicates = streams[stream].get("accepted", 0), streams[stream].get("duplicates", 0)
        counts[stream] = {"received": accepted + duplicates, "rejected": duplicates}
    rest_received = received - sum(c["received"] for c in counts.values())
    rest_rejected = rejected - sum(c["rejected"] for c in counts.values())
    if rest_received > 0 or rest_rejected > 0:
        counts[UNATTRIBUTED_STREAM] = {"received": max(rest_received, 0), "rejected": max(rest_rejected, 0)}
    return counts


# ---------------------------------------------------------------------- Logius latency
_bound = threading.local()


def _emit_latency_metric(name: str, started: float) -> None:
    metrics = getattr(_bound, "metrics", None)
    if metrics is None:
        return
    try:
        metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=round((time.perf_counter() - started) * 1000, 1))
    except Exception as error:  # a metric must never fail the call it timed
        logging.getLogger(__name__).debug("latency metric %s not recorded: %s", name, type(error).__name__)


@contextmanager
def latency(metric_name: str) -> Iterator[None]:
    """Time one call to Logius into the metrics the current thread's handler bound (see
    `logius_latency`); without a bound handler nothing is recorded. A failure is timed too."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _emit_latency_metric(metric_name, started)


@contextmanager
def logius_latency(metrics: Metrics) -> Iterator[None]:
    """While inside, this thread's calls to Logius add their milliseconds to `metrics`."""
    previous = getattr(_bound, "metrics", None)
    _bound.metrics = metrics
    try:
        yield
    finally:
        _bound.metrics = previous

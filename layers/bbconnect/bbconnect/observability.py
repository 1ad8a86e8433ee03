"""Powertools Logger and Metrics as every handler uses them: JSON logs with the batch (or letter)
id as correlation id and the tenant appended, EMF metrics in the `bbconnect` namespace.

Besides a handler's own metrics (dimension `service` only), this module gives:
- `count_by_stream`: a count with dimensions `service` + `stream` (the berichttype code), as a
  separate EMF blob, so the `service`-only metric of the same name (and the alarms on it) stay as
  they are;
- `StreamTally`: counts per stream the letters ingest records, without changing what it does;
- `logius_latency`: while bound, every call to Logius (each ebMS POST, each WUS call) adds its
  duration in milliseconds to the handler's metrics (`LogiusEbmsLatency`, `LogiusWusLatency`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

STREAM_DIMENSION = "stream"
# The stream of a row rejected before it had a valid stream (ingest does not say which it was).
UNATTRIBUTED_STREAM = "unattributed"
# LogiusConnection method -> the latency metric each call of it adds.
LOGIUS_LATENCY_METRICS = {"post_ebms": "LogiusEbmsLatency", "validate_subscriptions": "LogiusWusLatency"}


def logger_for(service: str) -> Logger:
    return Logger(service=service)


def metrics_for(service: str) -> Metrics:
    return Metrics(service=service)


def correlate(logger: Logger, event: dict) -> None:
    """Correlation id = the batch id; tenant (and chunk) appended. Never letter content or a BSN.

    The keys are kept per thread: one Lambda runs one invocation at a time, but the local run calls
    several handlers at once in one process, and their log lines must not borrow each other's ids.
    """
    logger.thread_safe_clear_keys()
    keys: dict[str, object] = {}
    batch_id = event.get("batch_id") or (event.get("chunk") or {}).get("globe_batch_id")
    if batch_id:
        keys["correlation_id"] = batch_id
    if event.get("tenant"):
        keys["tenant"] = event["tenant"]
    chunk = event.get("chunk") or {}
    if "index" in chunk:
        keys["chunk"] = chunk["index"]
        keys["globe_batch_id"] = chunk.get("globe_batch_id")
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
    except Exception:
        pass


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

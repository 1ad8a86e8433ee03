"""Powertools Logger and Metrics as every handler uses them: JSON logs with the batch (or letter)
id as correlation id and the tenant appended, EMF metrics in the `bbconnect` namespace."""
from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics


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

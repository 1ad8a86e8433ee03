"""Powertools Logger and Metrics as every handler uses them: JSON logs with the batch (or letter)
id as correlation id and the tenant appended, EMF metrics in the `bbconnect` namespace."""
from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics


def logger_for(service: str) -> Logger:
    return Logger(service=service)


def metrics_for(service: str) -> Metrics:
    return Metrics(service=service)


def correlate(logger: Logger, event: dict) -> None:
    """Correlation id = the batch id; tenant appended. Never the letter content or a BSN."""
    batch_id = event.get("batch_id") or (event.get("chunk") or {}).get("globe_batch_id")
    if batch_id:
        logger.set_correlation_id(batch_id)
    if event.get("tenant"):
        logger.append_keys(tenant=event["tenant"])
    chunk = event.get("chunk") or {}
    if "index" in chunk:
        logger.append_keys(chunk=chunk["index"], globe_batch_id=chunk.get("globe_batch_id"))

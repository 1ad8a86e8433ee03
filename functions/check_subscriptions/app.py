"""Batch state machine task: check subscriptions."""
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect.observability import CHUNK_CORRELATION, append_chunk_keys, logger_for, logius_latency, metrics_for, tracer_for
from bbconnect.service.context import services
from bbconnect.service.contracts.chunk import ChunkTask
from bbconnect.service.subscriptions import check_subscriptions

logger = logger_for("check-subscriptions")
metrics = metrics_for("check-subscriptions")
tracer = tracer_for("check-subscriptions")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, correlation_id_path=CHUNK_CORRELATION)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ChunkTask.model_validate(event)
    append_chunk_keys(logger, tenant=task.tenant, chunk=task.chunk.index, globe_batch_id=task.chunk.globe_batch_id)
    with logius_latency(metrics):  # each WUS call: LogiusWusLatency
        result = check_subscriptions(event, services())
    # 1 each time a chunk must wait because the subscription check could not be made (WUS down, no
    # bulk list): SubscriptionCheckWaitingAlarm watches it.
    metrics.add_metric(name="SubscriptionChecksWaiting", unit=MetricUnit.Count, value=1 if result.get("waiting") else 0)
    if result.get("waiting"):
        logger.warning("subscription check unavailable; the chunk waits and asks again",
                       extra={"reason": result["reason"], "waits": result["waits"], "retry_seconds": result["retry_seconds"]})
    return result

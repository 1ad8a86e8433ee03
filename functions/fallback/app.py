"""Batch state machine task: final states for a chunk's letters, paper for those that need it."""
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect.observability import CHUNK_CORRELATION, append_chunk_keys, count_by_stream, logger_for, metrics_for, tracer_for
from bbconnect.service.context import services
from bbconnect.service.contracts.chunk import ChunkTask
from bbconnect.service.fallback import fallback

logger = logger_for("fallback")
metrics = metrics_for("fallback")
tracer = tracer_for("fallback")

LETTER_METRICS = {"delivered": "LettersDelivered", "paper": "LettersPaper", "failed": "LettersFailed"}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, correlation_id_path=CHUNK_CORRELATION)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ChunkTask.model_validate(event)
    append_chunk_keys(logger, tenant=task.tenant, chunk=task.chunk.index, globe_batch_id=task.chunk.globe_batch_id)
    result = fallback(event, services())
    stream = result.get("stream")  # the chunk's (one per chunk), as Fallback read it: nothing is read for a label
    for status, count in result["counts"].items():
        name = LETTER_METRICS.get(status) or f"Letters{status.capitalize()}"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
        if stream:
            count_by_stream(metrics, name, count, stream)
    logger.info("chunk finished", extra={"counts": result["counts"], "stream": stream})
    return result

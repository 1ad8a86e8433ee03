"""Batch state machine task: render."""
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect.observability import CHUNK_CORRELATION, append_chunk_keys, logger_for, metrics_for, tracer_for
from bbconnect.service.context import services
from bbconnect.service.contracts.chunk import ChunkTask
from bbconnect.service.render import render

logger = logger_for("render")
metrics = metrics_for("render")
tracer = tracer_for("render")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, correlation_id_path=CHUNK_CORRELATION)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ChunkTask.model_validate(event)
    append_chunk_keys(logger, tenant=task.tenant, chunk=task.chunk.index, globe_batch_id=task.chunk.globe_batch_id)
    return render(event, services())

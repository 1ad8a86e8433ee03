"""Batch state machine task: await result."""
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect.observability import CHUNK_CORRELATION, append_chunk_keys, logger_for, metrics_for, tracer_for
from bbconnect.service.context import services
from bbconnect.service.contracts.chunk import ChunkTask
from bbconnect.service.results import await_result

logger = logger_for("await-result")
metrics = metrics_for("await-result")
tracer = tracer_for("await-result")

OVERDUE_SECONDS = 24 * 3600


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, correlation_id_path=CHUNK_CORRELATION)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ChunkTask.model_validate(event)
    append_chunk_keys(logger, tenant=task.tenant, chunk=task.chunk.index, globe_batch_id=task.chunk.globe_batch_id)
    result = await_result(event, services())
    # 1 on each check of a batch that has waited more than 24 hours without its processing report,
    # else 0: the maximum over a period says whether any batch is overdue (an alarm watches it).
    overdue = result["status"] != "arrived" and result.get("waited_seconds", 0) > OVERDUE_SECONDS
    metrics.add_metric(name="BatchesWithoutResult24h", unit=MetricUnit.Count, value=1 if overdue else 0)
    if overdue:
        logger.warning("GLOBE batch without a processing report after 24 hours",
                       extra={"waited_seconds": result["waited_seconds"], "status": result["status"]})
    return result

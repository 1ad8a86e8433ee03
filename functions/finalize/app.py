"""Batch state machine task: finalize."""
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect.observability import append_chunk_keys, logger_for, metrics_for, tracer_for
from bbconnect.service.context import services
from bbconnect.service.finalize import finalize

logger = logger_for("finalize")
metrics = metrics_for("finalize")
tracer = tracer_for("finalize")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, correlation_id_path="batch_id")
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    append_chunk_keys(logger, tenant=event.get("tenant"))
    report = finalize(event, services())
    # A chunk whose child execution did not finish had its letters failed here: ChunkFailedAlarm.
    metrics.add_metric(name="ChunksUnfinished", unit=MetricUnit.Count, value=report.get("unfinished_chunks", 0))
    if report.get("unfinished_chunks"):
        logger.error("GLOBE batches did not finish; their letters are FAILED", extra={"chunks": report["unfinished_chunks"]})
    return report

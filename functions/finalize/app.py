"""Batch state machine task: finalize."""
from aws_lambda_powertools.metrics import MetricUnit

from bbconnect.observability import correlate, logger_for, metrics_for
from bbconnect.service.context import services
from bbconnect.service.finalize import finalize

logger = logger_for("finalize")
metrics = metrics_for("finalize")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, event)
    report = finalize(event, services())
    # A chunk whose child execution did not finish had its letters failed here: ChunkFailedAlarm.
    metrics.add_metric(name="ChunksUnfinished", unit=MetricUnit.Count, value=report.get("unfinished_chunks", 0))
    if report.get("unfinished_chunks"):
        logger.error("GLOBE batches did not finish; their letters are FAILED", extra={"chunks": report["unfinished_chunks"]})
    return report

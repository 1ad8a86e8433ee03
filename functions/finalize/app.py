"""Batch state machine task: finalize."""
from bbconnect.observability import correlate, logger_for, metrics_for
from bbconnect.service.finalize import finalize
from bbconnect.service.context import services

logger = logger_for("finalize")
metrics = metrics_for("finalize")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, event)
    return finalize(event, services())

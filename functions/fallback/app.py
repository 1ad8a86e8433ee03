"""Batch state machine task: final states for a chunk's letters, paper for those that need it."""
from aws_lambda_powertools.metrics import MetricUnit

from bbconnect.observability import correlate, logger_for, metrics_for
from bbconnect.service.context import services
from bbconnect.service.fallback import fallback

logger = logger_for("fallback")
metrics = metrics_for("fallback")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, event)
    result = fallback(event, services())
    for status, count in result["counts"].items():
        metrics.add_metric(name=f"Letters{status.capitalize()}", unit=MetricUnit.Count, value=count)
    logger.info("chunk finished", extra={"counts": result["counts"]})
    return result

"""Batch state machine task: await result."""
from bbconnect.observability import correlate, logger_for, metrics_for
from bbconnect.service.results import await_result
from bbconnect.service.context import services

logger = logger_for("await-result")
metrics = metrics_for("await-result")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, event)
    return await_result(event, services())

"""Batch state machine task: render."""
from bbconnect.observability import correlate, logger_for, metrics_for
from bbconnect.service.context import services
from bbconnect.service.render import render

logger = logger_for("render")
metrics = metrics_for("render")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, event)
    return render(event, services())

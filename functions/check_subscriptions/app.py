"""Batch state machine task: check subscriptions."""
from bbconnect.observability import correlate, logger_for, logius_latency, metrics_for
from bbconnect.service.subscriptions import check_subscriptions
from bbconnect.service.context import services

logger = logger_for("check-subscriptions")
metrics = metrics_for("check-subscriptions")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, event)
    with logius_latency(metrics):  # each WUS call: LogiusWusLatency
        return check_subscriptions(event, services())

"""Batch state machine task: check subscriptions."""
from aws_lambda_powertools.metrics import MetricUnit

from bbconnect.observability import correlate, logger_for, logius_latency, metrics_for
from bbconnect.service.context import services
from bbconnect.service.subscriptions import check_subscriptions

logger = logger_for("check-subscriptions")
metrics = metrics_for("check-subscriptions")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, event)
    with logius_latency(metrics):  # each WUS call: LogiusWusLatency
        result = check_subscriptions(event, services())
    # 1 each time a chunk must wait because the subscription check could not be made (WUS down, no
    # bulk list): SubscriptionCheckWaitingAlarm watches it.
    metrics.add_metric(name="SubscriptionChecksWaiting", unit=MetricUnit.Count, value=1 if result.get("waiting") else 0)
    if result.get("waiting"):
        logger.warning("subscription check unavailable; the chunk waits and asks again",
                       extra={"reason": result["reason"], "waits": result["waits"], "retry_seconds": result["retry_seconds"]})
    return result

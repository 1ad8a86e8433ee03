"""Daily: ask GLOBE for every digital sender's subscription list (GLOBE-R-A-Request)."""
from bbconnect.observability import logger_for, logius_latency, metrics_for
from bbconnect.service.context import services
from bbconnect.service.subscriptions import request_bulk_lists

logger = logger_for("refresh-subscriptions")
metrics = metrics_for("refresh-subscriptions")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    asked = []
    with logius_latency(metrics):  # each ebMS POST: LogiusEbmsLatency
        for tenant in services().configs.tenants():
            logger.append_keys(tenant=tenant)
            try:
                asked.extend(request_bulk_lists(services(), tenant))
            except Exception:  # one tenant's broken configuration must not stop the others
                logger.exception("could not ask for the subscription lists")
    logger.info("subscription lists requested", extra={"requests": asked})
    metrics.add_metric(name="BulkSubscriptionRequests", unit="Count", value=len(asked))
    return {"requests": asked}

"""Daily: ask GLOBE for every digital sender's subscription list (GLOBE-R-A-Request)."""
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect.observability import append_chunk_keys, logger_for, logius_latency, metrics_for, tracer_for
from bbconnect.service.context import services
from bbconnect.service.subscriptions import request_bulk_lists

logger = logger_for("refresh-subscriptions")
metrics = metrics_for("refresh-subscriptions")
tracer = tracer_for("refresh-subscriptions")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    asked: list[dict[str, Any]] = []
    with logius_latency(metrics):  # each ebMS POST: LogiusEbmsLatency
        for tenant in services().configs.tenants():
            logger.set_correlation_id(None)  # this tenant's keys only
            append_chunk_keys(logger, tenant=tenant)
            try:
                asked.extend(request_bulk_lists(services(), tenant))
            except Exception:  # one tenant's broken configuration must not stop the others
                logger.exception("could not ask for the subscription lists")
    logger.info("subscription lists requested", extra={"requests": asked})
    metrics.add_metric(name="BulkSubscriptionRequests", unit=MetricUnit.Count, value=len(asked))
    return {"requests": asked}

"""Batch state machine task: ingest and validate a dropped batch file."""
from aws_lambda_powertools.metrics import MetricUnit

from bbconnect.observability import by_stream, correlate, count_by_stream, logger_for, metrics_for
from bbconnect.service.context import services
from bbconnect.service.ingest import ingest

logger = logger_for("ingest")
metrics = metrics_for("ingest")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, {**event, "tenant": event.get("key", "").split("/", 1)[0]})
    result = ingest(event, services())
    if result["status"] == "bad_file":
        logger.warning("bad batch file reported to the tenant", extra={"error": result["error"]})
        metrics.add_metric(name="BadFiles", unit=MetricUnit.Count, value=1)
    else:
        logger.info("batch file ingested", extra={k: result[k] for k in ("received", "accepted", "rejected", "chunk_count")})
        metrics.add_metric(name="LettersReceived", unit=MetricUnit.Count, value=result["received"])
        metrics.add_metric(name="LettersRejected", unit=MetricUnit.Count, value=result["rejected"])
        for stream, counts in by_stream(result.get("streams") or {}, result["received"], result["rejected"]).items():
            count_by_stream(metrics, "LettersReceived", counts["received"], stream)
            count_by_stream(metrics, "LettersRejected", counts["rejected"], stream)
    return result

"""Batch state machine task: ingest and validate a dropped batch file."""
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect.ids import tenant_of_key
from bbconnect.observability import append_chunk_keys, by_stream, count_by_stream, logger_for, metrics_for, tracer_for
from bbconnect.service.context import services
from bbconnect.service.ingest import ingest

logger = logger_for("ingest")
metrics = metrics_for("ingest")
tracer = tracer_for("ingest")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, correlation_id_path="batch_id")
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    append_chunk_keys(logger, tenant=tenant_of_key(event.get("key", "")) or "")
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

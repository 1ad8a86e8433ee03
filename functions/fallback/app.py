"""Batch state machine task: final states for a chunk's letters, paper for those that need it."""
from aws_lambda_powertools.metrics import MetricUnit

from bbconnect.observability import correlate, count_by_stream, logger_for, metrics_for
from bbconnect.service.context import services
from bbconnect.service.fallback import fallback

logger = logger_for("fallback")
metrics = metrics_for("fallback")

LETTER_METRICS = {"delivered": "LettersDelivered", "paper": "LettersPaper", "failed": "LettersFailed"}


def _stream_of(event: dict) -> str | None:
    """The chunk's stream (one per chunk): for the by-stream counts only, so never fatal."""
    try:
        return services().work.get_json(event["chunk"]["key"]).get("stream")
    except Exception:
        logger.warning("chunk stream unknown: counted without a stream", exc_info=True)
        return None


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    correlate(logger, event)
    result = fallback(event, services())
    stream = result.get("stream") or _stream_of(event)
    for status, count in result["counts"].items():
        name = LETTER_METRICS.get(status) or f"Letters{status.capitalize()}"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
        if stream:
            count_by_stream(metrics, name, count, stream)
    logger.info("chunk finished", extra={"counts": result["counts"], "stream": stream})
    return result

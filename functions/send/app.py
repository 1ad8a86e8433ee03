"""Send queue -> deliver each GLOBE batch over ebMS2 reliably, then resume the waiting execution; and
deliver our asynchronous ebMS answers (Acknowledgments, MessageErrors) that the inbound endpoint
stored (`{"kind": "signal"}` jobs).

A message is either the first request from the state machine (with its task token) or a delayed
check this function scheduled itself. Each numbered attempt is idempotent on (ebMS MessageId,
attempt number): a redelivered SQS message does not post the same attempt twice, and a resend of
the same GLOBE batch (a new message) is not mistaken for an earlier one.
"""
import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect import runtime
from bbconnect.observability import append_chunk_keys, logger_for, logius_latency, metrics_for, tracer_for
from bbconnect.service.context import send_queue_schedule, services
from bbconnect.service.contracts.sending import SendOutcome, SendRequest
from bbconnect.service.send import Sender, post_attempt_once
from bbconnect.service.signals import deliver_signal

logger = logger_for("send")
metrics = metrics_for("send")
tracer = tracer_for("send")
processor = BatchProcessor(event_type=EventType.SQS)
persistence = DynamoDBPersistenceLayer(table_name=runtime.settings().idempotency_table)
idempotency = IdempotencyConfig(event_key_jmespath='join(`"#"`, [message_id, to_string(number)])',
                                expires_after_seconds=7 * 86400)


@idempotent_function(data_keyword_argument="attempt", persistence_store=persistence, config=idempotency)
def post_attempt(attempt: dict[str, Any]) -> dict[str, Any]:
    return post_attempt_once(attempt, services()).dump()


def _metric(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def record_handler(record: SQSRecord) -> None:
    body = json.loads(record.body)
    if body.get("kind") == "signal":  # an asynchronous answer of ours (bbconnect.service.signals)
        delivered = deliver_signal(services(), body, schedule=send_queue_schedule)
        logger.info("ebMS signal " + delivered["state"], extra=delivered)
        return
    request = SendRequest.model_validate(body)
    logger.set_correlation_id(request.batch_id)  # per message: one SQS batch holds several batches' messages
    append_chunk_keys(logger, tenant=request.tenant, chunk=request.chunk.index, globe_batch_id=request.chunk.globe_batch_id)
    sender = Sender(services(), post_attempt=lambda attempt: post_attempt(attempt=attempt), metrics=_metric)
    outcome = sender.handle(request)
    if isinstance(outcome, SendOutcome):
        logger.info("GLOBE batch acknowledged" if outcome.sent else "GLOBE batch not delivered",
                    extra={"message_id": outcome.message_id, "attempts": outcome.attempts, "reason": outcome.reason})
        _metric("GlobeBatchesSent" if outcome.sent else "GlobeBatchesFailed")
    else:
        logger.info("GLOBE batch waiting", extra=outcome.dump())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    with logius_latency(metrics):  # each ebMS POST (the message, a StatusRequest): LogiusEbmsLatency
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

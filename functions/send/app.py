"""Send queue -> deliver each GLOBE batch over ebMS2, then resume the waiting execution.

Idempotent on the GLOBE BatchID: a redelivered SQS message or a retried invocation reports the
first delivery's outcome instead of posting the batch again.
"""
import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

from bbconnect import runtime
from bbconnect.observability import correlate, logger_for, metrics_for
from bbconnect.service.context import services
from bbconnect.service.send import deliver, report_to_execution

logger = logger_for("send")
metrics = metrics_for("send")
processor = BatchProcessor(event_type=EventType.SQS)
persistence = DynamoDBPersistenceLayer(table_name=runtime.settings().idempotency_table)
idempotency = IdempotencyConfig(event_key_jmespath="chunk.globe_batch_id", expires_after_seconds=7 * 86400)


@idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=idempotency)
def deliver_once(request: dict) -> dict:
    return deliver(request, services())


def record_handler(record: SQSRecord) -> None:
    request = json.loads(record.body)
    correlate(logger, request)
    outcome = deliver_once(request={k: request[k] for k in ("tenant", "batch_id", "chunk")})
    logger.info("GLOBE batch delivered" if outcome["sent"] else "GLOBE batch refused",
                extra={k: outcome.get(k) for k in ("message_id", "reason", "repeated")})
    metrics.add_metric(name="GlobeBatchesSent" if outcome["sent"] else "GlobeBatchesRefused", unit=MetricUnit.Count, value=1)
    report_to_execution(runtime.client("stepfunctions"), request["task_token"], outcome)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

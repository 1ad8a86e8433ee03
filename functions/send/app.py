"""Send queue -> deliver each GLOBE batch over ebMS2 reliably, then resume the waiting execution; and
deliver our asynchronous ebMS answers (Acknowledgments, MessageErrors) that the inbound endpoint
stored (`{"kind": "signal"}` jobs).

A message is either the first request from the state machine (with its task token) or a delayed
check this function scheduled itself. Each numbered attempt is idempotent on (ebMS MessageId,
attempt number): a redelivered SQS message does not post the same attempt twice, and a resend of
the same GLOBE batch (a new message) is not mistaken for an earlier one.
"""
import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

from bbconnect import runtime
from bbconnect.observability import correlate, logger_for, logius_latency, metrics_for
from bbconnect.service.context import services
from bbconnect.service.send import Sender, post_attempt_once
from bbconnect.service.signals import deliver_signal

logger = logger_for("send")
metrics = metrics_for("send")
processor = BatchProcessor(event_type=EventType.SQS)
persistence = DynamoDBPersistenceLayer(table_name=runtime.settings().idempotency_table)
idempotency = IdempotencyConfig(event_key_jmespath='join(`"#"`, [message_id, to_string(number)])',
                                expires_after_seconds=7 * 86400)


@idempotent_function(data_keyword_argument="attempt", persistence_store=persistence, config=idempotency)
def post_attempt(attempt: dict) -> dict:
    return post_attempt_once(attempt, services())


def _schedule(body: str, delay_seconds: int) -> None:
    # The tenant is the message group, as in the state machine's Send: on a standard queue that
    # makes SQS share the send Lambdas fairly between tenants (fair queues).
    runtime.client("sqs").send_message(QueueUrl=runtime.settings().send_queue_url, MessageBody=body,
                                       DelaySeconds=delay_seconds, MessageGroupId=json.loads(body)["tenant"])


def _metric(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def record_handler(record: SQSRecord) -> None:
    request = json.loads(record.body)
    if request.get("kind") == "signal":  # an asynchronous answer of ours (bbconnect.service.signals)
        outcome = deliver_signal(services(), request, schedule=_schedule)
        logger.info("ebMS signal " + outcome["state"], extra=outcome)
        return
    correlate(logger, request)
    sender = Sender(services(), sfn=runtime.client("stepfunctions"), schedule=_schedule,
                    post_attempt=lambda attempt: post_attempt(attempt=attempt), metrics=_metric)
    outcome = sender.handle(request)
    if "sent" in outcome:
        logger.info("GLOBE batch acknowledged" if outcome["sent"] else "GLOBE batch not delivered",
                    extra={k: outcome.get(k) for k in ("message_id", "attempts", "reason")})
        _metric("GlobeBatchesSent" if outcome["sent"] else "GlobeBatchesFailed")
    else:
        logger.info("GLOBE batch waiting", extra=outcome)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    idempotency.register_lambda_context(context)
    with logius_latency(metrics):  # each ebMS POST (the message, a StatusRequest): LogiusEbmsLatency
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

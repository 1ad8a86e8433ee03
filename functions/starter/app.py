"""Intake queue -> one batch execution per dropped file (deterministic name)."""
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect import runtime
from bbconnect.observability import logger_for, metrics_for, tracer_for
from bbconnect.service.starter import dropped_files, start

logger = logger_for("starter")
metrics = metrics_for("starter")
tracer = tracer_for("starter")
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    state_machine = runtime.settings().state_machine_arn
    if not state_machine:
        raise LookupError("this function has no STATE_MACHINE_ARN")
    for dropped in dropped_files(record.body):
        batch_id, started = start(runtime.client("stepfunctions"), runtime.client("s3"), state_machine, dropped)
        if batch_id is None:
            logger.warning("batch file removed before it could be read; nothing to take", extra={"key": dropped.key})
            continue
        logger.info("batch file dropped", extra={"batch_id": batch_id, "key": dropped.key, "started": started})
        metrics.add_metric(name="BatchFilesStarted" if started else "BatchFilesAlreadyStarted", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

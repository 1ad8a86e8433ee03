"""Inbound ebMS endpoint (API Gateway with mutual TLS): processing reports (GLOBE-R-BV-Result), bulk
subscription answers (GLOBE-R-A-Result) and asynchronous acknowledgements from Logius."""
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from bbconnect.adapters.certificates import oin_of_certificate
from bbconnect.ebms.message import EbmsMessage
from bbconnect.observability import logger_for, metrics_for, tracer_for
from bbconnect.service.context import services
from bbconnect.service.results import from_api_gateway, receive
from bbconnect.service.subscriptions import store_bulk_answer

logger = logger_for("receive-result")
metrics = metrics_for("receive-result")
tracer = tracer_for("receive-result")


def _bulk_answer(message: EbmsMessage, payload: bytes) -> None:
    store_bulk_answer(message, payload, services())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # a result holds letters' BerichtIDs and codes
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = receive(from_api_gateway(event), services(), certificate_oin=oin_of_certificate, on_bulk_answer=_bulk_answer)
    logger.info("inbound ebMS message answered", extra={"status": answer["statusCode"]})
    return answer

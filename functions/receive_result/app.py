"""Inbound ebMS endpoint (API Gateway with mutual TLS): processing reports (GLOBE-R-BV-Result), bulk
subscription answers (GLOBE-R-A-Result) and asynchronous acknowledgements from Logius."""
from bbconnect import runtime
from bbconnect.adapters.certificates import oin_of_certificate
from bbconnect.observability import logger_for, metrics_for
from bbconnect.service.context import services
from bbconnect.service.results import from_api_gateway, receive
from bbconnect.service.subscriptions import store_bulk_answer

logger = logger_for("receive-result")
metrics = metrics_for("receive-result")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    answer = receive(from_api_gateway(event), services(), certificate_oin=oin_of_certificate,
                     sfn=runtime.client("stepfunctions"),
                     on_bulk_answer=lambda message, payload: store_bulk_answer(message, payload, services()))
    logger.info("inbound ebMS message answered", extra={"status": answer["statusCode"]})
    return answer

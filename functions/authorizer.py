"""REQUEST authorizer: a JWT or an API key in, an IAM policy over the caller's routes out."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerRequestEvent

from nutrimatch.api import logger
from nutrimatch.auth.authorizer import authenticate, policy_for
from nutrimatch.db import get_database
from nutrimatch.errors import Unauthorized
from nutrimatch.settings import get_settings


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: Any) -> dict[str, Any]:
    try:
        principal = authenticate(dict(event.headers or {}), get_settings(), get_database())
    except Unauthorized as refusal:
        logger.info("refused", extra={"reason": refusal.message})
        # API Gateway turns exactly this message into a 401.
        raise Exception("Unauthorized") from None
    logger.info("authorized", extra={"role": principal.role.value, "vendor_id": principal.vendor_id})
    return policy_for(principal, event.method_arn)

"""Health-aware matching: the best products that are safe for one customer, exact top k, explained."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from nutrimatch.api import create_app, current_caller, lambda_handler, request_info
from nutrimatch.matching.models import MatchQuery, MatchResponse
from nutrimatch.matching.service import match_customer

app = create_app()


# The parameter is named `query` so that a validation error names the field alone ("k", not "query.k").
@app.get("/api/v1/matches/<customerId>",
         summary="Top-k products for a customer's health profile (platform admins: X-Access-Justification)")
def match(query: Annotated[MatchQuery, Query()], customer_id: UUID = Path(alias="customerId")) -> MatchResponse:
    caller = current_caller(app)
    return match_customer(caller, request_info(app), customer_id, query)


handler = lambda_handler(app)

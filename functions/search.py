"""Product search and lookup, answered by the read replica when it is fresh enough (X-Data-Freshness says)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel

from nutrimatch.api import create_app, current_caller, lambda_handler, metrics
from nutrimatch.db.routing import Consistency, get_router
from nutrimatch.search import service
from nutrimatch.search.models import ProductRead, ReadMeta, SearchRequest, SearchResults

app = create_app()


def _with_freshness(body: ReadMeta) -> Response[BaseModel]:
    return Response(200, content_types.APPLICATION_JSON, body, headers={"X-Data-Freshness": body.freshness.value})


# The parameter is named `query` so that a validation error names the field alone ("limit", not "query.limit").
@app.get("/api/v1/search/products", summary="Search or browse the catalog: full text, filters, facets, pages")
def search_products(query: Annotated[SearchRequest, Query()]) -> Response[SearchResults]:
    caller = current_caller(app)
    return _with_freshness(service.search_products(get_router(), caller.require_vendor(), query, metrics=metrics))


@app.get("/api/v1/products/<externalId>", summary="One product by the vendor's own id")
def get_product(external_id: Annotated[str, Path(alias="externalId")],
                consistency: Annotated[Consistency, Query(description="strong: read-your-writes, from the writer")]
                = Consistency.EVENTUAL) -> Response[ProductRead]:
    caller = current_caller(app)
    return _with_freshness(service.get_product(get_router(), caller.require_vendor(), external_id,
                                               consistency=consistency, metrics=metrics))


handler = lambda_handler(app)

"""System status, the OpenAPI document and its Swagger UI page: the public routes."""

from pathlib import Path

from aws_lambda_powertools.event_handler import Response, content_types

from nutrimatch.api import create_app, lambda_handler
from nutrimatch.api.openapi import SWAGGER_PAGE, openapi_document
from nutrimatch.db.routing import get_router
from nutrimatch.settings import get_settings
from nutrimatch.status import SystemStatus, check_system

app = create_app()


@app.get("/api/v1/health", summary="Status of the writer, the reader (with replication lag), Redis and S3")
def health() -> Response[SystemStatus]:
    report = check_system(get_settings(), get_router())
    return Response(status_code=200 if report.status == "ok" else 503,
                    content_type=content_types.APPLICATION_JSON, body=report)


@app.get("/api/v1/openapi.json", include_in_schema=False)
def openapi() -> dict[str, object]:
    return openapi_document(Path(__file__).parent)


@app.get("/api/v1/docs", include_in_schema=False)
def docs() -> Response[str]:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=SWAGGER_PAGE)


handler = lambda_handler(app)

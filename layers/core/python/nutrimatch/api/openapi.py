"""One OpenAPI document for the whole API, merged from every function's resolver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from nutrimatch.api.modules import import_function_module
from nutrimatch.routes import functions

TITLE = "nutrimatch API"
VERSION = "1.0.0"

SWAGGER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>nutrimatch API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script>
<noscript>The machine-readable description is at <a href="openapi.json">openapi.json</a>.</noscript>
</body></html>"""


def resolvers(functions_dir: Path) -> dict[str, APIGatewayRestResolver]:
    found = {}
    for name in functions():
        app = getattr(import_function_module(functions_dir, name), "app", None)
        if isinstance(app, APIGatewayRestResolver):
            found[name] = app
    return found


def openapi_document(functions_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                       "description": "ApiKey nm_live_..."},
        }},
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    for app in resolvers(functions_dir).values():
        schema = app.get_openapi_schema(title=TITLE, version=VERSION).model_dump(
            mode="json", by_alias=True, exclude_none=True)
        for path, operations in schema.get("paths", {}).items():
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(schema.get("components", {}).get("schemas", {}))
    return document

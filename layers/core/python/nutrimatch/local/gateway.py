"""The local stand-in for API Gateway (REST): HTTP in, the real authorizer, a proxy event to the real handler.

Each request is matched against the route table, turned into the REQUEST-authorizer event and, if the
returned IAM policy allows the method ARN, into the REST proxy event API Gateway sends; the handler's answer
is mapped back to HTTP, binary bodies included.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pybase64

from nutrimatch.local.console import ACCESS_LOGGER
from nutrimatch.local.lambdas import invoke as invoke_function
from nutrimatch.routes import BINARY_MEDIA_TYPES, MAX_REQUEST_BYTES, Route, find_route

logger = logging.getLogger("nutrimatch.gateway")
access_logger = logging.getLogger(ACCESS_LOGGER)

ACCOUNT_ID = "123456789012"
API_ID = "local"
STAGE = "local"
AUTHORIZER_FUNCTION = "authorizer"

Invoker = Callable[[str, dict[str, Any]], Any]


class Unauthorized(Exception):
    """The authorizer refused the caller: API Gateway answers 401."""


def method_arn(method: str, path: str) -> str:
    return f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:{API_ID}/{STAGE}/{method}{path}"


def policy_allows(policy: dict[str, Any], arn: str) -> bool:
    """IAM evaluation as API Gateway applies it to an authorizer policy: an explicit Deny wins."""
    allowed = False
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _multi(values: dict[str, list[str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not values:
        return None, None
    return {k: v[-1] for k, v in values.items()}, values


def build_proxy_event(
    method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, route: Route,
    path_params: dict[str, str], source_ip: str,
) -> dict[str, Any]:
    split = urlsplit(raw_path)
    query_single, query_multi = _multi(parse_qs(split.query, keep_blank_values=True))
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    single_headers = {k: v[-1] for k, v in multi_headers.items()}
    content_type = next((v for k, v in single_headers.items() if k.lower() == "content-type"), "")
    is_binary = content_type.split(";")[0].strip().lower() in BINARY_MEDIA_TYPES
    if not body:
        event_body, encoded = None, False
    elif is_binary:
        event_body, encoded = pybase64.b64encode(body).decode(), True
    else:
        event_body, encoded = body.decode("utf-8", errors="replace"), False
    user_agent = next((v for k, v in single_headers.items() if k.lower() == "user-agent"), "")
    request_id = str(uuid.uuid4())
    return {
        "resource": route.path,
        "path": unquote(split.path),
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query_single,
        "multiValueQueryStringParameters": query_multi,
        "pathParameters": {k: unquote(v) for k, v in path_params.items()} or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID, "apiId": API_ID, "stage": STAGE, "requestId": request_id,
            "extendedRequestId": request_id, "resourcePath": route.path, "httpMethod": method,
            "path": f"/{STAGE}{split.path}", "protocol": "HTTP/1.1", "domainName": "localhost",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        },
        "body": event_body,
        "isBase64Encoded": encoded,
    }


def authorize(event: dict[str, Any], invoke: Invoker) -> dict[str, Any]:
    """Run the REQUEST authorizer; returns its context or raises Unauthorized / PermissionError."""
    arn = method_arn(event["httpMethod"], event["path"])
    authorizer_event = {
        "type": "REQUEST", "methodArn": arn,
        **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders",
                                  "queryStringParameters", "multiValueQueryStringParameters",
                                  "pathParameters", "stageVariables", "requestContext")},
    }
    try:
        result = invoke(AUTHORIZER_FUNCTION, authorizer_event)
    except Exception as error:
        if str(error) == "Unauthorized":
            raise Unauthorized from error
        raise
    if not policy_allows(result.get("policyDocument", {}), arn):
        raise PermissionError
    context = dict(result.get("context") or {})
    context["principalId"] = result.get("principalId")
    return context


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class Gateway:
    def __init__(self, host: str, port: int, invoke: Invoker = invoke_function) -> None:
        self.invoke = invoke
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
               source_ip: str) -> tuple[int, list[tuple[str, str]], bytes]:
        path = urlsplit(raw_path).path
        found = find_route(method, unquote(path))
        json_type = [("Content-Type", "application/json")]
        if found is None:
            return 404, json_type, _error_body("route_not_found", f"no route for {method} {path}")
        route, params = found
        event = build_proxy_event(method, raw_path, headers, body, route, params, source_ip)
        if not route.public:
            try:
                event["requestContext"]["authorizer"] = authorize(event, self.invoke)
            except Unauthorized:
                return 401, json_type, _error_body("unauthorized", "missing or invalid credentials")
            except PermissionError:
                return 403, json_type, _error_body("forbidden", "your role may not call this route")
        response = self.invoke(route.function, event)
        return _map_response(response)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug(format, *args)

            def _read_body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    total = 0
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        total += size
                        if total > MAX_REQUEST_BYTES:
                            return None
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BYTES:
                    return None
                return self.rfile.read(length) if length else b""

            def _serve(self) -> None:
                started = time.perf_counter()
                body = self._read_body()
                if body is None:
                    self.close_connection = True
                    status, headers, payload = 413, [("Content-Type", "application/json")], _error_body(
                        "payload_too_large", f"request bodies are limited to {MAX_REQUEST_BYTES} bytes")
                else:
                    try:
                        status, headers, payload = gateway.handle(
                            self.command, self.path, list(self.headers.items()), body, self.client_address[0])
                    except Exception:
                        logger.exception("handler failed")
                        status, headers, payload = 502, [("Content-Type", "application/json")], _error_body(
                            "internal_error", "the function failed; see the server log")
                # Before the answer leaves: once a client has it, its line is on record.
                access_logger.info("%s %s %d %.0f ms", self.command, urlsplit(self.path).path, status,
                                   (time.perf_counter() - started) * 1000)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        return RequestHandler


def _map_response(response: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    headers: list[tuple[str, str]] = []
    multi = response.get("multiValueHeaders") or {}
    for name, values in multi.items():
        headers.extend((name, str(v)) for v in values)
    for name, value in (response.get("headers") or {}).items():
        if name not in multi:
            headers.append((name, str(value)))
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return int(response.get("statusCode", 200)), headers, payload

import base64

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from nutrimatch.local.gateway import build_proxy_event, method_arn, policy_allows
from nutrimatch.routes import Route


def _route() -> Route:
    return Route("PATCH", "/api/v1/uploads/tus/{uploadId}", "uploads", frozenset())


def test_proxy_event_is_what_powertools_expects_for_a_binary_body():
    body = bytes(range(256)) * 10
    event = build_proxy_event(
        "PATCH", "/api/v1/uploads/tus/abc%20d?x=1&x=2&y=", [
            ("Content-Type", "application/offset+octet-stream"), ("Upload-Offset", "0"),
            ("User-Agent", "tus-test"), ("X-Many", "a"), ("X-Many", "b")],
        body, _route(), {"uploadId": "abc%20d"}, "10.0.0.9")
    parsed = APIGatewayProxyEvent(event)
    assert parsed.http_method == "PATCH"
    assert parsed.path == "/api/v1/uploads/tus/abc d"
    assert parsed.resource == "/api/v1/uploads/tus/{uploadId}"
    assert parsed.path_parameters == {"uploadId": "abc d"}
    assert parsed.multi_value_query_string_parameters == {"x": ["1", "2"], "y": [""]}
    assert parsed.is_base64_encoded
    assert base64.b64decode(parsed.body) == body
    assert parsed.multi_value_headers["X-Many"] == ["a", "b"]
    assert parsed.request_context.identity.source_ip == "10.0.0.9"
    assert parsed.request_context.identity.user_agent == "tus-test"


def test_text_bodies_stay_text():
    event = build_proxy_event("POST", "/x", [("Content-Type", "application/json")], b'{"a": 1}',
                              _route(), {}, "127.0.0.1")
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None


def test_policy_evaluation_follows_iam_explicit_deny_wins():
    arn = method_arn("GET", "/api/v1/customers/42")
    allow_all = {"Statement": [{"Effect": "Allow", "Resource": ["arn:aws:execute-api:*:*:*/*/*/*"]}]}
    assert policy_allows(allow_all, arn)
    deny_one = {"Statement": [
        allow_all["Statement"][0],
        {"Effect": "Deny", "Resource": [method_arn("GET", "/api/v1/customers/*")]},
    ]}
    assert not policy_allows(deny_one, arn)
    assert not policy_allows({"Statement": []}, arn)
    other = {"Statement": [{"Effect": "Allow", "Resource": method_arn("POST", "/api/v1/customers")}]}
    assert not policy_allows(other, arn)

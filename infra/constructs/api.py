"""API Gateway (REST), built from the route table in nutrimatch.routes: nothing here names a route."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from nutrimatch.routes import BINARY_MEDIA_TYPES, Route

AUTHORIZER_FUNCTION = "authorizer"
# Route functions that handle PHI: health profiles, matching (reads them), customers (erasing a profile,
# auditing each change) and the audit log, whose before/after images are sealed with the vendor's data key.
# Only these may use the PHI key; a name the route table does not have gets nothing.
PHI_FUNCTIONS = frozenset({"customers", "health_profiles", "matches", "audit"})
# Route functions whose reads go to the Aurora readers through the proxy's read-only endpoint
# (nutrimatch.db.routing), or report on them (status).
READER_FUNCTIONS = frozenset({"search", "status"})
DEFAULT_MEMORY_MB = 512
# Lambda's CPU share grows with memory: tus hashes and re-uploads 4 MiB chunks, matching scores whole
# catalogs in numpy, search parses and ranks; none needs the memory itself.
FUNCTION_MEMORY_MB = {"tus": 1024, "matches": 1769, "search": 1024}
STAGE_NAME = "prod"


class FunctionFactory(Protocol):
    def create(self, name: str, *, memory_size: int = ...) -> lambda_.Function: ...


@dataclass(frozen=True)
class ApiLimits:
    """Requests per second and burst for the whole stage, and for each vendor (usage plan, with a quota)."""

    stage_rate: int
    stage_burst: int
    vendor_rate: int
    vendor_burst: int
    vendor_daily_quota: int


class Api(Construct):
    """One Lambda function per distinct `Route.function`, one method per route.

    Every non-public route goes through a REQUEST authorizer keyed on the `Authorization` header (JWT bearer
    tokens, and API keys sent as `Authorization: ApiKey nm_...`). Its answer is cached for five minutes per
    header value, for every route at once, so the authorizer returns a policy covering all the routes the
    caller's role may use. Each vendor's own rate limits are enforced in Redis by the handlers; the usage
    plan caps the stage as a whole.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: Sequence[Route],
        factory: FunctionFactory,
        limits: ApiLimits,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions = {
            name: factory.create(name, memory_size=FUNCTION_MEMORY_MB.get(name, DEFAULT_MEMORY_MB))
            for name in sorted({route.function for route in routes})
        }

        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name="nutrimatch",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(BINARY_MEDIA_TYPES),
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                metrics_enabled=True,
                # Execution logs at ERROR only and no data trace: request bodies may hold health data.
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=_ACCESS_LOG_FORMAT,
                throttling_rate_limit=limits.stage_rate,
                throttling_burst_limit=limits.stage_burst,
            ),
        )

        protected = [route for route in routes if not route.public]
        self.authorizer_function: lambda_.Function | None = None
        authorizer: apigw.RequestAuthorizer | None = None
        if protected:  # API Gateway rejects an authorizer that no method uses
            self.authorizer_function = factory.create(AUTHORIZER_FUNCTION)
            authorizer = apigw.RequestAuthorizer(
                self,
                "Authorizer",
                authorizer_name="nutrimatch",
                handler=self.authorizer_function,
                identity_sources=[apigw.IdentitySource.header("Authorization")],
                results_cache_ttl=Duration.minutes(5),
            )

        # One invoke permission per function for the whole API, not one per method: the route table grows
        # and CloudFormation caps a stack at 500 resources.
        integrations = {
            name: apigw.LambdaIntegration(function, scope_permission_to_method=False)
            for name, function in self.functions.items()
        }
        for route in routes:
            resource = self.rest_api.root.resource_for_path(route.path)
            if route.public:
                method = resource.add_method(
                    route.method, integrations[route.function], authorization_type=apigw.AuthorizationType.NONE
                )
                Validations.of(method).acknowledge(
                    Acknowledgment(
                        id="AwsSolutions-APIG4",
                        reason="Declared public in nutrimatch.routes (health, OpenAPI document, docs page).",
                    )
                )
            else:
                resource.add_method(
                    route.method,
                    integrations[route.function],
                    authorization_type=apigw.AuthorizationType.CUSTOM,
                    authorizer=authorizer,
                    # Per-vendor limits are enforced by the token buckets in Redis (nutrimatch.tenancy.ratelimit);
                    # the usage plan below caps the whole stage. Metering each vendor through API Gateway keys
                    # would need a gateway key per vendor returned by the authorizer as usageIdentifierKey.
                    api_key_required=False,
                )

        # The same error envelope as the handlers' own errors.
        for response_type, status_code, code in (
            (apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized"),
            (apigw.ResponseType.ACCESS_DENIED, "403", "forbidden"),
        ):
            self.rest_api.add_gateway_response(
                f"{code}-response",
                type=response_type,
                status_code=status_code,
                # $context.error.messageString is already a quoted JSON string.
                templates={
                    "application/json": f'{{"error":{{"code":"{code}","message":$context.error.messageString}}}}'
                },
            )

        self.usage_plan = self.rest_api.add_usage_plan(
            "DefaultPlan",
            name="nutrimatch-default",
            description="Stage-wide throttle and daily quota; each vendor's own limits are enforced in Redis.",
            throttle=apigw.ThrottleSettings(rate_limit=limits.vendor_rate, burst_limit=limits.vendor_burst),
            quota=apigw.QuotaSettings(limit=limits.vendor_daily_quota, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )

        self._acknowledge_findings()

    def functions_named(self, names: Collection[str]) -> dict[str, lambda_.Function]:
        """The route functions among `names` that the route table has."""
        return {name: function for name, function in self.functions.items() if name in names}

    @property
    def all_functions(self) -> dict[str, lambda_.Function]:
        """The route functions and, when some route is protected, the authorizer."""
        if self.authorizer_function is None:
            return dict(self.functions)
        return {**self.functions, AUTHORIZER_FUNCTION: self.authorizer_function}

    def _acknowledge_findings(self) -> None:
        Validations.of(self.rest_api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG2",
                reason="Each handler validates its request against pydantic models (Powertools "
                "enable_validation) and answers 422 naming the failing fields; a gateway validator would "
                "duplicate those schemas and answer in another error format.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="Callers authenticate with JWTs from their own identity provider (verified against its "
                "JWKS) or with API keys, both checked by the Lambda authorizer; a Cognito user pool would "
                "force one provider on every vendor.",
            ),
        )
        Validations.of(self.rest_api.node.find_child("CloudWatchRole")).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="The AWS-managed policy API Gateway's account-level logging role is designed for.",
            )
        )
        Validations.of(self.rest_api.deployment_stage).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="Upload routes carry binary bodies up to API Gateway's 10 MB limit (tus PATCH chunks) "
                "that the managed WAF body-size rules would block; callers are authenticated, throttled "
                "per stage and metered per vendor by the usage plan.",
            )
        )


_ACCESS_LOG_FORMAT = apigw.AccessLogFormat.custom(
    json.dumps(
        {
            "requestId": apigw.AccessLogField.context_request_id(),
            "ip": apigw.AccessLogField.context_identity_source_ip(),
            "method": apigw.AccessLogField.context_http_method(),
            "resourcePath": apigw.AccessLogField.context_resource_path(),
            "status": apigw.AccessLogField.context_status(),
            "responseLatencyMs": apigw.AccessLogField.context_response_latency(),
            "integrationLatencyMs": apigw.AccessLogField.context_integration_latency(),
            "responseLength": apigw.AccessLogField.context_response_length(),
            "principalId": apigw.AccessLogField.context_authorizer_principal_id(),
            "error": apigw.AccessLogField.context_error_message(),
            "xrayTraceId": apigw.AccessLogField.context_xray_trace_id(),
        }
    )
)

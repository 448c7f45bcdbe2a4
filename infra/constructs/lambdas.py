"""The one place that decides how a nutrimatch Lambda function is built."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs import PROJECT_ROOT
from infra.constructs.layers import ARCHITECTURE, ASSET_EXCLUDES, RUNTIME, Layers
from infra.constructs.network import Network

FUNCTIONS_DIR = PROJECT_ROOT / "functions"
METRICS_NAMESPACE = "nutrimatch"
# API Gateway gives up on an integration after 29 s; a longer Lambda timeout would only bill for answers
# nobody receives.
API_TIMEOUT = Duration.seconds(29)


class LambdaFactory(Construct):
    """Builds every function with the same runtime, layers, network placement, tracing, logging and settings.

    `environment` holds the Settings variables shared by all functions. The handler code is
    `functions/<name>.py` with its `handler` (or another "module.function"), shipped as one asset for all
    functions.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: Network,
        layers: Layers,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        log_level: str = "INFO",
    ) -> None:
        super().__init__(scope, construct_id)
        self._network = network
        self._layers = layers
        self._environment = dict(environment)
        self._log_retention = log_retention
        self._log_level = log_level
        self._code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=ASSET_EXCLUDES)

    def create(
        self,
        name: str,
        *,
        handler: str | None = None,
        memory_size: int = 512,
        timeout: Duration = API_TIMEOUT,
    ) -> lambda_.Function:
        """`handler` is "module.function" under functions/; by default `<name>.handler`."""
        handler = handler or f"{name}.handler"
        module, _, attribute = handler.rpartition(".")
        log_group = logs.LogGroup(
            self, f"{name}-logs", retention=self._log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        function = lambda_.Function(
            self,
            name,
            function_name=f"nutrimatch-{name}",
            description=f"nutrimatch functions/{module}.py:{attribute}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self._code,
            handler=handler,
            layers=self._layers.all,
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            vpc=self._network.vpc,
            vpc_subnets=self._network.app_subnets,
            security_groups=[self._network.functions_sg],
            environment={
                **self._environment,
                "POWERTOOLS_SERVICE_NAME": name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": self._log_level,
            },
        )
        Validations.of(function).acknowledge(*_FUNCTION_ACKNOWLEDGMENTS)
        return function


_FUNCTION_ACKNOWLEDGMENTS = (
    Acknowledgment(
        id="AwsSolutions-L1",
        reason=f"{RUNTIME.name} is the Python the dependency layer's wheels are built for (layers.py); the "
        "runtime and the layer move to a newer Python together.",
    ),
    Acknowledgment(
        id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        reason="The AWS-managed policy for writing the function's own CloudWatch logs.",
    ),
    Acknowledgment(
        id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
        reason="The AWS-managed policy Lambda needs to attach the function's network interfaces in the VPC.",
    ),
    Acknowledgment(
        id="AwsSolutions-IAM5[Resource::*]",
        reason="X-Ray's PutTraceSegments and PutTelemetryRecords (active tracing) have no resource-level "
        "permissions; every other grant to these functions names its resource.",
    ),
)

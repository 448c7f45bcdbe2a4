"""The ingestion state machine, deployed from infra/statemachines/ingest.asl.json, and one Lambda per Task.

The ASL file is the one the local runner executes (nutrimatch.local.ingest_runtime); which handler serves
each `${Placeholder}` comes from nutrimatch.ingest.pipeline.STEP_HANDLERS, so nothing here names a step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.lambdas import LambdaFactory
from nutrimatch.ingest.pipeline import ASL_PATH

STATE_MACHINE_NAME = "nutrimatch-ingest"
# The queue consumer that starts one execution per uploaded job (nutrimatch.routes.QUEUE_CONSUMERS).
STARTER_FUNCTION = "ingest_starter"
STATE_MACHINE_ARN_VARIABLE = "STATE_MACHINE_ARN"  # Settings.state_machine_arn
# Lambda allots one full vCPU at 1,769 MB: parsing, COPY and the set-wise validation of a chunk are CPU-bound.
STEP_MEMORY_MB = 1769
# Lambda's maximum: a step that outlives it is retried by the state machine (States.Timeout), not cut short.
STEP_TIMEOUT = Duration.minutes(15)
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def step_function_name(handler: str) -> str:
    """`ingest_steps.plan` → `ingest_steps-plan` (deployed as nutrimatch-ingest_steps-plan)."""
    return handler.replace(".", "-")


class IngestPipeline(Construct):
    """`step_handlers` maps each ASL substitution name to its "module.function" under functions/.

    A handler serving several Tasks is one function. Executions log every event (with their inputs: job ids,
    object keys and byte ranges, never PHI) and are traced.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        factory: LambdaFactory,
        step_handlers: Mapping[str, str],
        log_retention: logs.RetentionDays,
        definition_file: Path = ASL_PATH,
    ) -> None:
        super().__init__(scope, construct_id)
        unserved = sorted(set(PLACEHOLDER.findall(definition_file.read_text())) - set(step_handlers))
        if unserved:
            raise ValueError(f"{definition_file.name} has Tasks no STEP_HANDLERS entry serves: {unserved}")

        self.step_functions = {
            handler: factory.create(
                step_function_name(handler), handler=handler, memory_size=STEP_MEMORY_MB, timeout=STEP_TIMEOUT
            )
            for handler in sorted(set(step_handlers.values()))
        }

        log_group = logs.LogGroup(
            self,
            "Logs",
            # Under /aws/vendedlogs/ Step Functions needs no per-group resource policy (whose size is capped).
            log_group_name=f"/aws/vendedlogs/states/{STATE_MACHINE_NAME}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # An execution's time limit can only be the ASL's own top-level TimeoutSeconds: CDK ignores the
        # `timeout` prop for a definition read from a file (it applies it to definitions it builds itself).
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=STATE_MACHINE_NAME,
            definition_body=sfn.DefinitionBody.from_file(str(definition_file)),
            definition_substitutions={
                placeholder: self.step_functions[handler].function_arn for placeholder, handler in step_handlers.items()
            },
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        for function in self.step_functions.values():
            function.grant_invoke(self.state_machine)
        self._acknowledge_findings()

    def allow_start(self, function: lambda_.Function) -> None:
        """Let `function` start executions of the pipeline (it finds the ARN in its settings)."""
        function.add_environment(STATE_MACHINE_ARN_VARIABLE, self.state_machine.state_machine_arn)
        self.state_machine.grant_start_execution(function)

    def _acknowledge_findings(self) -> None:
        stack = Stack.of(self)
        invoke_reason = (
            "The state machine invokes this step function; the version wildcard comes with CDK's grant_invoke, "
            "and the ASL calls the unqualified ARN."
        )
        Validations.of(self.state_machine).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="CloudWatch Logs delivery (logs:*LogDelivery*, resource policies) and X-Ray tracing "
                "actions have no resource-level permissions.",
            ),
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{stack.resolve(stack.get_logical_id(_cfn(function)))}.Arn>:*]",
                    reason=invoke_reason,
                )
                for function in self.step_functions.values()
            ),
        )


def _cfn(function: lambda_.Function) -> lambda_.CfnFunction:
    resource = function.node.default_child
    assert isinstance(resource, lambda_.CfnFunction)
    return resource

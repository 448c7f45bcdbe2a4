"""The ingestion pipeline in the synthesized stack: the state machine from the ASL file, one function per step
handler, the queue consumers, and the alarms. Derived from STEP_HANDLERS and QUEUE_CONSUMERS, so the tests follow
them as steps and consumers are added."""

from __future__ import annotations

import json
import re
from typing import Any

from infra.constructs.ingest_pipeline import STARTER_FUNCTION
from nutrimatch.ingest.pipeline import ASL_PATH, STEP_HANDLERS
from nutrimatch.routes import QUEUE_CONSUMERS
from tests.infra.synthesis import Synthesis, allows

ONE_VCPU_MB = 1769
LAMBDA_MAX_TIMEOUT_S = 900


def test_state_machine_is_the_asl_file_with_every_task_served_by_its_step_function(synth: Synthesis) -> None:
    properties = synth.resources[synth.logical_id("AWS::StepFunctions::StateMachine")]["Properties"]
    deployed = (synth.outdir / f"asset.{properties['DefinitionS3Location']['Key']}").read_text()
    assert deployed == ASL_PATH.read_text()

    substitutions = properties["DefinitionSubstitutions"]
    assert set(substitutions) == set(STEP_HANDLERS)
    # CloudFormation substitutes at deploy time; stand each function's logical id in for its ARN.
    definition = json.loads(re.sub(r"\$\{(\w+)\}", lambda match: substitutions[match[1]]["Fn::GetAtt"][0], deployed))
    tasks = dict(_task_states(definition["States"]))
    assert tasks
    for state, resource in tasks.items():
        assert "${" not in resource, state
        assert synth.resources[resource]["Type"] == "AWS::Lambda::Function", state
    for placeholder, handler in STEP_HANDLERS.items():
        function = substitutions[placeholder]["Fn::GetAtt"][0]
        assert synth.resources[function]["Properties"]["Handler"] == handler, placeholder


def test_state_machine_logs_every_event_is_traced_and_invokes_only_its_steps(synth: Synthesis) -> None:
    state_machine = synth.resources[synth.logical_id("AWS::StepFunctions::StateMachine")]
    properties = state_machine["Properties"]
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    (destination,) = properties["LoggingConfiguration"]["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert synth.resources[log_group]["Properties"]["RetentionInDays"] > 0

    role = properties["RoleArn"]["Fn::GetAtt"][0]
    invoked = {
        resource["Fn::GetAtt"][0]
        for policy in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "lambda:InvokeFunction"
        for resource in statement["Resource"]
        if "Fn::GetAtt" in resource
    }
    assert invoked == {value["Fn::GetAtt"][0] for value in properties["DefinitionSubstitutions"].values()}


def test_step_functions_get_a_full_vcpu_fifteen_minutes_and_what_the_api_functions_get(synth: Synthesis) -> None:
    api_function = synth.resources[synth.function_named("search")]["Properties"]
    upload_bucket = _upload_bucket(synth)
    for handler in set(STEP_HANDLERS.values()):
        (function,) = (
            key
            for key, value in synth.of_type("AWS::Lambda::Function").items()
            if value["Properties"].get("Handler") == handler
        )
        properties = synth.resources[function]["Properties"]
        assert properties["MemorySize"] >= ONE_VCPU_MB, handler
        assert properties["Timeout"] == LAMBDA_MAX_TIMEOUT_S, handler
        for shared in ("Layers", "VpcConfig", "Runtime", "TracingConfig"):
            assert properties[shared] == api_function[shared], (handler, shared)
        assert _settings(properties) == _settings(api_function), handler

        statements = synth.role_statements(function)
        assert allows(statements, "secretsmanager:GetSecretValue", "DatabaseAppSecret"), handler
        assert allows(statements, "s3:GetObject*", upload_bucket), handler
        assert allows(statements, "s3:PutObject", upload_bucket), handler


def test_every_queue_consumer_is_fed_by_its_queue_in_batches_reporting_failures(synth: Synthesis) -> None:
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    assert QUEUE_CONSUMERS  # the ingest starter at least
    for setting, name in QUEUE_CONSUMERS.items():
        function = synth.function_named(name)
        properties = synth.resources[function]["Properties"]
        # The queue whose name the function's settings hold under this field.
        queue = properties["Environment"]["Variables"][setting.upper()]["Fn::GetAtt"][0]
        (mapping,) = (
            mapping["Properties"]
            for mapping in mappings
            if mapping["Properties"]["FunctionName"] == {"Ref": function}
            and mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
        )
        assert mapping["BatchSize"] == 10
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert synth.resources[queue]["Properties"]["VisibilityTimeout"] >= 6 * properties["Timeout"], name
        assert allows(synth.role_statements(function), "sqs:DeleteMessage", queue), name


def test_starter_consumes_ingest_events_and_may_start_the_state_machine(synth: Synthesis) -> None:
    assert QUEUE_CONSUMERS["ingest_queue"] == STARTER_FUNCTION
    state_machine = synth.logical_id("AWS::StepFunctions::StateMachine")
    starter = synth.function_named(STARTER_FUNCTION)
    variables = synth.resources[starter]["Properties"]["Environment"]["Variables"]
    assert variables["STATE_MACHINE_ARN"] == {"Ref": state_machine}
    assert allows(synth.role_statements(starter), "states:StartExecution", state_machine)
    assert allows(synth.role_statements(starter), "secretsmanager:GetSecretValue", "DatabaseAppSecret")
    mapping = next(
        mapping["Properties"]
        for mapping in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["FunctionName"] == {"Ref": starter}
    )
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [synth.queue_named("nutrimatch-ingest-events"), "Arn"]}


def test_failed_and_timed_out_executions_and_dead_letters_alarm_and_show_on_the_dashboard(synth: Synthesis) -> None:
    state_machine = synth.logical_id("AWS::StepFunctions::StateMachine")
    topic = {"Ref": synth.logical_id("AWS::SNS::Topic")}
    alarms = synth.of_type("AWS::CloudWatch::Alarm").values()
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        (alarm,) = (alarm["Properties"] for alarm in alarms if alarm["Properties"].get("MetricName") == metric)
        assert alarm["Namespace"] == "AWS/States"
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": state_machine}}]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["AlarmActions"] == [topic]
    dlq_alarms = [
        alarm["Properties"]
        for alarm in alarms
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(dlq_alarms) == 2
    assert all(alarm["AlarmActions"] == [topic] for alarm in dlq_alarms)

    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"):
        assert metric in body


# --- helpers -----------------------------------------------------------------------------------------------------


def _task_states(states: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, Resource) of every Task, Map item processors included."""
    found = []
    for name, state in states.items():
        if state["Type"] == "Task":
            found.append((name, state["Resource"]))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.extend(_task_states(processor["States"]))
    return found


def _settings(function: dict[str, Any]) -> dict[str, Any]:
    """The function's environment without the variables that name the function itself."""
    variables = dict(function["Environment"]["Variables"])
    variables.pop("POWERTOOLS_SERVICE_NAME")
    return variables


def _upload_bucket(synth: Synthesis) -> str:
    (bucket,) = (
        key
        for key, bucket in synth.of_type("AWS::S3::Bucket").items()
        if "CorsConfiguration" in bucket["Properties"]  # browsers upload to it; the access-log bucket has none
    )
    return bucket

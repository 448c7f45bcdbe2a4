"""NutrimatchStack (synthesized once per session, see conftest.py), checked by property.

Everything about the API is derived from nutrimatch.routes.ROUTES, so the tests follow the route table as it
grows.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.app import PROJECT_ROOT, STACK_NAME
from infra.constructs.api import (
    AUTHORIZER_FUNCTION,
    DEFAULT_MEMORY_MB,
    FUNCTION_MEMORY_MB,
    PHI_FUNCTIONS,
    READER_FUNCTIONS,
)
from infra.constructs.ingest_pipeline import step_function_name
from infra.constructs.layers import PipInstallLocally, runtime_requirements
from nutrimatch.ingest.pipeline import STEP_HANDLERS
from nutrimatch.routes import BINARY_MEDIA_TYPES, QUEUE_CONSUMERS, ROUTES, SCHEDULED
from tests.infra.synthesis import Synthesis, actions

# --- cdk-nag ---------------------------------------------------------------------------------------------------


def test_cdk_nag_and_cdk_report_nothing_unacknowledged(synth: Synthesis) -> None:
    report_file = synth.outdir / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"pluginReports": []}
    findings = [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    errors = [
        f"{path}: {entry['data']}"
        for path, entries in (manifest["artifacts"][STACK_NAME].get("metadata") or {}).items()
        for entry in entries
        if entry["type"] == "aws:cdk:error"
    ]
    assert findings == []
    assert errors == []
    assert synth.failure is None


def test_every_acknowledgment_gives_a_reason(synth: Synthesis) -> None:
    acknowledged = [
        rule
        for resource in synth.resources.values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert any(rule["id"].startswith("AwsSolutions-") for rule in acknowledged)  # cdk-nag ran
    assert all(len(rule["reason"].split()) >= 5 for rule in acknowledged)


# --- database ----------------------------------------------------------------------------------------------------


def test_aurora_postgres_16_with_one_writer_and_one_reader(synth: Synthesis) -> None:
    synth.template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "EngineVersion": Match.string_like_regexp(r"^16\."),
            "StorageEncrypted": True,
            "DeletionProtection": True,
            "DatabaseName": "nutrimatch",
            "MasterUserPassword": Match.object_like(
                {"Fn::Join": ["", Match.array_with([Match.string_like_regexp("resolve:secretsmanager")])]}
            ),
        },
    )
    cluster = synth.logical_id("AWS::RDS::DBCluster")
    instances = {
        key: value
        for key, value in synth.of_type("AWS::RDS::DBInstance").items()
        if value["Properties"]["DBClusterIdentifier"] == {"Ref": cluster}
    }
    # Aurora makes the first instance the writer; CDK creates the readers after it.
    writers = [key for key, value in instances.items() if not set(value.get("DependsOn", [])) & set(instances)]
    readers = [key for key, value in instances.items() if writers[0] in value.get("DependsOn", [])]
    assert len(writers) == 1
    assert len(readers) == 1
    assert len(instances) == 2


def test_rds_proxy_has_a_read_only_endpoint_and_functions_use_both(synth: Synthesis) -> None:
    proxy = synth.logical_id("AWS::RDS::DBProxy")
    synth.template.has_resource_properties("AWS::RDS::DBProxy", {"EngineFamily": "POSTGRESQL", "RequireTLS": True})
    endpoint = synth.logical_id("AWS::RDS::DBProxyEndpoint")
    synth.template.has_resource_properties(
        "AWS::RDS::DBProxyEndpoint", {"DBProxyName": {"Ref": proxy}, "TargetRole": "READ_ONLY"}
    )
    for function in synth.nutrimatch_functions().values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["DATABASE_HOST"] == {"Fn::GetAtt": [proxy, "Endpoint"]}
        assert variables["DATABASE_READER_HOST"] == {"Fn::GetAtt": [endpoint, "Endpoint"]}


def test_reader_functions_read_through_the_read_only_endpoint(synth: Synthesis) -> None:
    endpoint = synth.logical_id("AWS::RDS::DBProxyEndpoint")
    assert synth.resources[endpoint]["Properties"]["TargetRole"] == "READ_ONLY"
    readers = READER_FUNCTIONS & {route.function for route in ROUTES}
    assert "search" in readers  # the search routes have landed
    for name in readers:
        variables = synth.resources[synth.function_named(name)]["Properties"]["Environment"]["Variables"]
        assert variables["DATABASE_READER_HOST"] == {"Fn::GetAtt": [endpoint, "Endpoint"]}, name


# --- storage and queues ------------------------------------------------------------------------------------------


def test_upload_bucket_is_private_encrypted_and_open_to_browser_uploads(synth: Synthesis) -> None:
    synth.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": Match.any_value()}}
                ]
            },
            "CorsConfiguration": {
                "CorsRules": [
                    Match.object_like(
                        {
                            "AllowedMethods": Match.array_with(["PUT", "POST", "GET", "HEAD"]),
                            "AllowedOrigins": ["*"],
                            "ExposedHeaders": ["ETag"],
                        }
                    )
                ]
            },
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like({"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}),
                        Match.object_like({"Prefix": "tus-scratch/", "ExpirationInDays": 8}),
                    ]
                )
            },
        },
    )


def test_every_bucket_and_queue_refuses_plain_http(synth: Synthesis) -> None:
    def denies_insecure_transport(policy: dict[str, Any]) -> bool:
        return any(
            statement["Effect"] == "Deny" and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        )

    guarded_buckets = {
        policy["Properties"]["Bucket"]["Ref"]
        for policy in synth.of_type("AWS::S3::BucketPolicy").values()
        if denies_insecure_transport(policy)
    }
    guarded_queues = {
        queue["Ref"]
        for policy in synth.of_type("AWS::SQS::QueuePolicy").values()
        if denies_insecure_transport(policy)
        for queue in policy["Properties"]["Queues"]
    }
    assert set(synth.of_type("AWS::S3::Bucket")) == guarded_buckets
    assert set(synth.of_type("AWS::SQS::Queue")) == guarded_queues


def test_objects_created_under_incoming_notify_the_ingest_queue(synth: Synthesis) -> None:
    ingest_queue = synth.queue_named("nutrimatch-ingest-events")
    synth.template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    {
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                        "QueueArn": {"Fn::GetAtt": [ingest_queue, "Arn"]},
                    }
                ]
            }
        },
    )


def test_every_queue_has_a_dead_letter_queue_watched_by_an_alarm(synth: Synthesis) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    dead_letter_queues = {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in queues.values()
        if "RedrivePolicy" in queue["Properties"]
    }
    for key, queue in queues.items():
        properties = queue["Properties"]
        assert properties.get("SqsManagedSseEnabled") or properties.get("KmsMasterKeyId"), key
        if key not in dead_letter_queues:
            assert properties["RedrivePolicy"]["maxReceiveCount"] == 5, key
    alarmed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in synth.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"]["Threshold"] == 0
        and alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
    }
    assert dead_letter_queues <= alarmed
    working_queues = set(queues) - dead_letter_queues
    assert synth.queue_named("nutrimatch-ingest-events") in working_queues
    assert synth.queue_named("nutrimatch-webhooks") in working_queues


# --- API ---------------------------------------------------------------------------------------------------------


def test_api_has_exactly_the_routes_of_the_route_table(synth: Synthesis) -> None:
    declared = {(route.method, route.path) for route in ROUTES}
    assert set(_api_methods(synth)) == declared


def test_protected_routes_use_the_authorizer_and_public_routes_none(synth: Synthesis) -> None:
    methods = _api_methods(synth)
    protected = [route for route in ROUTES if not route.public]
    authorizer = synth.logical_id("AWS::ApiGateway::Authorizer") if protected else None
    for route in ROUTES:
        properties = methods[(route.method, route.path)]
        if route.public:
            assert properties["AuthorizationType"] == "NONE", route
            assert "AuthorizerId" not in properties, route
        else:
            assert properties["AuthorizationType"] == "CUSTOM", route
            assert properties["AuthorizerId"] == {"Ref": authorizer}, route
            assert properties.get("ApiKeyRequired") in (None, False), route  # vendors metered in Redis
        function = properties["Integration"]["Uri"]["Fn::Join"][1][1]["Fn::GetAtt"][0]
        assert synth.resources[function]["Properties"]["FunctionName"] == f"nutrimatch-{route.function}"
    if protected:
        synth.template.has_resource_properties(
            "AWS::ApiGateway::Authorizer",
            {
                "Type": "REQUEST",
                "IdentitySource": "method.request.header.Authorization",
                "AuthorizerResultTtlInSeconds": 300,
            },
        )


def test_api_accepts_binary_uploads_and_answers_auth_failures_in_json(synth: Synthesis) -> None:
    synth.template.has_resource_properties("AWS::ApiGateway::RestApi", {"BinaryMediaTypes": list(BINARY_MEDIA_TYPES)})
    for response_type, status, code in (("UNAUTHORIZED", "401", "unauthorized"), ("ACCESS_DENIED", "403", "forbidden")):
        responses = synth.template.find_resources(
            "AWS::ApiGateway::GatewayResponse",
            {"Properties": {"ResponseType": response_type, "StatusCode": status}},
        )
        (response,) = responses.values()
        body = response["Properties"]["ResponseTemplates"]["application/json"]
        # API Gateway substitutes a quoted JSON string for the variable.
        document = json.loads(body.replace("$context.error.messageString", '"message"'))
        assert document == {"error": {"code": code, "message": "message"}}


def test_stage_logs_traces_and_throttles_and_a_usage_plan_meters_it(synth: Synthesis) -> None:
    synth.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": [
                Match.object_like({"ThrottlingRateLimit": Match.any_value(), "ThrottlingBurstLimit": Match.any_value()})
            ],
        },
    )
    synth.template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {"Throttle": Match.object_like({}), "Quota": Match.object_like({"Period": "DAY"})},
    )
    synth.template.has_resource_properties("AWS::ApiGateway::RestApi", {"ApiKeySourceType": "AUTHORIZER"})


# --- functions and layers ----------------------------------------------------------------------------------------


def test_every_function_is_built_by_the_factory(synth: Synthesis) -> None:
    """One per route function (and the authorizer), per queue consumer and per ingestion step handler."""
    functions = synth.nutrimatch_functions()
    api_functions = {route.function for route in ROUTES}
    if any(not route.public for route in ROUTES):
        api_functions.add(AUTHORIZER_FUNCTION)
    handlers = {name: f"{name}.handler" for name in api_functions | set(QUEUE_CONSUMERS.values())}
    handlers |= {name: schedule.handler for name, schedule in SCHEDULED.items()}
    handlers |= {step_function_name(handler): handler for handler in STEP_HANDLERS.values()}
    assert set(functions) == {f"nutrimatch-{name}" for name in handlers}
    layers = [{"Ref": key} for key in synth.of_type("AWS::Lambda::LayerVersion")]
    for name, handler in handlers.items():
        properties = functions[f"nutrimatch-{name}"]["Properties"]
        assert properties["Handler"] == handler
        assert properties["Runtime"] == "python3.12"
        assert properties["Architectures"] == ["x86_64"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        if name in api_functions:
            assert properties["MemorySize"] == FUNCTION_MEMORY_MB.get(name, DEFAULT_MEMORY_MB)
            assert properties["Timeout"] == 29  # API Gateway's integration limit
        assert sorted(properties["Layers"], key=json.dumps) == sorted(layers, key=json.dumps)
        assert properties["VpcConfig"]["SubnetIds"]
        variables = properties["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == name
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "nutrimatch"
        assert {
            "DATABASE_SECRET_ARN",
            "DATABASE_NAME",
            "REDIS_URL",
            "UPLOAD_BUCKET",
            "INGEST_QUEUE",
            "WEBHOOK_QUEUE",
            "KMS_KEY_ALIAS",
            "JWT_SECRET_NAME",
            "LOG_LEVEL",
        } <= set(variables)
        assert "AWS_ENDPOINT_URL" not in variables  # would send the SDK to the local stand-in


def test_layers_target_the_functions_runtime_and_cpu(synth: Synthesis) -> None:
    layers = synth.of_type("AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]


def test_dependency_layer_is_built_by_local_pip_from_pyproject_never_docker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as file:
        requirements = tomllib.load(file)["project"]["dependencies"]

    # True means "bundled": CDK falls back to Docker only when the local bundler declines.
    assert PipInstallLocally(runtime_requirements()).try_bundle(str(tmp_path)) is True

    (command,) = commands
    flags = command[command.index("install") + 1 : -len(requirements)]
    assert command[-len(requirements) :] == requirements
    assert flags[flags.index("--platform") + 1] == "manylinux2014_x86_64"
    assert flags[flags.index("--python-version") + 1] == "3.12"
    assert flags[flags.index("--target") + 1] == str(tmp_path / "python")
    assert "--only-binary=:all:" in flags


# --- keys, secrets, observability --------------------------------------------------------------------------------


def test_phi_key_rotates_and_jwt_secret_is_generated(synth: Synthesis) -> None:
    key = synth.logical_id("AWS::KMS::Key")
    synth.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    synth.template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": "alias/nutrimatch-phi", "TargetKeyId": {"Fn::GetAtt": [key, "Arn"]}}
    )
    synth.template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"Name": "nutrimatch/jwt", "GenerateSecretString": Match.object_like({"GenerateStringKey": "hs256_secret"})},
    )


def test_only_the_functions_that_handle_phi_may_use_the_phi_key(synth: Synthesis) -> None:
    key = synth.logical_id("AWS::KMS::Key")
    phi_functions = PHI_FUNCTIONS & {route.function for route in ROUTES}
    assert {"customers", "health_profiles", "audit"} <= phi_functions
    for function_name in synth.nutrimatch_functions():
        name = function_name.removeprefix("nutrimatch-")
        key_actions = {
            action
            for statement in synth.role_statements(synth.function_named(name))
            if key in json.dumps(statement["Resource"])
            for action in actions(statement)
        }
        expected = {"kms:Decrypt", "kms:GenerateDataKey"} if name in phi_functions else set()
        assert key_actions == expected, name
    # Grants go to the roles' own policies; the key policy only delegates to the account's IAM.
    key_policy = synth.resources[key]["Properties"]["KeyPolicy"]["Statement"]
    assert [statement["Principal"] for statement in key_policy] == [{"AWS": "arn:aws:iam::123456789012:root"}]


def test_dashboard_and_replica_lag_alarm(synth: Synthesis) -> None:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("Latency", "5XXError", "Errors", "AuroraReplicaLag", "ApproximateNumberOfMessagesVisible"):
        assert metric in body
    assert "p95" in body
    synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "AuroraReplicaLag",
            "Namespace": "AWS/RDS",
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [Match.any_value()],
        },
    )


# --- helpers -----------------------------------------------------------------------------------------------------


def _api_methods(synth: Synthesis) -> dict[tuple[str, str], dict[str, Any]]:
    """Each method's properties keyed by (HTTP method, full resource path), rebuilt from the Resource tree."""
    resources = synth.of_type("AWS::ApiGateway::Resource")

    def path_of(reference: dict[str, Any]) -> str:
        if "Fn::GetAtt" in reference:  # the API's root resource
            return ""
        properties = resources[reference["Ref"]]["Properties"]
        return f"{path_of(properties['ParentId'])}/{properties['PathPart']}"

    return {
        (method["Properties"]["HttpMethod"], path_of(method["Properties"]["ResourceId"]) or "/"): method["Properties"]
        for method in synth.of_type("AWS::ApiGateway::Method").values()
    }


@pytest.mark.parametrize("handler", ["tus.expire_handler", "ingest_jobs.stalled_handler"])
def test_scheduled_cleanups_run_every_hour(synth, handler):
    assert handler in {schedule.handler for schedule in SCHEDULED.values()}
    functions = synth.template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    assert len(functions) == 1
    (logical_id,) = functions
    rules = synth.template.find_resources("AWS::Events::Rule", {"Properties": {"ScheduleExpression": "rate(1 hour)"}})
    targets = [t for rule in rules.values() for t in rule["Properties"]["Targets"]]
    assert any(logical_id in json.dumps(t["Arn"]) for t in targets)

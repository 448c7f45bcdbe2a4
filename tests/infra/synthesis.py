"""The synthesized NutrimatchStack as the infra tests read it: the template, its resources, and lookups."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infra.app import STACK_NAME, build_app

Resources = dict[str, dict[str, Any]]

# CDK skips bundling for every stack not listed: no pip run in tests.
SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}


@dataclass
class Synthesis:
    outdir: Path
    template: Template
    resources: Resources
    failure: Exception | None  # cdk-nag findings fail app.synth() after the template is written

    @classmethod
    def run(cls, outdir: Path) -> Synthesis:
        app, _ = build_app(SKIP_BUNDLING, outdir=str(outdir))
        failure: Exception | None = None
        try:
            app.synth()
        except RuntimeError as error:
            failure = error
        template = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
        return cls(outdir, Template.from_json(template), template["Resources"], failure)

    def of_type(self, resource_type: str) -> Resources:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def logical_id(self, resource_type: str) -> str:
        (key,) = self.of_type(resource_type)
        return key

    def nutrimatch_functions(self) -> Resources:
        """Our Lambda functions (not CDK's helpers), keyed by function name."""
        return {
            function["Properties"]["FunctionName"]: function
            for function in self.of_type("AWS::Lambda::Function").values()
            if str(function["Properties"].get("FunctionName", "")).startswith("nutrimatch-")
        }

    def function_named(self, name: str) -> str:
        """The logical id of the function deployed as nutrimatch-<name>."""
        (key,) = (
            key
            for key, function in self.of_type("AWS::Lambda::Function").items()
            if function["Properties"].get("FunctionName") == f"nutrimatch-{name}"
        )
        return key

    def queue_named(self, name: str) -> str:
        (key,) = (
            key for key, queue in self.of_type("AWS::SQS::Queue").items() if queue["Properties"]["QueueName"] == name
        )
        return key

    def role_statements(self, function: str) -> list[dict[str, Any]]:
        """Every statement of the IAM policies attached to the role of the function with logical id `function`."""
        role = self.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
        return [
            statement
            for policy in self.of_type("AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Some Allow statement grants `action` on a resource whose reference mentions `resource` (a logical id)."""
    return any(
        statement["Effect"] == "Allow"
        and action in actions(statement)
        and resource in json.dumps(statement["Resource"])
        for statement in statements
    )

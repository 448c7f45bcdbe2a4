"""Starting the ingestion state machine: Step Functions in AWS, the local ASL runner on a laptop."""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from nutrimatch import aws
from nutrimatch.settings import Settings


class ExecutionStarter(Protocol):
    def start(self, name: str, execution_input: dict[str, Any]) -> bool:
        """Start an execution; False when one of that name already exists (a duplicate trigger)."""


class StepFunctionsStarter:
    def __init__(self, settings: Settings) -> None:
        assert settings.state_machine_arn
        self.arn = settings.state_machine_arn
        self.client = aws.client("stepfunctions", settings)

    def start(self, name: str, execution_input: dict[str, Any]) -> bool:
        try:
            self.client.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(execution_input))
        except self.client.exceptions.ExecutionAlreadyExists:
            return False
        return True


class LocalStarter:
    """The deployed ASL file, run in-process by nutrimatch.local.stepfunctions."""

    _runtime: Any = None
    _lock = threading.Lock()

    def start(self, name: str, execution_input: dict[str, Any]) -> bool:
        from nutrimatch.local.stepfunctions import ExecutionAlreadyExists

        try:
            self.runtime().start_execution(name, execution_input)
        except ExecutionAlreadyExists:
            return False
        return True

    @classmethod
    def runtime(cls) -> Any:
        from nutrimatch.local.ingest_runtime import local_ingest_state_machine

        with cls._lock:
            if cls._runtime is None:
                cls._runtime = local_ingest_state_machine()
            return cls._runtime


def starter_for(settings: Settings) -> ExecutionStarter:
    return StepFunctionsStarter(settings) if settings.state_machine_arn else LocalStarter()

"""A small Amazon States Language interpreter: runs the deployed ingest.asl.json locally, task by task.

It covers what our state machines use — Task, Map (inline, MaxConcurrency/MaxConcurrencyPath), Pass, Succeed,
Fail, Retry with backoff, Catch, ResultPath/OutputPath — and runs each Task by calling the real Lambda handler
in-process, with the error name Step Functions would see (the exception's class name).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("nutrimatch.stepfunctions")

TaskInvoker = Callable[[str, Any], Any]


class StatesError(Exception):
    """A failure as Step Functions names it: an error name and a cause."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class ExecutionAlreadyExists(Exception):
    pass


def _read_path(data: Any, path: str) -> Any:
    if path == "$":
        return data
    if not path.startswith("$."):
        raise StatesError("States.Runtime", f"unsupported path {path!r}")
    value = data
    for key in path[2:].split("."):
        if not isinstance(value, dict) or key not in value:
            raise StatesError("States.Runtime", f"path {path!r} not found in the state's input")
        value = value[key]
    return value


def _write_result(data: Any, path: str | None, result: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return result
    updated = copy.deepcopy(data) if isinstance(data, dict) else {}
    target = updated
    keys = path[2:].split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = result
    return updated


def _matches(patterns: list[str], error: str) -> bool:
    return "States.ALL" in patterns or error in patterns or (
        "States.TaskFailed" in patterns and not error.startswith("States."))


@dataclass
class AslRunner:
    definition: dict[str, Any]
    invoke_task: TaskInvoker
    # Locally the ASL's retry intervals (seconds, sized for AWS) are scaled down so tests stay fast.
    interval_scale: float = 1.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Wall-clock seconds spent in each Task resource (summed over Map items and retries), for diagnostics.
    task_seconds: dict[str, float] = field(default_factory=dict)
    _timing_lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, execution_input: Any) -> Any:
        return self._run_machine(self.definition, execution_input)

    def _run_machine(self, machine: dict[str, Any], data: Any) -> Any:
        name = machine["StartAt"]
        while True:
            state = machine["States"][name]
            next_name, data = self._run_state(name, state, data)
            if next_name is None:
                return data
            name = next_name

    def _run_state(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        kind = state["Type"]
        if kind == "Succeed":
            return None, data
        if kind == "Fail":
            raise StatesError(state.get("Error", "States.Fail"), state.get("Cause", ""))
        try:
            if kind == "Task":
                result = self._with_retries(state, lambda: self._timed_task(state["Resource"], data))
            elif kind == "Map":
                result = self._with_retries(state, lambda: self._run_map(state, data))
            elif kind == "Pass":
                result = state.get("Result", data)
            else:
                raise StatesError("States.Runtime", f"state type {kind} is not supported locally")
        except StatesError as failure:
            for catcher in state.get("Catch", []):
                if _matches(catcher["ErrorEquals"], failure.error):
                    error_output = {"Error": failure.error, "Cause": failure.cause}
                    return catcher["Next"], _write_result(data, catcher.get("ResultPath", "$"), error_output)
            raise
        output = _write_result(data, state.get("ResultPath", "$"), result)
        if state.get("OutputPath"):
            output = _read_path(output, state["OutputPath"])
        return (None if state.get("End") else state["Next"]), output

    def _timed_task(self, resource: str, data: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.invoke_task(resource, data)
        finally:
            with self._timing_lock:
                self.task_seconds[resource] = self.task_seconds.get(resource, 0.0) + time.perf_counter() - started

    def _with_retries(self, state: dict[str, Any], attempt: Callable[[], Any]) -> Any:
        tries: dict[int, int] = {}
        while True:
            if self.cancelled.is_set():
                raise StatesError("States.Aborted", "execution stopped")
            try:
                return attempt()
            except StatesError as failure:
                error = failure
            except Exception as exception:  # a task's exception is its Lambda error
                error = StatesError(type(exception).__name__, json.dumps(
                    {"errorMessage": str(exception), "errorType": type(exception).__name__}))
            for index, retrier in enumerate(state.get("Retry", [])):
                if _matches(retrier["ErrorEquals"], error.error):
                    done = tries.get(index, 0)
                    if done >= retrier.get("MaxAttempts", 3):
                        raise error
                    tries[index] = done + 1
                    delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** done
                    logger.warning("retrying after %s (attempt %d)", error.error, done + 2)
                    time.sleep(delay * self.interval_scale)
                    break
            else:
                raise error

    def _run_map(self, state: dict[str, Any], data: Any) -> list[Any]:
        items = _read_path(data, state.get("ItemsPath", "$"))
        if "MaxConcurrencyPath" in state:
            concurrency = int(_read_path(data, state["MaxConcurrencyPath"]))
        else:
            concurrency = int(state.get("MaxConcurrency", 0))
        processor = state.get("ItemProcessor") or state["Iterator"]
        workers = concurrency if concurrency > 0 else max(1, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="map") as pool:
            futures = [pool.submit(self._run_machine, processor, item) for item in items]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                for future in futures:
                    future.cancel()
                raise failed[0].exception()  # type: ignore[misc]
            return [f.result() for f in futures]


@dataclass
class Execution:
    name: str
    status: str = "RUNNING"
    output: Any = None
    error: StatesError | None = None
    thread: threading.Thread | None = None
    task_seconds: dict[str, float] = field(default_factory=dict)


class LocalStepFunctions:
    """StartExecution for the local runner: unique execution names, runs in the background like the service."""

    def __init__(self, definition: dict[str, Any], invoke_task: TaskInvoker, interval_scale: float = 1.0) -> None:
        self.definition = definition
        self.invoke_task = invoke_task
        self.interval_scale = interval_scale
        self.executions: dict[str, Execution] = {}
        self._lock = threading.Lock()

    def start_execution(self, name: str, execution_input: Any) -> Execution:
        with self._lock:
            if name in self.executions:
                raise ExecutionAlreadyExists(name)
            execution = self.executions[name] = Execution(name)
        runner = AslRunner(self.definition, self.invoke_task, self.interval_scale)
        execution.task_seconds = runner.task_seconds

        def run() -> None:
            try:
                execution.output = runner.run(execution_input)
                execution.status = "SUCCEEDED"
            except StatesError as failure:
                execution.error, execution.status = failure, "FAILED"
            except Exception as unexpected:
                logger.exception("local execution %s crashed", name)
                execution.error = StatesError("States.Runtime", str(unexpected))
                execution.status = "FAILED"

        execution.thread = threading.Thread(target=run, name=f"sfn-{name}", daemon=True)
        execution.thread.start()
        return execution

    def wait(self, name: str, timeout: float | None = None) -> Execution:
        execution = self.executions[name]
        if execution.thread is not None:
            execution.thread.join(timeout)
        return execution

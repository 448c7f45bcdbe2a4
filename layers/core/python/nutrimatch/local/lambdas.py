"""Running the real Lambda handlers in-process: import them from functions/ and call them with a context."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nutrimatch.api.modules import import_function_module
from nutrimatch.settings import REPO_ROOT

FUNCTIONS_DIR = REPO_ROOT / "functions"
LAMBDA_TIMEOUT_MS = 900_000

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _deadline: float = field(default_factory=lambda: time.monotonic() + LAMBDA_TIMEOUT_MS / 1000)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:nutrimatch-{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(name: str, directory: Path = FUNCTIONS_DIR) -> Handler:
    """The `handler` of functions/<name>.py, imported once per process like a warm Lambda."""
    handler: Handler = import_function_module(directory, name).handler
    return handler


def load_handler_ref(ref: str, directory: Path = FUNCTIONS_DIR) -> Handler:
    """A "module.function" reference, as Lambda's handler setting and the state machine wiring give it."""
    module, _, attribute = ref.rpartition(".")
    handler: Handler = getattr(import_function_module(directory, module), attribute)
    return handler


_instances: dict[tuple[Path, str], threading.Lock] = {}
_instances_lock = threading.Lock()


def _one_at_a_time(directory: Path, name: str) -> threading.Lock:
    with _instances_lock:
        return _instances.setdefault((directory, name), threading.Lock())


def invoke(name: str, event: dict[str, Any], directory: Path = FUNCTIONS_DIR) -> Any:
    """One invocation at a time per function, as one Lambda instance serves them: handlers keep per-request
    state in module globals (Powertools' resolver holds the current event), which threads would share."""
    with _one_at_a_time(directory, name):
        return load_handler(name, directory)(event, LocalLambdaContext(function_name=name))


def invoke_ref(ref: str, event: dict[str, Any], directory: Path = FUNCTIONS_DIR) -> Any:
    """`invoke` for a "module.function" handler reference (scheduled functions)."""
    with _one_at_a_time(directory, ref):
        return load_handler_ref(ref, directory)(event, LocalLambdaContext(function_name=ref))

"""The local Step Functions for ingestion: the deployed ASL file, its Tasks served by the real handlers."""

from __future__ import annotations

import json
from typing import Any

from nutrimatch.ingest.pipeline import ASL_PATH, STEP_HANDLERS
from nutrimatch.local.lambdas import LocalLambdaContext, load_handler_ref
from nutrimatch.local.stepfunctions import LocalStepFunctions

LOCAL_ARN_PREFIX = "arn:aws:lambda:local:000000000000:function:"
# Retry intervals in the ASL are sized for AWS; locally a tenth keeps retries quick.
LOCAL_RETRY_SCALE = 0.1


def local_definition() -> dict[str, Any]:
    text = ASL_PATH.read_text()
    for placeholder, handler in STEP_HANDLERS.items():
        text = text.replace("${" + placeholder + "}", LOCAL_ARN_PREFIX + handler)
    definition: dict[str, Any] = json.loads(text)
    return definition


def invoke_task(resource: str, payload: Any) -> Any:
    ref = resource.removeprefix(LOCAL_ARN_PREFIX)
    return load_handler_ref(ref)(payload, LocalLambdaContext(function_name=ref))


def local_ingest_state_machine() -> LocalStepFunctions:
    return LocalStepFunctions(local_definition(), invoke_task, interval_scale=LOCAL_RETRY_SCALE)

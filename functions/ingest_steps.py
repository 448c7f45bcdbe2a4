"""The Tasks of the ingestion state machine (infra/statemachines/ingest.asl.json), one handler per step."""

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from nutrimatch import aws
from nutrimatch.api import logger
from nutrimatch.db import get_database
from nutrimatch.ingest.bulk import index_leaf as index_job_leaf
from nutrimatch.ingest.finalize import finalize as finalize_job
from nutrimatch.ingest.finalize import mark_failed as mark_job_failed
from nutrimatch.ingest.finalize import publish_matching_snapshot
from nutrimatch.ingest.load import load_chunk as load_job_chunk
from nutrimatch.ingest.merge import merge_chunk as merge_job_chunk
from nutrimatch.ingest.merge import prepare_merge as prepare_job_merge
from nutrimatch.ingest.pipeline import transient_as_retryable
from nutrimatch.ingest.plan import plan as plan_job
from nutrimatch.settings import get_settings


def step(function: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], Any]:
    @logger.inject_lambda_context(clear_state=True)
    @wraps(function)
    def handler(event: dict[str, Any], context: Any) -> Any:
        with transient_as_retryable():
            return function(event, context)

    return handler


def _ids(event: dict[str, Any]) -> tuple[UUID, UUID]:
    return UUID(event["job_id"]), UUID(event["vendor_id"])


@step
def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_id, vendor_id = _ids(event)
    return plan_job(get_settings(), get_database(), aws.client("s3"), job_id, vendor_id)


@step
def load_chunk(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_id, vendor_id = _ids(event)
    return load_job_chunk(get_database(), aws.client("s3"), job_id, vendor_id, int(event["chunk_no"]))


@step
def prepare_merge(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_id, vendor_id = _ids(event)
    return prepare_job_merge(get_settings(), get_database(), job_id, vendor_id)


@step
def merge_chunk(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_id, vendor_id = _ids(event)
    return merge_job_chunk(get_database(), job_id, vendor_id, int(event["chunk_no"]))


@step
def index_leaf(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_id, vendor_id = _ids(event)
    return index_job_leaf(get_database(), job_id, vendor_id, int(event["leaf"]))


@step
def finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_id, vendor_id = _ids(event)
    return finalize_job(get_database(), aws.client("s3"), job_id, vendor_id)


@step
def publish_snapshot(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_id, vendor_id = _ids(event)
    return publish_matching_snapshot(get_database(), job_id, vendor_id)


@step
def mark_failed(event: dict[str, Any], context: Any) -> None:
    job_id, vendor_id = _ids(event)
    logger.warning("ingestion failed", extra={"job_id": str(job_id), "error": (event.get("error") or {}).get("Error")})
    mark_job_failed(get_database(), job_id, vendor_id, event.get("error"))

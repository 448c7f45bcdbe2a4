"""The ingestion state machine's wiring: which handler serves each Task of infra/statemachines/ingest.asl.json.

CDK creates one Lambda per entry and substitutes its ARN for the placeholder; the local runner calls the
handler in-process. One table, so the deployed and the local pipeline cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import IncompleteReadError, ReadTimeoutError, ResponseStreamingError

from nutrimatch.settings import REPO_ROOT

ASL_PATH = REPO_ROOT / "infra" / "statemachines" / "ingest.asl.json"

# ASL substitution name → "module.function" under functions/
STEP_HANDLERS: dict[str, str] = {
    "IngestPlanFunctionArn": "ingest_steps.plan",
    "IngestLoadChunkFunctionArn": "ingest_steps.load_chunk",
    "IngestPrepareMergeFunctionArn": "ingest_steps.prepare_merge",
    "IngestMergeChunkFunctionArn": "ingest_steps.merge_chunk",
    "IngestIndexLeafFunctionArn": "ingest_steps.index_leaf",
    "IngestFinalizeFunctionArn": "ingest_steps.finalize",
    "IngestPublishSnapshotFunctionArn": "ingest_steps.publish_snapshot",
    "IngestMarkFailedFunctionArn": "ingest_steps.mark_failed",
}


# Job-scoped scratch tables are read a few times and dropped: autovacuum would only compete for the cores.
SCRATCH_STORAGE = "WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)"


def staging_table(job_id: object, chunk_no: int) -> str:
    return f"chunk_{str(job_id).replace('-', '')}_{chunk_no:05d}"


def duplicates_table(job_id: object) -> str:
    return f"duplicates_{str(job_id).replace('-', '')}"


def changed_table(job_id: object) -> str:
    return f"changed_{str(job_id).replace('-', '')}"


class JobCancelled(Exception):
    """The job was cancelled while the pipeline ran; the execution stops without touching it further."""


class TransientError(Exception):
    """A failure worth retrying (connection loss, throttling); the state machine retries it with backoff."""


# Network and database hiccups: a retry of the (idempotent) step is the cure.
TRANSIENT = (ConnectionError, TimeoutError, psycopg.OperationalError, BotoConnectionError, ReadTimeoutError,
             ResponseStreamingError, IncompleteReadError)


@contextmanager
def transient_as_retryable() -> Iterator[None]:
    """Report transient failures under the one name the state machine's Retry policies list."""
    try:
        yield
    except TRANSIENT as error:
        raise TransientError(f"{type(error).__name__}: {error}") from error

"""S3 ObjectCreated notifications (through SQS) → one ingestion state machine execution per uploaded job."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from nutrimatch.api import logger
from nutrimatch.db import get_database
from nutrimatch.ingest.executions import starter_for
from nutrimatch.ingest.trigger import parse_record, start_ingestion
from nutrimatch.settings import get_settings

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    for s3_record in record.json_body.get("Records", []):  # s3:TestEvent has none
        uploaded = parse_record(s3_record)
        if uploaded is None:
            continue
        started = start_ingestion(get_database(), starter_for(get_settings()), uploaded)
        logger.info("ingestion trigger", extra={"job_id": str(uploaded.job_id), "started": started})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)

"""The local stand-in for Lambda's SQS event source mapping.

Polls each queue, hands batches to the function the queue feeds in the SQS event shape Lambda uses, and
deletes what succeeded. Partial batch failures (`batchItemFailures`) are honoured: those messages stay and
come back after their visibility timeout, until the queue's redrive policy moves them to the DLQ.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from nutrimatch import aws
from nutrimatch.settings import Settings

logger = logging.getLogger("nutrimatch.pump")

Invoker = Callable[[str, dict[str, Any]], Any]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": a.get("StringValue"), "binaryValue": a.get("BinaryValue"),
                   "stringListValues": [], "binaryListValues": [], "dataType": a["DataType"]}
            for name, a in m.get("MessageAttributes", {}).items()
        },
        "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


class EventPump:
    def __init__(self, settings: Settings, consumers: Mapping[str, str], invoke: Invoker,
                 wait_seconds: int = 1, batch_size: int = 10) -> None:
        """consumers: queue name → name of the function the queue feeds."""
        self.settings = settings
        self.consumers = dict(consumers)
        self.invoke = invoke
        self.wait_seconds = wait_seconds
        self.batch_size = batch_size
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for queue, function in self.consumers.items():
            thread = threading.Thread(target=self._poll, args=(queue, function), name=f"pump-{queue}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.wait_seconds + 5)

    def _poll(self, queue: str, function: str) -> None:
        while not self._stop.is_set():
            try:
                self.drain_once(queue, function)
            except Exception:
                logger.exception("polling %s failed", queue)
                self._stop.wait(1)

    def drain_once(self, queue: str, function: str) -> int:
        """Receive one batch and deliver it; returns the number of messages received."""
        sqs = aws.client("sqs", self.settings)
        url = aws.queue_url(queue, self.settings)
        received = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        try:
            result = self.invoke(function, sqs_event(received, arn, self.settings.aws_region))
        except Exception:
            # A failed invocation fails the whole batch, as with Lambda: nothing is deleted.
            logger.exception("function %s failed on a batch from %s", function, queue)
            return len(received)
        failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ])
        return len(received)

"""SQS queues, each with a dead-letter queue and an alarm on anything landing in it, and the functions they feed."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.alarms import alarm_on_any

# nutrimatch.local.aws_stand_in mirrors this redrive for the local queues.
MAX_RECEIVE_COUNT = 5
# Messages a consumer gets per invocation; consumers report the failed ones (Powertools' BatchProcessor), so
# one bad message is retried alone instead of with its batch.
CONSUMER_BATCH_SIZE = 10
# Lambda's SQS event source advice: a message stays hidden for six times the consumer's timeout, so a slow
# batch is not handed to a second consumer while the first still works on it.
VISIBILITY_TIMEOUT_FACTOR = 6


class QueueWithDlq(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, queue_name: str, visibility_timeout: Duration) -> None:
        super().__init__(scope, construct_id)
        self.visibility_timeout = visibility_timeout
        self.dlq_name = f"{queue_name}-dlq"
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            queue_name=self.dlq_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_name,
            # SQS-managed keys: S3 event notifications cannot publish to a queue under a KMS key without a
            # key policy for s3.amazonaws.com, and these messages carry ids, never PHI.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT),
        )
        self.dlq_alarm = alarm_on_any(
            self,
            "DlqNotEmpty",
            metric=self.dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            description=f"Messages in {self.dlq_name}: processing failed {MAX_RECEIVE_COUNT} times.",
        )

    def add_consumer(self, function: lambda_.Function) -> None:
        """Feed this queue to `function` in batches, failed messages reported one by one."""
        assert function.timeout is not None  # LambdaFactory sets every function's timeout
        timeout = function.timeout.to_seconds()
        if timeout * VISIBILITY_TIMEOUT_FACTOR > self.visibility_timeout.to_seconds():
            raise ValueError(
                f"{self.queue.node.path} hides a message for {self.visibility_timeout.to_seconds()} s, less than "
                f"{VISIBILITY_TIMEOUT_FACTOR} times the {timeout} s timeout of its consumer {function.node.path}"
            )
        function.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=CONSUMER_BATCH_SIZE, report_batch_item_failures=True)
        )


class Queues(Construct):
    """The S3 ingest-event queue and the webhook delivery queue (names as in Settings' defaults)."""

    def __init__(self, scope: Construct, construct_id: str, *, consumer_timeout: Duration) -> None:
        super().__init__(scope, construct_id)
        visibility_timeout = Duration.seconds(consumer_timeout.to_seconds() * VISIBILITY_TIMEOUT_FACTOR)
        self.ingest_events = QueueWithDlq(
            self, "IngestEvents", queue_name="nutrimatch-ingest-events", visibility_timeout=visibility_timeout
        )
        self.webhooks = QueueWithDlq(
            self, "Webhooks", queue_name="nutrimatch-webhooks", visibility_timeout=visibility_timeout
        )

    @property
    def by_setting(self) -> dict[str, QueueWithDlq]:
        """Each queue under the name of the nutrimatch.settings.Settings field that holds its name."""
        return {"ingest_queue": self.ingest_events, "webhook_queue": self.webhooks}

    @property
    def all(self) -> list[QueueWithDlq]:
        return list(self.by_setting.values())

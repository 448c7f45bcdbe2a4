"""SQS queues, each with a dead-letter queue and an alarm on anything landing in it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# nutrimatch.local.aws_stand_in mirrors this redrive for the local queues.
MAX_RECEIVE_COUNT = 5


class QueueWithDlq(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, queue_name: str, visibility_timeout: Duration) -> None:
        super().__init__(scope, construct_id)
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
        self.dlq_alarm = cloudwatch.Alarm(
            self,
            "DlqNotEmpty",
            alarm_description=f"Messages in {self.dlq_name}: processing failed {MAX_RECEIVE_COUNT} times.",
            metric=self.dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


class Queues(Construct):
    """The S3 ingest-event queue and the webhook delivery queue (names as in Settings' defaults)."""

    def __init__(self, scope: Construct, construct_id: str, *, consumer_timeout: Duration) -> None:
        super().__init__(scope, construct_id)
        # A message stays hidden for six times the consumer's timeout, as Lambda's SQS event source advises,
        # so a slow batch is not handed to a second consumer while the first still works on it.
        visibility_timeout = Duration.seconds(consumer_timeout.to_seconds() * 6)
        self.ingest_events = QueueWithDlq(
            self, "IngestEvents", queue_name="nutrimatch-ingest-events", visibility_timeout=visibility_timeout
        )
        self.webhooks = QueueWithDlq(
            self, "Webhooks", queue_name="nutrimatch-webhooks", visibility_timeout=visibility_timeout
        )

    @property
    def all(self) -> list[QueueWithDlq]:
        return [self.ingest_events, self.webhooks]

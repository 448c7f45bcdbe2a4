"""The operations dashboard, the replica-lag and ingestion alarms, and the topic every alarm notifies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.alarms import alarm_on_any
from infra.constructs.queues import QueueWithDlq

ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigw.RestApi,
        functions: Mapping[str, lambda_.IFunction],
        cluster: rds.DatabaseCluster,
        queues: Sequence[QueueWithDlq],
        ingest_state_machine: sfn.StateMachine,
        replica_lag_alarm_ms: int,
    ) -> None:
        super().__init__(scope, construct_id)

        self.alarm_topic = sns.Topic(self, "Alarms", display_name="nutrimatch alarms", enforce_ssl=True)
        Validations.of(self.alarm_topic).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SNS2",
                reason="Alarm notifications carry alarm names and states only, and CloudWatch cannot publish "
                "to a topic under the AWS-managed SNS key.",
            )
        )

        replica_lag = cluster.metric("AuroraReplicaLag", statistic="Maximum", period=ONE_MINUTE)
        self.replica_lag_alarm = cloudwatch.Alarm(
            self,
            "ReplicaLag",
            alarm_description="The Aurora reader lags the writer: reads fall back to the writer "
            "(Settings.replica_max_lag_seconds) and search freshness suffers.",
            metric=replica_lag,
            threshold=replica_lag_alarm_ms,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # An execution fails when MarkFailed has recorded why on the job (a file it cannot read, a step that
        # kept failing): the vendor sees it in the job, operators here.
        self.ingest_failed_alarm = alarm_on_any(
            self,
            "IngestExecutionsFailed",
            metric=ingest_state_machine.metric_failed(statistic="Sum", period=FIVE_MINUTES),
            description="Ingestion executions failed; the job's error and the execution history say why.",
        )
        self.ingest_timed_out_alarm = alarm_on_any(
            self,
            "IngestExecutionsTimedOut",
            metric=ingest_state_machine.metric_timed_out(statistic="Sum", period=FIVE_MINUTES),
            description="Ingestion executions ran out of time: their jobs were neither finalized nor marked failed.",
        )
        for alarm in [
            *(queue.dlq_alarm for queue in queues),
            self.replica_lag_alarm,
            self.ingest_failed_alarm,
            self.ingest_timed_out_alarm,
        ]:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alarm_topic))

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name="nutrimatch")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API latency p95 (ms)",
                left=[rest_api.metric_latency(statistic="p95", period=ONE_MINUTE)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API 5XX",
                left=[rest_api.metric_server_error(statistic="Sum", period=ONE_MINUTE)],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[
                    function.metric_errors(statistic="Sum", period=ONE_MINUTE, label=name)
                    for name, function in functions.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Aurora replica lag (ms)",
                left=[replica_lag],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=replica_lag_alarm_ms, label="alarm")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    queue.dlq.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=ONE_MINUTE, label=queue.dlq_name
                    )
                    for queue in queues
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Ingestion executions",
                left=[
                    ingest_state_machine.metric_started(statistic="Sum", period=ONE_MINUTE),
                    ingest_state_machine.metric_succeeded(statistic="Sum", period=ONE_MINUTE),
                    ingest_state_machine.metric_failed(statistic="Sum", period=ONE_MINUTE),
                    ingest_state_machine.metric_timed_out(statistic="Sum", period=ONE_MINUTE),
                ],
                width=12,
            ),
        )

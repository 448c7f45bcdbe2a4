"""Alarm shapes shared by the constructs that own the watched resources."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct


def alarm_on_any(
    scope: Construct, construct_id: str, *, metric: cloudwatch.IMetric, description: str
) -> cloudwatch.Alarm:
    """In alarm as soon as one period of `metric` counts anything; no data (nothing happened) is fine."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=metric,
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )

"""The upload bucket: browsers and tus clients put multi-GB catalogs here; new objects start an ingest."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# Completed uploads land under this prefix; only they start an ingest.
INCOMING_PREFIX = "incoming/"
# tus PATCH tails under S3's 5 MiB part minimum are parked here until they grow (as tusd's s3store does).
TUS_SCRATCH_PREFIX = "tus-scratch/"


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, ingest_queue: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # S3 server access logging can only deliver to a bucket under S3-managed keys.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.access_logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the access-log bucket itself; logging it into itself would loop.",
            )
        )

        self.upload_bucket = s3.Bucket(
            self,
            "Uploads",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # Catalog files, not PHI. SSE-KMS would also make every presigned part PUT need kms:GenerateDataKey
            # on the signer's role.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="uploads/",
            # Browsers PUT parts straight to presigned URLs and must read each part's ETag to complete.
            cors=[
                s3.CorsRule(
                    allowed_methods=[
                        s3.HttpMethods.PUT,
                        s3.HttpMethods.POST,
                        s3.HttpMethods.GET,
                        s3.HttpMethods.HEAD,
                    ],
                    allowed_origins=["*"],
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3600,
                )
            ],
            lifecycle_rules=[
                # Abandoned multipart uploads are invisible but billed, part by part.
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7)),
                # Scratch holds tus tails and the first part of a presigned upload until it completes (checked
                # as CSV before completion): longer than an upload may stay open (incomplete ones abort at 7 d).
                s3.LifecycleRule(prefix=TUS_SCRATCH_PREFIX, expiration=Duration.days(8)),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.upload_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(ingest_queue),
            s3.NotificationKeyFilter(prefix=INCOMING_PREFIX),
        )
        # The singleton function CDK adds to the stack to configure bucket notifications.
        notifications_handler = Stack.of(self).node.find_child(
            "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
        )
        Validations.of(notifications_handler).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                reason="CDK's bucket-notification function writes only its own logs with this AWS-managed policy.",
            )
        )

    def grant_read_write(self, function: lambda_.Function) -> None:
        """Objects of the upload bucket: presigned multipart uploads, tus parts, error reports."""
        self.upload_bucket.grant_read_write(function)
        stack = Stack.of(self)
        bucket_resource = self.upload_bucket.node.default_child
        assert isinstance(bucket_resource, s3.CfnBucket)
        bucket_logical_id = stack.resolve(stack.get_logical_id(bucket_resource))
        reason = (
            "Uploads are keyed by vendor and job ids the function computes at run time, so it needs every "
            "object of this one bucket and the object-level actions CDK's grant_read_write groups by prefix."
        )
        Validations.of(function).acknowledge(
            *(
                Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason)
                for finding in (
                    "Action::s3:Abort*",
                    "Action::s3:DeleteObject*",
                    "Action::s3:GetBucket*",
                    "Action::s3:GetObject*",
                    "Action::s3:List*",
                    f"Resource::<{bucket_logical_id}.Arn>/*",
                )
            )
        )

"""moto in server mode standing in for S3, SQS, Secrets Manager and KMS, and the resources the product needs.

`provision` is idempotent: it creates what is missing and leaves what exists, so it runs at every start.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from moto.server import ThreadedMotoServer

from nutrimatch import aws
from nutrimatch.settings import Settings

# Matches the DLQ redrive of the deployed queues (infra/constructs/queues.py).
MAX_RECEIVE_COUNT = 5


def start_moto(host: str, port: int) -> ThreadedMotoServer:
    # moto's werkzeug logs every request at INFO; the product's own logs are what matter locally.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server


def _ensure_queue(sqs: Any, name: str, visibility_timeout: int = 60) -> str:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)})
    url: str = sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": str(visibility_timeout)},
    )["QueueUrl"]
    return url


def provision(settings: Settings) -> None:
    s3 = aws.client("s3", settings)
    sqs = aws.client("sqs", settings)
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if settings.upload_bucket not in existing:
        s3.create_bucket(Bucket=settings.upload_bucket)
    s3.put_bucket_cors(
        Bucket=settings.upload_bucket,
        CORSConfiguration={"CORSRules": [{
            "AllowedMethods": ["PUT", "POST", "GET", "HEAD"], "AllowedOrigins": ["*"],
            "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600,
        }]},
    )
    ingest_url = _ensure_queue(sqs, settings.ingest_queue)
    _ensure_queue(sqs, settings.webhook_queue)
    ingest_arn = sqs.get_queue_attributes(QueueUrl=ingest_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=settings.upload_bucket,
        NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": ingest_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
        }]},
    )
    _ensure_secret(settings)
    _ensure_kms_key(settings)


def _ensure_secret(settings: Settings) -> None:
    secrets = aws.client("secretsmanager", settings)
    names = {s["Name"] for s in secrets.list_secrets().get("SecretList", [])}
    if settings.jwt_secret_name not in names and settings.jwt_hs256_secret is not None:
        secrets.create_secret(
            Name=settings.jwt_secret_name,
            SecretString=json.dumps({"hs256_secret": settings.jwt_hs256_secret.get_secret_value()}),
        )


def _ensure_kms_key(settings: Settings) -> None:
    kms = aws.client("kms", settings)
    aliases = {a["AliasName"] for a in kms.list_aliases().get("Aliases", [])}
    if settings.kms_key_alias not in aliases:
        key_id = kms.create_key(Description="nutrimatch PHI envelope key")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=settings.kms_key_alias, TargetKeyId=key_id)

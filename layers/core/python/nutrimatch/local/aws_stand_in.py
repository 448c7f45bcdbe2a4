"""moto in server mode standing in for S3, SQS, Secrets Manager and KMS, and the resources the product needs.

`provision` is idempotent: it creates what is missing and leaves what exists, so it runs at every start.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path
from typing import Any

from moto.kms.models import kms_backends
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

from nutrimatch import aws
from nutrimatch.settings import Settings

MOTO_ACCOUNT = "123456789012"
# Matches the DLQ redrive of the deployed queues (infra/constructs/queues.py).
MAX_RECEIVE_COUNT = 5


def start_moto(host: str, port: int) -> ThreadedMotoServer:
    # moto's werkzeug logs every request at INFO; the product's own logs are what matter locally.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _read_only_the_range()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server


_BYTE_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class _RangeOfKey:
    """An S3 object as seen by a GET of bytes [first, last] of it: its `value` is only those bytes."""

    def __init__(self, key: Any, first: int, last: int) -> None:
        self._key, self.first, self.last = key, first, last

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)

    @property
    def value(self) -> bytes:
        with self._key.lock:
            self._key._value_buffer.seek(self.first)
            data: bytes = self._key._value_buffer.read(self.last - self.first + 1)
            return data


def _read_only_the_range() -> None:
    """moto answers a ranged GET by reading the whole object, then slicing it: 0.25 s of CPU per GET of a
    500 MB object however small the range, where S3 reads the range. Each chunk of an ingestion reads its own
    range of the upload, so the local stack would spend its time copying the file over and over. A GET of one
    byte range `bytes=first-[last]` of an object now reads just that range; anything else is moto's as before."""
    if getattr(S3Response.get_object, "reads_only_the_range", False):
        return
    whole_object_get = S3Response.get_object

    def get_object(self: Any) -> Any:
        requested = _BYTE_RANGE.fullmatch(self.headers.get("range") or "")
        if requested is None or "partNumber" in self.querystring:
            return whole_object_get(self)
        find_key, first, size = self._get_key, int(requested[1]), 0

        def key_of_range() -> tuple[Any, bool]:
            nonlocal size
            key, not_modified = find_key()
            size, last = key.size, min(int(requested[2] or key.size - 1), key.size - 1)
            return (_RangeOfKey(key, first, last) if first <= last else key), not_modified

        self._get_key = key_of_range
        try:
            status, headers, body = whole_object_get(self)
        finally:
            del self._get_key
        if status != 200 or first >= size:
            return status, headers, body  # 304, or a range past the end: moto's answer (416) follows
        for name in [h for h in headers if h.lower().startswith("x-amz-checksum-")]:
            del headers[name]  # a range has no checksum of its own
        headers["content-range"] = f"bytes {first}-{first + len(body) - 1}/{size}"
        headers["content-length"] = str(len(body))
        return 206, headers, body

    get_object.reads_only_the_range = True  # type: ignore[attr-defined]
    S3Response.get_object = get_object  # type: ignore[method-assign]


def _ensure_queue(sqs: Any, name: str, visibility_timeout: int = 60) -> str:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)})
    url: str = sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": str(visibility_timeout)},
    )["QueueUrl"]
    return url


def provision(settings: Settings, state_dir: Path | None = None) -> None:
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
    _ensure_kms_key(settings, state_dir)


def _ensure_secret(settings: Settings) -> None:
    secrets = aws.client("secretsmanager", settings)
    names = {s["Name"] for s in secrets.list_secrets().get("SecretList", [])}
    if settings.jwt_secret_name not in names and settings.jwt_hs256_secret is not None:
        secrets.create_secret(
            Name=settings.jwt_secret_name,
            SecretString=json.dumps({"hs256_secret": settings.jwt_hs256_secret.get_secret_value()}),
        )


def _ensure_kms_key(settings: Settings, state_dir: Path | None) -> None:
    kms = aws.client("kms", settings)
    aliases = {a["AliasName"] for a in kms.list_aliases().get("Aliases", [])}
    if settings.kms_key_alias not in aliases:
        key_id = kms.create_key(Description="nutrimatch PHI envelope key")["KeyMetadata"]["KeyId"]
        if state_dir is not None:
            key_id = _keep_key_across_restarts(key_id, settings.aws_region, state_dir / "kms-key.json")
        kms.create_alias(AliasName=settings.kms_key_alias, TargetKeyId=key_id)


def _keep_key_across_restarts(key_id: str, region: str, record: Path) -> str:
    """moto forgets its keys when it stops, but the database keeps data keys wrapped by them: the local stack
    gives the key the same id and material at every start, so last run's PHI still decrypts."""
    backend = kms_backends[MOTO_ACCOUNT][region]
    key = backend.keys[key_id]
    if not record.exists():
        record.write_text(json.dumps({"id": key.id, "material": base64.b64encode(key.key_material).decode()}))
        record.chmod(0o600)
        return key_id
    saved = json.loads(record.read_text())
    del backend.keys[key_id]
    key.id, key.key_material = saved["id"], base64.b64decode(saved["material"])
    key.arn = key.arn.rsplit("/", 1)[0] + "/" + key.id
    backend.keys[key.id] = key
    return str(key.id)

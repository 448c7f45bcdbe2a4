"""boto3 clients built from settings: AWS itself in Lambda, moto (or any endpoint) locally.

Core adapters take a client from here instead of creating their own, so one setting moves them all.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from nutrimatch.settings import Settings, get_settings

_clients: dict[tuple[str | None, str, str], Any] = {}
_lock = threading.Lock()


def client(service: str, settings: Settings | None = None) -> Any:
    settings = settings or get_settings()
    # Keyed by what the client is built from, not by the settings object: a freed object's id() is
    # reused, and a client cached for a stack that has since stopped would then answer for the new one.
    key = (settings.aws_endpoint_url, settings.aws_region, service)
    with _lock:
        if key not in _clients:
            options: dict[str, Any] = {
                "region_name": settings.aws_region,
                # No SHA-256 of every S3 body for SigV4: over HTTPS (AWS) botocore already sends it unsigned
                # with a checksum, and the same holds over the local stand-in's plain HTTP.
                "config": Config(retries={"mode": "standard", "max_attempts": 5},
                                 s3={"addressing_style": "path", "payload_signing_enabled": False},
                                 max_pool_connections=32),
            }
            if settings.aws_endpoint_url:
                # A local endpoint (moto) accepts any credentials; real AWS uses the normal chain.
                options.update(endpoint_url=settings.aws_endpoint_url,
                               aws_access_key_id="local", aws_secret_access_key="local")
            _clients[key] = boto3.session.Session().client(service, **options)  # type: ignore[call-overload]
        return _clients[key]


def queue_url(name: str, settings: Settings | None = None) -> str:
    return str(client("sqs", settings).get_queue_url(QueueName=name)["QueueUrl"])

"""Test harness: one embedded stack per session, a fresh database per test cloned from the migrated template.

Set NUTRIMATCH_TEST_EXTERNAL=1 with DATABASE_URL, DATABASE_REPLICA_URL, DATABASE_ADMIN_URL, REDIS_URL and
AWS_ENDPOINT_URL to run the suite against servers of your own instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests

from nutrimatch.auth.tokens import mint_local_token
from nutrimatch.db import get_database
from nutrimatch.local.aws_stand_in import provision
from nutrimatch.local.gateway import Gateway
from nutrimatch.local.lambdas import invoke
from nutrimatch.local.pump import EventPump
from nutrimatch.local.stack import LocalStack, Ports
from nutrimatch.routes import QUEUE_CONSUMERS, Role
from nutrimatch.settings import Settings, get_settings
from nutrimatch.tenancy import vendors
from nutrimatch.tenancy.vendors import NewVendor, Vendor

TEMPLATE_DATABASE = "nutrimatch"


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass
class StackInfo:
    environment: dict[str, str]
    stack: LocalStack | None


@dataclass
class TestDatabase:
    name: str
    admin_url: str
    writer_url: str
    replica_url: str | None

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[StackInfo]:
    if os.environ.get("NUTRIMATCH_TEST_EXTERNAL"):
        names = ("DATABASE_URL", "DATABASE_REPLICA_URL", "DATABASE_ADMIN_URL", "REDIS_URL", "AWS_ENDPOINT_URL")
        yield StackInfo({name: os.environ[name] for name in names if name in os.environ}, None)
        return
    # Not pytest's tmp_path: concurrent pytest runs prune each other's numbered temp directories.
    state = Path(tempfile.mkdtemp(prefix="nutrimatch-test-"))
    stack = LocalStack(Settings(), Ports.free(), state_dir=state, durable=False, serve_http=False)
    stack.start()
    saved = {k: os.environ.get(k) for k in stack.environment}
    os.environ.update(stack.environment)
    get_settings.cache_clear()
    try:
        yield StackInfo(dict(stack.environment), stack)
    finally:
        get_database().close()
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@pytest.fixture
def database(local_stack: StackInfo, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestDatabase]:
    """A fresh, migrated database for this test (writer and replica), and settings pointing at it."""
    env = local_stack.environment
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(env["DATABASE_ADMIN_URL"], autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DATABASE}"')
    test_db = TestDatabase(
        name=name,
        admin_url=_with_database(env["DATABASE_ADMIN_URL"], name),
        writer_url=_with_database(env["DATABASE_URL"], name),
        replica_url=_with_database(env["DATABASE_REPLICA_URL"], name) if env.get("DATABASE_REPLICA_URL") else None,
    )
    monkeypatch.setenv("DATABASE_URL", test_db.writer_url)
    monkeypatch.setenv("DATABASE_ADMIN_URL", test_db.admin_url)
    if test_db.replica_url:
        monkeypatch.setenv("DATABASE_REPLICA_URL", test_db.replica_url)
        _wait_for_replica(test_db.replica_url)
    get_settings.cache_clear()
    try:
        yield test_db
    finally:
        get_database().close()
        get_settings.cache_clear()
        with psycopg.connect(env["DATABASE_ADMIN_URL"], autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_for_replica(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def aws_resources(local_stack: StackInfo) -> Settings:
    """moto wiped and provisioned afresh, for tests that inspect buckets or queues."""
    requests.post(f"{local_stack.environment['AWS_ENDPOINT_URL']}/moto-api/reset", timeout=10)
    settings = get_settings()
    provision(settings)
    return settings


@pytest.fixture
def redis_client(local_stack: StackInfo) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(local_stack.environment["REDIS_URL"])
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def gateway(local_stack: StackInfo) -> Iterator[str]:
    """The local API gateway over HTTP, serving the real handlers (e2e tests)."""
    server = Gateway("127.0.0.1", 0)
    server.start()
    yield server.url
    server.stop()


def auth_header(role: Role, vendor_id: object | None = None, user_id: str | None = None) -> dict[str, str]:
    """A bearer token minted with the local shared secret, as `nutrimatch auth token` does."""
    value = mint_local_token(get_settings(), role=role, vendor_id=str(vendor_id) if vendor_id else None,
                             user_id=user_id or f"user-{role.value}")
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def two_vendors(database: TestDatabase) -> tuple[Vendor, Vendor]:
    """Vendors A and B, onboarded with their partitions."""
    db = get_database()
    return (vendors.onboard(db, NewVendor(slug="vendor-a", name="Vendor A")),
            vendors.onboard(db, NewVendor(slug="vendor-b", name="Vendor B")))


@pytest.fixture
def event_pump(local_stack: StackInfo, aws_resources: Settings) -> Iterator[EventPump]:
    """SQS → function delivery as in `make run` (S3 notifications start ingestion), for this test only."""
    settings = get_settings()
    consumers = {getattr(settings, queue): function for queue, function in QUEUE_CONSUMERS.items()}
    pump = EventPump(settings, consumers, invoke, wait_seconds=1)
    pump.start()
    yield pump
    pump.stop()

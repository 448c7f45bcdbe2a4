import json
import os
import socket
import uuid

import psycopg
import pytest
from botocore.exceptions import ClientError
from moto.s3.models import FakeKey

from nutrimatch import aws
from nutrimatch.db.replica import wait_until_replayed
from nutrimatch.local.postgres import shared_buffers_mb
from nutrimatch.local.stack import LocalStack, LocalStackError, Ports
from nutrimatch.settings import Settings, get_settings


def test_a_second_run_on_the_same_state_is_refused_while_the_first_lives(tmp_path, local_stack):
    stack = LocalStack(Settings(), Ports.free(), state_dir=tmp_path)
    tmp_path.mkdir(exist_ok=True)
    # pid 1 is always alive: it stands for another run holding this state directory.
    (tmp_path / "run.json").write_text(json.dumps({"pid": 1}))
    with pytest.raises(LocalStackError, match="already running"):
        stack.start()


def test_leftovers_of_a_crashed_run_are_cleaned_up(tmp_path):
    stack = LocalStack(Settings(), Ports.free(), state_dir=tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"pid": 2**22 + 12345}))  # no such process
    stack.reset()
    assert not tmp_path.exists()


def test_a_port_held_by_another_program_is_named_in_the_error(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        free = Ports.free()
        ports = Ports(free.postgres, free.replica, taken, free.moto, free.gateway)
        with pytest.raises(LocalStackError, match=rf"Redis \(LOCAL_REDIS_PORT\): {taken}"):
            LocalStack(Settings(), ports, state_dir=tmp_path).start()


def test_the_servers_buffer_cache_scales_with_the_machine(local_stack, database):
    assert [shared_buffers_mb(mib * 1024**2) for mib in (512, 8192, 24576, 65536)] == [128, 1024, 2048, 2048]
    for url in (database.admin_url, database.replica_url):
        with psycopg.connect(url) as conn:
            setting = conn.execute("SELECT setting::bigint * 8 / 1024 FROM pg_settings "
                                   "WHERE name = 'shared_buffers'").fetchone()
        assert setting is not None and setting[0] == shared_buffers_mb()


def test_a_ranged_get_reads_only_its_range_of_the_object(local_stack, monkeypatch):
    if local_stack.stack is None:
        pytest.skip("the S3 stand-in runs in another process (NUTRIMATCH_TEST_EXTERNAL)")
    settings, s3 = get_settings(), aws.client("s3")
    data = os.urandom(3 * 2**20)
    key = f"tests/ranges/{uuid.uuid4()}"
    s3.put_object(Bucket=settings.upload_bucket, Key=key, Body=data)
    whole_reads = []
    whole_value = FakeKey.value
    monkeypatch.setattr(FakeKey, "value", property(lambda k: whole_reads.append(k.name) or whole_value.fget(k)))

    def ranged(spec: str) -> tuple[bytes, str]:
        found = s3.get_object(Bucket=settings.upload_bucket, Key=key, Range=spec)
        return found["Body"].read(), found["ContentRange"]

    size = len(data)
    assert ranged("bytes=0-9") == (data[:10], f"bytes 0-9/{size}")
    assert ranged(f"bytes={size - 100}-") == (data[-100:], f"bytes {size - 100}-{size - 1}/{size}")
    assert ranged(f"bytes=2000000-{size * 2}") == (data[2000000:], f"bytes 2000000-{size - 1}/{size}")
    assert whole_reads == []
    assert ranged("bytes=-5") == (data[-5:], f"bytes {size - 5}-{size - 1}/{size}")  # a suffix: moto's way
    with pytest.raises(ClientError, match="InvalidRange"):
        ranged(f"bytes={size}-{size + 10}")
    assert s3.get_object(Bucket=settings.upload_bucket, Key=key)["Body"].read() == data


def test_a_durable_stack_restarts_on_other_ports_with_its_data_and_replica(tmp_path):
    state = tmp_path / "state"
    first = LocalStack(Settings(), Ports.free(), state_dir=state, durable=True, serve_http=False)
    first.start()
    try:
        with psycopg.connect(first.primary.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    finally:
        first.stop()
    ports = Ports.free()
    while {ports.postgres, ports.replica} & {first.ports.postgres, first.ports.replica}:
        ports = Ports.free()
    second = LocalStack(Settings(), ports, state_dir=state, durable=True, serve_http=False)
    second.start()
    try:
        with psycopg.connect(second.primary.url(), autocommit=True) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]
            conn.execute("INSERT INTO kept VALUES (43)")
        wait_until_replayed(second.primary.url(), second.replica.url(), timeout=30)
        with psycopg.connect(second.replica.url()) as replica:
            assert replica.execute("SELECT n FROM kept ORDER BY n").fetchall() == [(42,), (43,)]
    finally:
        second.stop()

import json
import socket

import psycopg
import pytest

from nutrimatch.local.postgres import shared_buffers_mb
from nutrimatch.local.stack import LocalStack, LocalStackError, Ports
from nutrimatch.settings import Settings


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

import time

import psycopg
import pytest

from nutrimatch.db.routing import get_router


def test_rows_written_on_the_writer_reach_the_streaming_replica(database):
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE replicated (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO replicated VALUES (1, 'from the writer')")
    deadline = time.monotonic() + 10
    with psycopg.connect(database.replica_url, autocommit=True) as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        while True:
            try:
                row = replica.execute("SELECT note FROM replicated WHERE id = 1").fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
            if row or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert row == ("from the writer",)


def test_the_replica_refuses_writes(database):
    with psycopg.connect(database.replica_url, autocommit=True) as replica:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            replica.execute("CREATE TABLE nope (id int)")


def test_an_idle_primary_reports_no_lag(database):
    time.sleep(1.2)  # long enough that now() - last replay timestamp would exceed a second
    router = get_router()
    # A process's first probe may catch the server's own WAL (autovacuum, a checkpoint) in flight, and then has
    # only the age of the last commit to go by; from the next probe on, the tracker knows better.
    router.probe()
    time.sleep(0.1)
    assert router.probe() < 0.5

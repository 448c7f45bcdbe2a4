"""The pools hand out connections checked only when they sat idle long enough to have been dropped."""

import psycopg
import pytest

from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.settings import get_settings


def _backend_pid() -> int:
    with scoped_transaction(get_database().writer, None) as conn:
        row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert row is not None
    return int(row["pid"])


def _kill(database, pid: int) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


@pytest.fixture
def one_connection(database, monkeypatch):
    monkeypatch.setenv("DB_POOL_MIN", "1")
    monkeypatch.setenv("DB_POOL_MAX", "1")
    get_settings.cache_clear()
    return database


def test_a_connection_dropped_while_idle_past_the_threshold_is_replaced(one_connection, monkeypatch):
    monkeypatch.setenv("DB_CHECK_IDLE_SECONDS", "0")
    get_settings.cache_clear()
    first = _backend_pid()
    _kill(one_connection, first)
    assert _backend_pid() != first  # the check found it dead; the pool gave a new one instead of an error


def test_a_connection_returned_moments_ago_is_handed_out_without_a_round_trip(one_connection, monkeypatch):
    monkeypatch.setenv("DB_CHECK_IDLE_SECONDS", "3600")
    get_settings.cache_clear()
    first = _backend_pid()
    _kill(one_connection, first)
    # Not checked, so the dead connection is used as is: the request that meets it fails (the price of sparing a
    # round trip on every request), and the pool replaces it afterwards.
    with pytest.raises(psycopg.OperationalError):
        _backend_pid()
    assert _backend_pid() != first

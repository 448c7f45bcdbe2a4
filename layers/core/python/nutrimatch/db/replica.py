"""Replication lag as a reader sees it, and waiting until a replica has replayed what the writer wrote."""

from __future__ import annotations

import time
from typing import Any

import psycopg

# An idle primary sends no transactions, so `now() - pg_last_xact_replay_timestamp()` grows while nothing is
# behind: when everything received has been replayed, the lag is zero.
LAG_SECONDS_SQL = """
SELECT CASE
         WHEN NOT pg_is_in_recovery() THEN 0.0
         WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0.0
         ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0.0)
       END::float8 AS lag_seconds
"""


def lag_seconds(conn: psycopg.Connection[Any]) -> float:
    row = conn.execute(LAG_SECONDS_SQL).fetchone()
    assert row is not None
    value = row["lag_seconds"] if isinstance(row, dict) else row[0]
    return float(value)


WAL_PAGE_BYTES = 8192
_PAGE_HEADER_BYTES = (24, 40)  # a page's header; the longer one starts a WAL segment


def lsn_bytes(lsn: str) -> int:
    """A WAL position (`16/B374D848`) as a byte count."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def replayed_up_to(replay: int, target: int) -> bool:
    """Whether a replica that replayed up to `replay` holds everything the writer wrote before `target`, its
    insert position. When the last record ended exactly where a page starts, the insert position is past that
    page's header while replay stops at the page's start: nothing lies between them."""
    offset = target % WAL_PAGE_BYTES
    return replay >= target or (offset in _PAGE_HEADER_BYTES and replay >= target - offset)


def wait_until_replayed(primary_url: str, replica_url: str, timeout: float) -> float:
    """Wait until the replica has replayed everything the primary has written so far; the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(primary_url, autocommit=True) as primary:
        # The insert position: with synchronous_commit off, a commit may not have been written out yet.
        target = lsn_bytes(_one(primary, "SELECT pg_current_wal_insert_lsn()::text"))
    with psycopg.connect(replica_url, autocommit=True) as replica:
        while not replayed_up_to(lsn_bytes(_one(replica, "SELECT pg_last_wal_replay_lsn()::text")), target):
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the replica did not replay the primary's WAL within {timeout} s")
            time.sleep(0.01)
    return time.monotonic() - started


def _one(conn: psycopg.Connection[Any], query: str) -> str:
    row = conn.execute(query).fetchone()
    if row is None or row[0] is None:
        raise RuntimeError(f"no WAL position from {query!r}: is this a primary and a replica?")
    return str(row[0])

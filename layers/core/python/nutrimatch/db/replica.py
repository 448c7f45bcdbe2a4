"""Replication lag as a reader sees it."""

from __future__ import annotations

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

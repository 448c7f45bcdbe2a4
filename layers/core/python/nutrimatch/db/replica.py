"""Replication lag as a reader sees it, and waiting until a replica has replayed what the writer wrote."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import psycopg

# Where the replica stands: what it has received and replayed (bytes of WAL), how long ago the last commit it
# replayed was made on the writer, and whether a WAL receiver is running (its pid is visible to any role).
REPLAY_POSITION_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::float8 AS received,
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::float8 AS replayed,
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_last_commit,
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS receiving
"""


@dataclass(frozen=True)
class ReplayPosition:
    in_recovery: bool
    received: float | None
    replayed: float | None
    since_last_commit: float | None
    receiving: bool


def replay_position(conn: psycopg.Connection[Any]) -> ReplayPosition:
    row = conn.execute(REPLAY_POSITION_SQL).fetchone()
    assert row is not None
    values = row if isinstance(row, dict) else dict(zip(("in_recovery", "received", "replayed",
                                                          "since_last_commit", "receiving"), row, strict=True))
    return ReplayPosition(**values)


class LagTracker:
    """A replica's lag from successive probes of its position (one tracker per reader and process).

    `now() - pg_last_xact_replay_timestamp()` is the age of the last commit replayed. Alone it overstates the lag
    whenever WAL without a commit is in flight after a quiet spell — a checkpoint, a vacuum, the first commit
    after an idle hour: the last commit is old, yet nothing is late. So, as seen from the probes:
    - everything received has been replayed: no lag (an idle writer is not lag);
    - otherwise, a replica that has now replayed all it had received at an earlier probe is at most the time
      since that probe behind; the lag is the smaller of that and the age of the last commit. With no such
      probe remembered (the first probe of a process, or `remembered` probes in a row behind) only the age of
      the last commit is left.
    WAL the writer has not shipped yet (commits are asynchronous) counts as none — while the replica receives.
    One cut off from the writer (no WAL receiver: the stream broke, the writer is unreachable) has replayed all
    it received however far the writer has moved on, so then the age of the last commit is the lag: an
    overstatement when the writer is idle, which only sends reads to the writer.
    """

    def __init__(self, remembered: int = 600) -> None:
        self._probes: deque[tuple[float, float]] = deque(maxlen=remembered)  # (when, received)

    def lag(self, at: float, position: ReplayPosition) -> float:
        """The lag in seconds at `at` (the tracker's own clock), given the position probed then."""
        if not position.in_recovery:
            return 0.0
        since_last_commit = max(0.0, position.since_last_commit or 0.0)
        received, replayed = position.received, position.replayed
        if received is None or replayed is None or not position.receiving:  # the age of the last commit is all
            self._probes.clear()
            return since_last_commit
        if received <= replayed:
            self._probes.clear()
            self._probes.append((at, received))
            return 0.0
        anchor = max((when for when, then_received in self._probes if then_received <= replayed), default=None)
        if anchor is not None:  # older probes can never be the newest covered one again
            self._probes = deque(((when, r) for when, r in self._probes if when >= anchor),
                                 maxlen=self._probes.maxlen)
        self._probes.append((at, received))
        return since_last_commit if anchor is None else min(since_last_commit, at - anchor)


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

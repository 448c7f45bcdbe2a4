"""Read routing: heavy reads go to the reader (the replica) unless it is too far behind or unreachable.

The replica's lag is measured at most once per `replica_lag_cache_seconds` per process, not on every request
(`nutrimatch.db.replica.LagTracker`: an idle writer is no lag, nor is WAL without commits after a quiet spell).
A lag above `replica_max_lag_seconds`, a reader that does not answer within `replica_connect_timeout_seconds`,
or a connection error during the read sends the read to the writer instead — never an error to the caller.
An unreachable reader is not tried again for `replica_down_retry_seconds`, so an outage costs one slow probe per
process and period, not one per request.
(The probe fails fast; a read that starts in the instant between a good probe and the reader's failure waits
for its connection up to the pool's own timeout, as scoped_transaction takes no timeout of its own.) The lag is
the replica's view: WAL the writer has not shipped yet (commits are asynchronous) counts as none.

Every answer says where it came from: `fresh` (replica, lag within `replica_stale_lag_seconds`), `stale`
(replica, further behind but within the bound) or `primary` (the writer answered). The core knows nothing of
Lambda: metrics go to any sink with Powertools' `add_metric(name=, unit=, value=)` signature.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import psycopg

from nutrimatch.db import Connection, Database, get_database, scoped_transaction
from nutrimatch.db.replica import LagTracker, replay_position

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Freshness(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    PRIMARY = "primary"


class Consistency(StrEnum):
    EVENTUAL = "eventual"  # the replica when it is healthy and close enough
    STRONG = "strong"  # read-your-writes: the writer, always


class FallbackReason(StrEnum):
    NO_REPLICA = "no_replica"
    LAG = "lag"
    READER_DOWN = "reader_down"
    RECOVERY_CONFLICT = "recovery_conflict"


class MetricsSink(Protocol):
    """What the router needs of a metrics recorder (Powertools' `Metrics` fits)."""

    def add_metric(self, *, name: str, unit: Any, value: float) -> None: ...


class _NoMetrics:
    def add_metric(self, *, name: str, unit: Any, value: float) -> None:
        return None


NO_METRICS: MetricsSink = _NoMetrics()


@dataclass(frozen=True)
class Routed(Generic[T]):
    """A read's result and where it was served from."""

    value: T
    freshness: Freshness
    replica_lag_seconds: float | None  # the replica's measured lag; None when it could not be measured


@dataclass(frozen=True)
class _ReplicaState:
    lag_seconds: float | None  # None: the reader did not answer
    measured_at: float


class ReplicaRouter:
    """Routes tenant-scoped reads between a database's reader and writer (one per process and database)."""

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self._clock = clock
        self._state: _ReplicaState | None = None
        self._lag = LagTracker()
        self._lock = threading.Lock()

    def read(self, vendor_id: UUID, work: Callable[[Connection], T], *,
             consistency: Consistency = Consistency.EVENTUAL, metrics: MetricsSink = NO_METRICS) -> Routed[T]:
        """Run `work` in a read-only transaction scoped to the vendor, on the reader when it is fit for it.

        `work` may run twice — once on the reader, which failed, then on the writer — so it must only read.
        The transaction is pipelined: BEGIN and the scope travel with the first query, COMMIT with the last.
        """
        settings = self.database.settings
        reader = self.database.reader
        if consistency is Consistency.STRONG:
            return self._on_writer(vendor_id, work, None)
        if reader is None:
            return self._fall_back(vendor_id, work, None, FallbackReason.NO_REPLICA, metrics)
        lag = self.replica_lag()
        if lag is None:
            return self._fall_back(vendor_id, work, None, FallbackReason.READER_DOWN, metrics)
        metrics.add_metric(name="ReplicaLagSeconds", unit="Seconds", value=lag)
        if lag > settings.replica_max_lag_seconds:
            return self._fall_back(vendor_id, work, lag, FallbackReason.LAG, metrics)
        try:
            with scoped_transaction(reader, vendor_id, read_only=True, pipelined=True) as conn:
                value = work(conn)
        except psycopg.errors.QueryCanceled:
            raise  # a statement timeout: the writer would time out too, with more at stake
        except psycopg.errors.SerializationFailure:
            # A conflict with recovery (replay removed rows the read still needed): the reader is fine.
            return self._fall_back(vendor_id, work, lag, FallbackReason.RECOVERY_CONFLICT, metrics)
        except psycopg.OperationalError as error:
            logger.warning("reader failed during a read (%s); answering from the writer", type(error).__name__)
            self._remember(None)
            return self._fall_back(vendor_id, work, None, FallbackReason.READER_DOWN, metrics)
        freshness = Freshness.FRESH if lag <= settings.replica_stale_lag_seconds else Freshness.STALE
        return Routed(value, freshness, lag)

    def replica_lag(self) -> float | None:
        """The replica's lag in seconds (cached), or None while the reader is unreachable."""
        settings = self.database.settings
        with self._lock:
            state = self._state
            if state is not None:
                ttl = settings.replica_lag_cache_seconds if state.lag_seconds is not None \
                    else settings.replica_down_retry_seconds
                if self._clock() - state.measured_at < ttl:
                    return state.lag_seconds
            try:
                return self._remember(self._probe())
            except psycopg.OperationalError as error:  # PoolTimeout is one too
                logger.warning("reader unreachable (%s); reads go to the writer", type(error).__name__)
                return self._remember(None)

    def probe(self) -> float:
        """The reader's lag measured now, as routing measures it (and then used by routing); raises
        psycopg.OperationalError when the reader is unreachable."""
        with self._lock:
            try:
                lag = self._probe()
            except psycopg.OperationalError:
                self._remember(None)
                raise
            self._remember(lag)
            return lag

    def _probe(self) -> float:
        reader = self.database.reader
        assert reader is not None
        with reader.connection(timeout=self.database.settings.replica_connect_timeout_seconds) as conn:
            return self._lag.lag(self._clock(), replay_position(conn))

    def _remember(self, lag: float | None) -> float | None:
        self._state = _ReplicaState(lag, self._clock())
        return lag

    def _fall_back(self, vendor_id: UUID, work: Callable[[Connection], T], lag: float | None,
                   reason: FallbackReason, metrics: MetricsSink) -> Routed[T]:
        if reason is not FallbackReason.NO_REPLICA:
            logger.info("read answered by the writer: %s", reason.value)
            metrics.add_metric(name="ReplicaFallback", unit="Count", value=1)
        return self._on_writer(vendor_id, work, lag)

    def _on_writer(self, vendor_id: UUID, work: Callable[[Connection], T], lag: float | None) -> Routed[T]:
        with scoped_transaction(self.database.writer, vendor_id, read_only=True, pipelined=True) as conn:
            return Routed(work(conn), Freshness.PRIMARY, lag)


_router: ReplicaRouter | None = None
_router_lock = threading.Lock()


def get_router() -> ReplicaRouter:
    """The process-wide router of the current database (its lag cache survives warm invocations)."""
    global _router
    database = get_database()
    with _router_lock:
        if _router is None or _router.database is not database:
            _router = ReplicaRouter(database)
        return _router

"""Database access: connection pools for the writer and the reader, and tenant-scoped transactions.

Every tenant transaction sets `app.vendor_id` with `set_config(..., true)` — local to the transaction — so a
pooled connection (or an RDS Proxy connection) never carries one tenant's setting into another's request.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from nutrimatch.settings import Settings, get_settings

Connection = psycopg.Connection[dict[str, Any]]


class IdleCheck:
    """Checks a pooled connection before handing it out only when it sat unused long enough to have been dropped
    meanwhile (a Lambda thawed after minutes, a proxy's idle timeout, a failover); one returned moments ago is
    handed out as is, which saves a round trip (a proxy's, on AWS) on every request of a busy instance."""

    def __init__(self, after_seconds: float) -> None:
        self.after_seconds = after_seconds
        self._returned: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()

    def check(self, conn: Connection) -> None:
        returned = self._returned.get(conn)
        # Wall-clock time: a frozen Lambda's monotonic clock need not count the time it was frozen.
        if returned is None or time.time() - returned > self.after_seconds:
            ConnectionPool.check_connection(conn)

    def returned(self, conn: Connection) -> None:
        self._returned[conn] = time.time()


class Database:
    """The writer pool and, when a replica is configured, the reader pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._writer: ConnectionPool[Connection] | None = None
        self._reader: ConnectionPool[Connection] | None = None
        self._lock = threading.Lock()

    def _pool(self, url: str, name: str) -> ConnectionPool[Connection]:
        idle_check = IdleCheck(self.settings.db_check_idle_seconds)
        return ConnectionPool(
            url,
            min_size=self.settings.db_pool_min,
            max_size=self.settings.db_pool_max,
            kwargs={"row_factory": dict_row, "connect_timeout": 5},
            name=name,
            open=True,
            timeout=10,
            check=idle_check.check,
            reset=idle_check.returned,
        )

    @property
    def writer(self) -> ConnectionPool[Connection]:
        with self._lock:
            if self._writer is None:
                self._writer = self._pool(self.settings.database_url, "writer")
            return self._writer

    @property
    def reader(self) -> ConnectionPool[Connection] | None:
        if not self.settings.database_replica_url:
            return None
        with self._lock:
            if self._reader is None:
                self._reader = self._pool(self.settings.database_replica_url, "reader")
            return self._reader

    def close(self) -> None:
        with self._lock:
            for pool in (self._writer, self._reader):
                if pool is not None:
                    pool.close()
            self._writer = self._reader = None


@contextmanager
def scoped_transaction(
    pool: ConnectionPool[Connection], vendor_id: UUID | str | None, *, platform_admin: bool = False,
    read_only: bool = False, pipelined: bool = False,
) -> Iterator[Connection]:
    """A transaction whose row-level security scope is the given vendor (none: no tenant rows visible).

    `platform_admin` opens the vendors table (not tenant data) to the platform's own administrators.
    `pipelined` runs it in pipeline mode: statements are sent without waiting for the previous one's result,
    so BEGIN and the scope travel with the first query, and the last statements with COMMIT — one round trip
    each instead of one per statement (no COPY in pipeline mode; an error may surface at a later statement).
    """
    with pool.connection() as conn, conn.pipeline() if pipelined else nullcontext(), conn.transaction():
        if read_only:
            conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(
            "SELECT set_config('app.vendor_id', %s, true), set_config('app.platform_admin', %s, true)",
            (str(vendor_id) if vendor_id else "", "on" if platform_admin else ""),
        )
        yield conn


_database: Database | None = None
_database_lock = threading.Lock()


def get_database() -> Database:
    """The process-wide database (pools survive across warm Lambda invocations)."""
    global _database
    with _database_lock:
        settings = get_settings()
        if _database is None or _database.settings is not settings:
            if _database is not None:
                _database.close()
            _database = Database(settings)
        return _database


def admin_connect(settings: Settings | None = None) -> psycopg.Connection[Any]:
    """An owner connection, for migrations and partition management only."""
    return psycopg.connect((settings or get_settings()).database_admin_url, autocommit=True)

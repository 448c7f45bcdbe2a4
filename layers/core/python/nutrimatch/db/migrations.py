"""Plain SQL migrations: applied in file-name order, each inside its own transaction, recorded with a checksum.

A migration that was applied and then edited is an error (its checksum no longer matches): migrations are
history, so a change is a new file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nutrimatch.errors import DomainError

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every migrator so two of them never interleave.
_MIGRATION_LOCK = 727_001

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(DomainError):
    code = "migration_error"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationStatus:
    migration: Migration
    applied: bool
    changed: bool


def discover(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name must look like 0001_name.sql: {path.name}")
        migrations.append(Migration(int(match["version"]), match["name"], path))
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"two migrations share a version number in {directory}")
    return migrations


def _applied(conn: psycopg.Connection) -> dict[int, str]:
    conn.execute(_BOOKKEEPING)
    return dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())


def status(conn: psycopg.Connection, directory: Path) -> list[MigrationStatus]:
    applied = _applied(conn)
    return [
        MigrationStatus(m, m.version in applied, m.version in applied and applied[m.version] != m.checksum)
        for m in discover(directory)
    ]


def migrate(conn: psycopg.Connection, directory: Path) -> list[Migration]:
    """Apply every pending migration; returns those applied. Refuses to run if an applied one changed."""
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        changed = [s.migration.path.name for s in status(conn, directory) if s.changed]
        if changed:
            raise MigrationError(
                f"already-applied migration(s) changed since they ran: {', '.join(changed)}; "
                "write a new migration instead of editing an applied one"
            )
        done = []
        for entry in status(conn, directory):
            if entry.applied:
                continue
            migration = entry.migration
            with conn.transaction():
                conn.execute(migration.sql)  # type: ignore[call-overload]
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            done.append(migration)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))

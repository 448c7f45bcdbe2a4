import shutil
from pathlib import Path

import psycopg
import pytest

from nutrimatch.db.migrations import MigrationError, discover, migrate, status
from nutrimatch.local.stack import MIGRATIONS_DIR


@pytest.fixture
def empty_database(local_stack):
    admin = local_stack.environment["DATABASE_ADMIN_URL"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS migrations_check WITH (FORCE)")
        conn.execute("CREATE DATABASE migrations_check TEMPLATE template0")
    url = admin.rsplit("/", 1)[0] + "/migrations_check"
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE migrations_check WITH (FORCE)")


def test_all_migrations_apply_to_an_empty_database_in_order(empty_database):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        applied = migrate(conn, MIGRATIONS_DIR)
        assert [m.version for m in applied] == [m.version for m in discover(MIGRATIONS_DIR)]
        rows = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(m.version, m.checksum) for m in applied]
        assert conn.execute("SELECT to_regprocedure('app_vendor_id()') IS NOT NULL").fetchone() == (True,)
        # A second run has nothing to do.
        assert migrate(conn, MIGRATIONS_DIR) == []


def test_an_edited_applied_migration_is_refused(empty_database, tmp_path: Path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        migrate(conn, directory)
        first = sorted(directory.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited after it ran\n")
        assert status(conn, directory)[0].changed is True
        with pytest.raises(MigrationError, match=first.name):
            migrate(conn, directory)


def test_a_failing_migration_leaves_nothing_half_applied(empty_database, tmp_path: Path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_ok.sql").write_text("CREATE TABLE kept (id int);")
    (directory / "0002_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            migrate(conn, directory)
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('kept') IS NOT NULL").fetchone() == (True,)
        assert [s.applied for s in status(conn, directory)] == [True, False]


def test_badly_named_migration_files_are_rejected(tmp_path: Path):
    (tmp_path / "1_no_padding.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"0001_name\.sql"):
        discover(tmp_path)

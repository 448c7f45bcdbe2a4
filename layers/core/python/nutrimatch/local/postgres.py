"""PostgreSQL 16 from the pgserver wheel, run by us: a primary on loopback and a streaming replica of it.

pgserver only supplies the binaries here; we drive initdb/pg_ctl/pg_basebackup ourselves so the servers
listen on TCP (like RDS Proxy endpoints do) and so the replica can be built from the primary. As root,
PostgreSQL refuses to run, so every server command runs as the unprivileged `pgserver` user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

SYSTEM_USER = "pgserver"
APP_ROLE = "nutrimatch_app"

_PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
wal_keep_size = '512MB'
shared_buffers = '{shared_buffers_mb}MB'
work_mem = '32MB'
maintenance_work_mem = '256MB'
max_wal_size = '4GB'
checkpoint_timeout = '15min'
synchronous_commit = off
max_connections = 200
max_worker_processes = 8
max_parallel_workers_per_gather = 2
log_min_messages = warning
log_min_duration_statement = -1
{extra}
"""

_HBA = """
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
local   replication  all                 trust
host    replication  all   127.0.0.1/32  trust
"""


class PostgresError(RuntimeError):
    pass


def _run_as_server_user() -> dict[str, object]:
    # The group must change too: with root's group, a root-owned 0705 parent (pytest's temp dirs) is closed.
    if os.geteuid() != 0:
        return {}
    return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}


def _ensure_system_user() -> None:
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", SYSTEM_USER], check=True, capture_output=True)


def _hand_to_server_user(path: Path) -> None:
    """The server user must own its directories and be able to traverse every parent."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def pg_bin(name: str) -> str:
    # Located without importing pgserver, whose import starts managing servers of its own.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise PostgresError("the pgserver package is not installed (pip install 'nutrimatch[local]')")
    return str(Path(spec.origin).parent / "pginstall" / "bin" / name)


def _pg(args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # type: ignore[call-overload]
        args, capture_output=True, text=True, timeout=timeout, **_run_as_server_user()
    )
    if result.returncode != 0:
        raise PostgresError(f"{Path(args[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result  # type: ignore[no-any-return]


@dataclass
class PostgresNode:
    """One server: a data directory, a TCP port on loopback and a socket directory."""

    data_dir: Path
    port: int
    socket_dir: Path
    host: str = "127.0.0.1"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.initialized:
            return False
        result = subprocess.run(  # type: ignore[call-overload]
            [pg_bin("pg_ctl"), "-D", str(self.data_dir), "status"], capture_output=True, text=True,
            **_run_as_server_user(),
        )
        return result.returncode == 0  # type: ignore[no-any-return]

    def start(self) -> None:
        if self.is_running():
            return
        _hand_to_server_user(self.socket_dir)
        _hand_to_server_user(self.data_dir)
        # A postmaster.pid left by a killed server would make pg_ctl refuse to start; pg_ctl status above
        # already told us no server owns it.
        stale_pid = self.data_dir / "postmaster.pid"
        if stale_pid.exists():
            stale_pid.unlink()
        self.log_file.touch()
        _hand_to_server_user(self.log_file)
        try:
            # The port on the command line: a durable stack restarted on other ports keeps its data directory.
            _pg([pg_bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60", "-l", str(self.log_file),
                 "-o", f"-p {self.port}", "start"])
        except PostgresError as error:
            tail = self.log_file.read_text(errors="replace")[-2000:]
            raise PostgresError(f"{error}\n--- {self.log_file} ---\n{tail}") from error

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            _pg([pg_bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-m", mode, "stop"])

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def shared_buffers_mb(total_bytes: int | None = None) -> int:
    """An eighth of the machine's memory for each server (the replica copies the primary's settings), within
    128 MB and 2 GB. Aurora gives its buffer cache three quarters of an instance's memory; with 256 MB, a replica
    searching 2M products read two blocks in five from the OS cache. Only what is used is allocated, so a small
    dataset costs no more memory."""
    total = total_bytes if total_bytes is not None else psutil.virtual_memory().total
    return max(128, min(2048, total // 8 // 1024**2))


def init_primary(node: PostgresNode, *, durable: bool = True) -> None:
    """initdb a new primary configured for streaming replication (idempotent)."""
    _ensure_system_user()
    node.socket_dir.mkdir(parents=True, exist_ok=True)
    if node.initialized:
        return
    node.data_dir.mkdir(parents=True, exist_ok=True)
    _hand_to_server_user(node.data_dir.parent)
    _pg([pg_bin("initdb"), "-D", str(node.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
         "--locale=C.UTF-8", "--no-instructions"])
    extra = "" if durable else "fsync = off\nfull_page_writes = off\n"
    conf = _PRIMARY_CONF.format(port=node.port, socket_dir=node.socket_dir, extra=extra,
                                shared_buffers_mb=shared_buffers_mb())
    with (node.data_dir / "postgresql.conf").open("a") as handle:
        handle.write(conf)
    (node.data_dir / "pg_hba.conf").write_text(_HBA)
    _hand_to_server_user(node.data_dir)


def init_replica(primary: PostgresNode, replica: PostgresNode, slot: str = "replica1") -> None:
    """Clone the running primary with pg_basebackup -R into a hot standby streaming from it (idempotent)."""
    if replica.initialized:
        return
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        # The slot survives a deleted replica directory; a new base backup must start from a fresh slot.
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active", (slot,)
        )
    if replica.data_dir.exists():
        shutil.rmtree(replica.data_dir)
    replica.data_dir.parent.mkdir(parents=True, exist_ok=True)
    _hand_to_server_user(replica.data_dir.parent)
    _pg([pg_bin("pg_basebackup"), "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", "postgres",
         "-D", str(replica.data_dir), "-R", "-X", "stream", "-c", "fast", "-C", "-S", slot], timeout=600)
    with (replica.data_dir / "postgresql.conf").open("a") as handle:
        handle.write(f"\nport = {replica.port}\nunix_socket_directories = '{replica.socket_dir}'\n")
    _hand_to_server_user(replica.data_dir)


def follow_primary(primary: PostgresNode, replica: PostgresNode) -> None:
    """Points the replica's streaming connection (written by pg_basebackup -R) at the primary's current port."""
    settings = replica.data_dir / "postgresql.auto.conf"
    text = settings.read_text()
    pointed = re.sub(r"(primary_conninfo = '.*?\bport=)\d+", rf"\g<1>{primary.port}", text)
    if pointed != text:
        settings.write_text(pointed)


def ensure_database(primary: PostgresNode, name: str) -> None:
    """The product database and the application role: a non-owner without BYPASSRLS."""
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone():
            conn.execute(
                f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_ROLE}' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
            )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def wait_for_database_on_replica(replica: PostgresNode, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(replica.url(name), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

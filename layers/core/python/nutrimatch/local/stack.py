"""The embedded local stack: PostgreSQL primary + streaming replica, Redis, moto, the gateway, the pump and the
scheduler.

All state lives under one directory (`.nutrimatch/` by default). A second start reuses it; a start while
another run is alive is refused; leftovers of a crashed run (servers still up, stale pid files) are found and
cleaned up before starting again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from nutrimatch.db import admin_connect
from nutrimatch.db.migrations import migrate
from nutrimatch.local.aws_stand_in import provision, start_moto
from nutrimatch.local.gateway import Gateway
from nutrimatch.local.lambdas import invoke, invoke_ref
from nutrimatch.local.postgres import (
    APP_ROLE,
    PostgresNode,
    ensure_database,
    follow_primary,
    init_primary,
    init_replica,
    wait_for_database_on_replica,
)
from nutrimatch.local.pump import EventPump
from nutrimatch.local.redis_server import start_redis
from nutrimatch.local.scheduler import Scheduler
from nutrimatch.routes import QUEUE_CONSUMERS, SCHEDULED
from nutrimatch.settings import REPO_ROOT, Settings

logger = logging.getLogger("nutrimatch.local")

DATABASE_NAME = "nutrimatch"
MIGRATIONS_DIR = REPO_ROOT / "sql" / "migrations"


class LocalStackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Ports:
    postgres: int
    replica: int
    redis: int
    moto: int
    gateway: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Ports:
        return cls(settings.local_pg_port, settings.local_replica_port, settings.local_redis_port,
                   settings.local_moto_port, settings.local_gateway_port)

    @classmethod
    def free(cls) -> Ports:
        return cls(*(_free_port() for _ in range(5)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
        return False


def stack_environment(ports: Ports, host: str = "127.0.0.1", database: str = DATABASE_NAME) -> dict[str, str]:
    """The environment that points every part of the product at this stack."""
    return {
        "DATABASE_URL": f"postgresql://{APP_ROLE}@{host}:{ports.postgres}/{database}",
        "DATABASE_REPLICA_URL": f"postgresql://{APP_ROLE}@{host}:{ports.replica}/{database}",
        "DATABASE_ADMIN_URL": f"postgresql://postgres@{host}:{ports.postgres}/{database}",
        "REDIS_URL": f"redis://{host}:{ports.redis}/0",
        "AWS_ENDPOINT_URL": f"http://{host}:{ports.moto}",
    }


class LocalStack:
    def __init__(self, settings: Settings, ports: Ports | None = None, *, state_dir: Path | None = None,
                 durable: bool = True, serve_http: bool = True) -> None:
        self.settings = settings
        self.ports = ports or Ports.from_settings(settings)
        self.state_dir = (state_dir or settings.local_state_dir).resolve()
        self.host = settings.local_host
        self.durable = durable
        self.serve_http = serve_http
        sockets = self.state_dir / "sockets"
        self.primary = PostgresNode(self.state_dir / "pg-primary", self.ports.postgres, sockets, self.host)
        self.replica = PostgresNode(self.state_dir / "pg-replica", self.ports.replica, sockets, self.host)
        self._redis: subprocess.Popen[bytes] | None = None
        self._moto: Any = None
        self.gateway: Gateway | None = None
        self.pump: EventPump | None = None
        self.scheduler: Scheduler | None = None

    @property
    def _run_file(self) -> Path:
        return self.state_dir / "run.json"

    @property
    def environment(self) -> dict[str, str]:
        return stack_environment(self.ports, self.host)

    def settings_for_stack(self) -> Settings:
        return self.settings.model_copy(update={k.lower(): v for k, v in self.environment.items()})

    # --- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._recover_from_crashed_run()
        self._check_ports()
        self._run_file.write_text(json.dumps({"pid": os.getpid(), "ports": self.ports.__dict__}))
        try:
            self._start_postgres()
            self._redis = start_redis(self.state_dir / "redis", self.host, self.ports.redis)
            self._run_file.write_text(json.dumps(
                {"pid": os.getpid(), "redis_pid": self._redis.pid, "ports": self.ports.__dict__}))
            self._moto = start_moto(self.host, self.ports.moto)
            settings = self.settings_for_stack()
            provision(settings, self.state_dir)
            if self.serve_http:
                self.gateway = Gateway(self.host, self.ports.gateway)
                self.gateway.start()
                consumers = {getattr(settings, queue): fn for queue, fn in QUEUE_CONSUMERS.items()}
                self.pump = EventPump(settings, consumers, invoke)
                self.pump.start()
                self.scheduler = Scheduler(SCHEDULED, invoke_ref)
                self.scheduler.start()
        except BaseException:
            self.stop()
            raise

    def _start_postgres(self) -> None:
        init_primary(self.primary, durable=self.durable)
        self.primary.start()
        self.primary.wait_ready()
        ensure_database(self.primary, DATABASE_NAME)
        with admin_connect(self.settings_for_stack()) as conn:
            migrate(conn, MIGRATIONS_DIR)
        init_replica(self.primary, self.replica)
        follow_primary(self.primary, self.replica)
        self.replica.start()
        self.replica.wait_ready()
        wait_for_database_on_replica(self.replica, DATABASE_NAME)

    def stop(self) -> None:
        for part in (self.scheduler, self.pump, self.gateway):
            if part is not None:
                part.stop()
        self.scheduler = self.pump = self.gateway = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._redis is not None:
            self._redis.terminate()
            self._redis.wait(timeout=10)
            self._redis = None
        for node in (self.replica, self.primary):
            node.stop()
        self._run_file.unlink(missing_ok=True)

    def reset(self) -> None:
        """Wipe all local state (refused while a run is alive)."""
        self._recover_from_crashed_run()
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)

    # --- crash recovery -----------------------------------------------------------------------------------
    def _recover_from_crashed_run(self) -> None:
        if not self._run_file.exists():
            # Servers may still run from a run whose record was lost; pg_ctl knows.
            for node in (self.replica, self.primary):
                node.stop()
            return
        record = json.loads(self._run_file.read_text() or "{}")
        pid = record.get("pid")
        if pid and pid != os.getpid() and psutil.pid_exists(pid):
            raise LocalStackError(
                f"a local stack is already running (pid {pid}) on {self.state_dir}; stop it with Ctrl-C in its "
                f"terminal or `kill {pid}`"
            )
        logger.warning("found leftovers of a crashed run (pid %s); cleaning up", pid)
        redis_pid = record.get("redis_pid")
        if redis_pid and psutil.pid_exists(redis_pid):
            process = psutil.Process(redis_pid)
            if "redis-server" in process.name():
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=10)
        for node in (self.replica, self.primary):
            node.stop()
        self._run_file.unlink(missing_ok=True)

    def _check_ports(self) -> None:
        wanted = {"PostgreSQL primary (LOCAL_PG_PORT)": self.ports.postgres,
                  "PostgreSQL replica (LOCAL_REPLICA_PORT)": self.ports.replica,
                  "Redis (LOCAL_REDIS_PORT)": self.ports.redis, "moto (LOCAL_MOTO_PORT)": self.ports.moto}
        if self.serve_http:
            wanted["gateway (LOCAL_GATEWAY_PORT)"] = self.ports.gateway
        busy = [f"{what}: {port}" for what, port in wanted.items() if _port_in_use(self.host, port)]
        if busy:
            raise LocalStackError(
                "port(s) already in use by another program: " + ", ".join(busy)
                + ". Free them, or choose other ports with the environment variables named."
            )

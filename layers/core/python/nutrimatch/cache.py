"""The Redis client, one per process and URL (connections reused across warm invocations)."""

from __future__ import annotations

import threading

import redis

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def redis_client(url: str) -> redis.Redis:
    with _lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1,
                                                 health_check_interval=30)
        return _clients[url]

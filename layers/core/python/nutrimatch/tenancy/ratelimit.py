"""Token-bucket rate limits in Redis, per vendor and per API key, atomic through one Lua script."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis

# Refill by elapsed time, then take one token if there is one. Runs atomically inside Redis, so concurrent
# Lambdas never both spend the last token.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int

    def headers(self) -> dict[str, str]:
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset_seconds)}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


class RateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(_TOKEN_BUCKET)

    def take(self, bucket: str, per_second: int, burst: int) -> Decision:
        allowed, tokens_text = self._script(keys=[f"ratelimit:{bucket}"],
                                            args=[per_second, burst, int(time.time() * 1000)])
        tokens = float(tokens_text)
        return Decision(
            allowed=bool(allowed), limit=burst, remaining=int(tokens),
            reset_seconds=math.ceil((burst - tokens) / per_second),
            retry_after_seconds=0 if allowed else max(1, math.ceil((1 - tokens) / per_second)),
        )

    def take_all(self, buckets: list[str], per_second: int, burst: int) -> Decision:
        """Spend from every bucket (vendor, then key); the tightest answer is the caller's."""
        decisions = [self.take(bucket, per_second, burst) for bucket in buckets]
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return max(refused, key=lambda d: d.retry_after_seconds)
        return min(decisions, key=lambda d: d.remaining)

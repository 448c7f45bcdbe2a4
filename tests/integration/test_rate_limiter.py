"""The Redis token bucket itself: atomic under concurrency, per bucket, refilling with time."""

import time
from concurrent.futures import ThreadPoolExecutor

from nutrimatch.tenancy.ratelimit import RateLimiter


def test_concurrent_callers_never_spend_more_than_the_burst(redis_client):
    limiter = RateLimiter(redis_client)
    with ThreadPoolExecutor(max_workers=16) as pool:
        decisions = list(pool.map(lambda _: limiter.take("vendor:v1", per_second=1, burst=10), range(60)))
    assert sum(d.allowed for d in decisions) == 10


def test_the_tightest_bucket_decides(redis_client):
    limiter = RateLimiter(redis_client)
    for _ in range(2):
        assert limiter.take("key:k1", per_second=1, burst=2).allowed
    decision = limiter.take_all(["vendor:v2", "key:k1"], per_second=1, burst=2)
    assert not decision.allowed
    assert decision.headers()["Retry-After"] == "1"
    # A different key of the same vendor still has its own tokens.
    assert limiter.take_all(["vendor:v2", "key:k2"], per_second=1, burst=2).allowed


def test_tokens_refill_at_the_plan_rate(redis_client):
    limiter = RateLimiter(redis_client)
    for _ in range(5):
        limiter.take("vendor:v3", per_second=10, burst=5)
    assert not limiter.take("vendor:v3", per_second=10, burst=5).allowed
    time.sleep(0.25)
    refilled = [limiter.take("vendor:v3", per_second=10, burst=5).allowed for _ in range(3)]
    assert refilled[:2] == [True, True]

"""The replica router measures lag at most once per cache period, and leaves a failed reader alone longer."""

import psycopg
import pytest

from nutrimatch.db import Database
from nutrimatch.db.routing import ReplicaRouter
from nutrimatch.settings import Settings


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class ProbedRouter(ReplicaRouter):
    """A router whose probe of the reader answers from a script instead of a server."""

    def __init__(self, answers, clock):
        settings = Settings(replica_lag_cache_seconds=1.0, replica_down_retry_seconds=5.0)
        super().__init__(Database(settings), clock=clock)
        self.answers = list(answers)
        self.probes = 0

    def _probe(self):
        self.probes += 1
        answer = self.answers.pop(0)
        if answer is None:
            raise psycopg.OperationalError("connection refused")
        return answer


def test_lag_is_measured_once_per_cache_period():
    clock = Clock()
    router = ProbedRouter([0.2, 3.0], clock)
    assert router.replica_lag() == 0.2
    clock.now += 0.9
    assert router.replica_lag() == 0.2
    assert router.probes == 1
    clock.now += 0.2
    assert router.replica_lag() == 3.0
    assert router.probes == 2


def test_an_unreachable_reader_is_not_probed_again_before_the_retry_period():
    clock = Clock()
    router = ProbedRouter([None, 0.0], clock)
    assert router.replica_lag() is None
    clock.now += 4.9
    assert router.replica_lag() is None
    assert router.probes == 1
    clock.now += 0.2
    assert router.replica_lag() == 0.0


def test_a_health_probe_measures_now_and_routing_uses_its_measurement():
    clock = Clock()
    router = ProbedRouter([0.2, 3.0, None], clock)
    assert router.replica_lag() == 0.2
    assert router.probe() == 3.0  # within the cache period, yet measured afresh
    assert router.replica_lag() == 3.0
    with pytest.raises(psycopg.OperationalError):
        router.probe()
    assert router.replica_lag() is None  # routing leaves the unreachable reader alone
    assert router.probes == 3

"""The local stand-in for EventBridge rate rules."""

import threading
import time

from nutrimatch.local.scheduler import Scheduler
from nutrimatch.routes import SCHEDULED, Schedule


def test_each_scheduled_function_runs_on_its_timer_and_a_failure_does_not_stop_it():
    calls: list[str] = []
    twice = threading.Event()

    def invoke(handler: str, event: dict) -> dict:
        calls.append(handler)
        if calls.count("broken.handler") >= 2:
            twice.set()
        if handler == "broken.handler":
            raise RuntimeError("the scheduled run failed")
        return {"done": 1}

    schedules = {"cleanup": Schedule("cleanup.handler", every_hours=1),
                 "broken": Schedule("broken.handler", every_hours=1)}
    scheduler = Scheduler(schedules, invoke, period_seconds=0.05)
    scheduler.start()
    assert twice.wait(5)
    scheduler.stop()
    stopped_at = len(calls)
    time.sleep(0.2)
    assert len(calls) == stopped_at  # stopped means stopped
    assert "cleanup.handler" in calls


def test_nothing_runs_before_the_first_period_has_passed():
    calls: list[str] = []
    scheduler = Scheduler(SCHEDULED, lambda handler, event: calls.append(handler))
    scheduler.start()
    time.sleep(0.1)
    scheduler.stop()
    assert calls == []

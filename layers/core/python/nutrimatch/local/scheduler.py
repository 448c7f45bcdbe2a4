"""The local stand-in for EventBridge rate rules: each function of nutrimatch.routes.SCHEDULED runs on its
timer in a thread of the local stack, as the deployed rule invokes it (an empty event; one run at a time).

A failed run is logged and the timer goes on, as a scheduled Lambda's failure does not stop its rule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from nutrimatch.routes import Schedule

logger = logging.getLogger("nutrimatch.scheduler")

Invoker = Callable[[str, dict[str, Any]], Any]


class Scheduler:
    def __init__(self, schedules: Mapping[str, Schedule], invoke: Invoker, *,
                 period_seconds: float | None = None) -> None:
        """invoke(handler reference, event); `period_seconds` replaces every schedule's own rate (tests)."""
        self.schedules = dict(schedules)
        self.invoke = invoke
        self.period_seconds = period_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, schedule in self.schedules.items():
            thread = threading.Thread(target=self._run, args=(name, schedule), name=f"schedule-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, name: str, schedule: Schedule) -> None:
        period = self.period_seconds if self.period_seconds is not None else schedule.every_hours * 3600
        while not self._stop.wait(period):  # a rate rule first fires one period after it is created
            try:
                logger.info("scheduled run of %s: %s", name, self.invoke(schedule.handler, {}))
            except Exception:
                logger.exception("scheduled run of %s failed", name)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

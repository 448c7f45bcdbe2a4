"""Shared by the benchmarks: the embedded stack in a separate process (so our own memory is measurable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "bench" / ".data"

_SERVE = """
import json, signal, sys, threading
from pathlib import Path
from nutrimatch.local.stack import LocalStack, Ports
from nutrimatch.settings import Settings
stack = LocalStack(Settings(), Ports.free(), state_dir=Path(sys.argv[1]), durable=True, serve_http=False)
stack.start()
print(json.dumps(stack.environment), flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
stack.stop()
"""


@contextmanager
def embedded_stack() -> Iterator[dict[str, str]]:
    """Use the configured servers when DATABASE_URL is set; otherwise start the embedded stack for this run."""
    if os.environ.get("DATABASE_URL"):
        yield {}
        return
    state = tempfile.mkdtemp(prefix="nutrimatch-bench-")
    process = subprocess.Popen([sys.executable, "-c", _SERVE, state], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the embedded stack did not start")
        environment = json.loads(line)
        os.environ.update(environment)
        from nutrimatch.settings import get_settings

        get_settings.cache_clear()
        yield environment
    finally:
        process.terminate()
        process.wait(timeout=60)
        subprocess.run(["rm", "-rf", state], check=False)


class PeakRss:
    """Samples this process's resident memory in the background; `peak_mib` is the highest seen."""

    def __init__(self, interval: float = 0.05) -> None:
        import threading

        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, me.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return round(self.peak / 2**20, 1)

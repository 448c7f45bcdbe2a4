"""What `nutrimatch local up` shows while it serves: one line per API request and the functions' warnings.

The functions log as they do in Lambda (Powertools JSON, INFO and up: every authorization, every ingestion
step), which in AWS goes to CloudWatch. On a developer's console that buried the URLs and the token under
hundreds of lines (seeding the demo alone makes 400 requests), so those logs go to a file in the state
directory instead, in the same JSON.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ACCESS_LOGGER = "nutrimatch.access"
"""The gateway's one line per request: method, path, status, milliseconds (never the query or the body)."""

_CONSOLE_FORMAT = logging.Formatter("%(asctime)s  %(message)s", "%H:%M:%S")
_WARNING_FORMAT = logging.Formatter("%(asctime)s  %(levelname)s %(name)s: %(message)s", "%H:%M:%S")


@contextmanager
def function_logs_to(log_file: Path) -> Iterator[None]:
    """Within: the functions' logs written to `log_file`; warnings and errors also on the console."""
    from nutrimatch.api import logger as function_logger  # created at import, writing to stdout

    handler = function_logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    warnings = logging.StreamHandler(sys.stdout)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(_WARNING_FORMAT)
    service = logging.getLogger(function_logger.service)
    with log_file.open("a", encoding="utf-8") as stream:
        previous = handler.setStream(stream)
        service.addHandler(warnings)
        try:
            yield
        finally:
            service.removeHandler(warnings)
            handler.setStream(previous or sys.stdout)


@contextmanager
def requests_on_console() -> Iterator[None]:
    """Within: the gateway's line per request on the console."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_CONSOLE_FORMAT)
    access = logging.getLogger(ACCESS_LOGGER)
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    try:
        yield
    finally:
        access.removeHandler(handler)
        access.setLevel(level)

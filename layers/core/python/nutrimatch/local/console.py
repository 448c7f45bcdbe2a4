"""What `nutrimatch local up` shows while it serves: one line per API request and the functions' warnings.

The functions log as they do in Lambda (Powertools JSON, INFO and up: every authorization, every ingestion
step) and print their metrics as CloudWatch embedded-metric JSON; in AWS both go to CloudWatch. On a
developer's console they buried the URLs and the token under hundreds of lines (seeding the demo alone makes
400 requests), so both go to a file in the state directory instead, as they are.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TextIO

ACCESS_LOGGER = "nutrimatch.access"
"""The gateway's one line per request: method, path, status, milliseconds (never the query or the body)."""

_CONSOLE_FORMAT = logging.Formatter("%(asctime)s  %(message)s", "%H:%M:%S")
_WARNING_FORMAT = logging.Formatter("%(asctime)s  %(levelname)s %(name)s: %(message)s", "%H:%M:%S")


@contextmanager
def function_logs_to(log_file: Path) -> Iterator[TextIO]:
    """Within: the functions' logs and metrics (all that is written to stdout) go to `log_file`; warnings and
    errors also to the console, which is yielded: what the command itself says goes there."""
    from nutrimatch.api import logger as function_logger  # created at import, writing to stdout

    handler = function_logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    terminal = sys.stdout
    warnings = logging.StreamHandler(terminal)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(_WARNING_FORMAT)
    service = logging.getLogger(function_logger.service)
    with log_file.open("a", encoding="utf-8", buffering=1) as stream, redirect_stdout(stream):
        previous = handler.setStream(stream)
        service.addHandler(warnings)
        try:
            yield terminal
        finally:
            service.removeHandler(warnings)
            handler.setStream(previous or terminal)


@contextmanager
def requests_on_console(terminal: TextIO) -> Iterator[None]:
    """Within: the gateway's line per request on `terminal`."""
    handler = logging.StreamHandler(terminal)
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

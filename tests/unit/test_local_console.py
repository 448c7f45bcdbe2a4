import json
import sys

import requests

from nutrimatch.api import logger as function_logger
from nutrimatch.local.console import function_logs_to, requests_on_console
from nutrimatch.local.gateway import Gateway


def test_the_console_shows_one_line_per_request_without_its_query(capsys):
    gateway = Gateway("127.0.0.1", 0, invoke=lambda name, event: {"statusCode": 200, "body": "{}"})
    gateway.start()
    try:
        with requests_on_console(sys.stdout):
            requests.get(f"{gateway.url}/api/v1/health?q=private", timeout=5)
            requests.post(f"{gateway.url}/api/v1/no-such-route", timeout=5)
        requests.get(f"{gateway.url}/api/v1/health", timeout=5)  # after: no longer shown
    finally:
        gateway.stop()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ", 1)[1].rsplit(" ", 2)[0] for line in lines] == [
        "GET /api/v1/health 200", "POST /api/v1/no-such-route 404"]
    assert all(line.endswith(" ms") for line in lines)


def test_function_logs_and_metrics_go_to_the_file_and_warnings_also_to_the_console(tmp_path, capsys):
    log_file = tmp_path / "logs" / "functions.log"
    stream = function_logger.registered_handler.stream  # type: ignore[attr-defined]
    with function_logs_to(log_file) as terminal:
        function_logger.info("authorized", extra={"role": "vendor_admin"})
        print(json.dumps({"_aws": {"CloudWatchMetrics": []}, "ReplicaLagSeconds": [0.0]}))  # as Metrics does
        function_logger.warning("the reader is down")
        print("nutrimatch is running.", file=terminal)
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [record.get("message", "metrics") for record in records] == ["authorized", "metrics", "the reader is down"]
    assert records[0]["role"] == "vendor_admin"
    console = capsys.readouterr().out
    assert "authorized" not in console and "_aws" not in console
    assert "WARNING nutrimatch: the reader is down" in console and "nutrimatch is running." in console
    assert function_logger.registered_handler.stream is stream  # type: ignore[attr-defined]
    assert sys.stdout is terminal

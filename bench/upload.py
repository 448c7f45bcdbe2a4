"""Upload throughput and memory: presigned multipart and tus (both through `nutrimatch upload`) beside a direct
boto3 multipart upload of the same file to the same S3, at two file sizes.

Every transfer runs in its own process: the direct upload (baseline), the `nutrimatch upload` client, and the
local API gateway with the real authorizer and handlers. The peak RSS of the client and the gateway is
sampled while they work; it must stay flat in the file size (and ≤ 256 MiB). moto, which holds whole objects
in memory, runs in this process with the rest of the embedded stack and is not ours to measure.

    .venv/bin/python bench/upload.py [--small-mib 256] [--large-mib 1024] [--parallel 4] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psutil
import requests

from nutrimatch import aws
from nutrimatch.auth.tokens import mint_local_token
from nutrimatch.db import get_database
from nutrimatch.demo.catalog import products_csv_bytes
from nutrimatch.routes import Role
from nutrimatch.settings import Settings, get_settings
from nutrimatch.tenancy import vendors
from nutrimatch.tenancy.plans import Plan
from nutrimatch.tenancy.vendors import NewVendor
from nutrimatch.uploads.multipart import part_size_for

MIB = 1024**2
SAMPLE_ROWS = 20_000

GATEWAY = """
import sys, threading
from nutrimatch.local.gateway import Gateway
Gateway("127.0.0.1", int(sys.argv[1])).start()
print("ready", flush=True)
threading.Event().wait()
"""

# boto3's fastest way to this S3: no aws-chunked checksum trailer, which moto decodes slowly (and presigned
# part PUTs do not send either), no SHA-256 of each part for the signature (as nutrimatch.aws), as many parts
# in flight as the client is given.
DIRECT = """
import sys, time
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from nutrimatch.settings import get_settings
settings = get_settings()
path, key, part_size, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region,
                  aws_access_key_id="local", aws_secret_access_key="local",
                  config=Config(s3={"addressing_style": "path", "payload_signing_enabled": False},
                                request_checksum_calculation="when_required",
                                max_pool_connections=32))
config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=threads)
started = time.perf_counter()
s3.upload_file(path, settings.upload_bucket, key, Config=config)
print(f"seconds {time.perf_counter() - started}")
"""

CLI = "from nutrimatch.cli import main; main()"
CLI_SECONDS = re.compile(r"Uploaded [\d,]+ bytes in ([\d.]+) s")


class PeakRss:
    """Samples the resident memory of some processes until stopped (cheaply: moto shares this process's GIL)."""

    def __init__(self, *pids: int) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for process in self.processes:
                try:
                    rss = process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peak[process.pid] = max(self.peak[process.pid], rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def make_file(path: Path, size: int) -> None:
    """A products CSV of exactly `size` bytes: demo catalog rows, repeated as needed."""
    header, _, rows = products_csv_bytes(SAMPLE_ROWS, seed=7).partition(b"\n")
    with path.open("wb") as out:
        out.write(header + b"\n")
        while out.tell() < size:
            out.write(rows[: size - out.tell()])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gateway(environment: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", GATEWAY, str(port)], env=environment, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the gateway did not start")
    return process, f"http://127.0.0.1:{port}"


def direct_upload(environment: dict[str, str], path: Path, part_size: int, parallel: int) -> float:
    output = subprocess.run([sys.executable, "-c", DIRECT, str(path), "bench/direct.csv", str(part_size),
                             str(parallel)], env=environment, check=True, capture_output=True, text=True).stdout
    return float(output.split()[-1])


def cli_upload(environment: dict[str, str], gateway: subprocess.Popen[str], url: str, token: str, path: Path,
               state_dir: Path, parallel: int, use_tus: bool) -> tuple[float, int, int]:
    """Seconds the client reports for the upload, and the peak RSS of the client and of the gateway."""
    command = [sys.executable, "-c", CLI, "upload", str(path), "--api", url, "--token", token, "--no-follow",
               "--state-dir", str(state_dir), "--parallel", str(parallel), *(["--tus"] if use_tus else [])]
    client = subprocess.Popen(command, env=environment, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with PeakRss(client.pid, gateway.pid) as rss:
        output, _ = client.communicate()
    if client.returncode != 0:
        raise RuntimeError(f"upload failed:\n{output}")
    found = CLI_SECONDS.search(output.replace("\n", " "))
    if found is None:
        raise RuntimeError(f"no timing in the client's output:\n{output}")
    return float(found.group(1)), rss.peak[client.pid], rss.peak[gateway.pid]


def empty_bucket(settings: Settings) -> None:
    s3 = aws.client("s3", settings)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.upload_bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=settings.upload_bucket, Key=item["Key"])


METHODS = ("direct", "direct_single", "multipart", "tus")


def measure_size(environment: dict[str, str], gateway: subprocess.Popen[str], url: str, token: str, path: Path,
                 parallel: int, repeat: int) -> tuple[dict[str, float], int, int]:
    """Best seconds of each method over `repeat` interleaved rounds (the machine is shared: the best round is the
    one least disturbed), and the peak RSS of the client and the gateway over all rounds."""
    settings = get_settings()
    part_size = part_size_for(path.stat().st_size)
    best = dict.fromkeys(METHODS, float("inf"))
    client_peak = gateway_peak = 0
    for _ in range(repeat):
        for method in METHODS:
            if method.startswith("direct"):
                spent = direct_upload(environment, path, part_size, parallel if method == "direct" else 1)
            else:
                spent, client_rss, gateway_rss = cli_upload(environment, gateway, url, token, path,
                                                            path.parent / "state", parallel, method == "tus")
                client_peak, gateway_peak = max(client_peak, client_rss), max(gateway_peak, gateway_rss)
            best[method] = min(best[method], spent)
            empty_bucket(settings)  # moto keeps objects in memory
    return best, client_peak, gateway_peak


def run(sizes_mib: list[int], parallel: int, repeat: int, workdir: Path) -> dict[str, float]:
    settings = get_settings()
    vendor = vendors.onboard(get_database(), NewVendor(slug=f"bench-{os.getpid()}", name="Bench",
                                                       plan=Plan.ENTERPRISE))
    token = mint_local_token(settings, role=Role.VENDOR_ADMIN, vendor_id=str(vendor.id), user_id="bench")
    environment = {**os.environ, "LOG_LEVEL": "WARNING", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    # A Lambda instance serves one request at a time; the local gateway starts a thread per request, and glibc
    # would give each thread its own malloc arena that keeps freed chunk buffers. Two arenas model an instance.
    gateway, url = start_gateway({**environment, "MALLOC_ARENA_MAX": "2"})
    figures: dict[str, float] = {}
    try:
        requests.get(f"{url}/api/v1/health", timeout=30)
        for label, size_mib in zip(("small", "large"), sizes_mib, strict=True):
            path = workdir / f"catalog-{size_mib}.csv"
            make_file(path, size_mib * MIB)
            seconds, client_peak, gateway_peak = measure_size(environment, gateway, url, token, path, parallel,
                                                              repeat)
            path.unlink()
            rates = {method: size_mib / spent for method, spent in seconds.items()}
            print(f"{size_mib:>6} MiB  direct {rates['direct']:7.1f} MiB/s (one stream {rates['direct_single']:.1f})"
                  f"   multipart {rates['multipart']:7.1f} MiB/s ({rates['multipart'] / rates['direct']:.2f}x)"
                  f"   tus {rates['tus']:7.1f} MiB/s ({rates['tus'] / rates['direct']:.2f}x)"
                  f"   peak RSS: client {client_peak / MIB:.0f} MiB, gateway {gateway_peak / MIB:.0f} MiB", flush=True)
            figures[f"size_{label}_mib"] = size_mib
            figures[f"rss_{label}_mib"] = round(max(client_peak, gateway_peak) / MIB, 1)
            figures[f"rss_{label}_client_mib"] = round(client_peak / MIB, 1)
            figures[f"rss_{label}_gateway_mib"] = round(gateway_peak / MIB, 1)
            for method, rate in rates.items():
                figures[f"{method}_mibps_{label}"] = round(rate, 1)
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)
    for method in METHODS:
        figures[f"{method}_mibps"] = figures[f"{method}_mibps_large"]
    figures["multipart_ratio"] = round(figures["multipart_mibps"] / figures["direct_mibps"], 2)
    figures["tus_ratio"] = round(figures["tus_mibps"] / figures["direct_mibps"], 2)
    # tus sends one chunk at a time by protocol: beside one direct stream is where its own overhead shows.
    figures["tus_ratio_single_stream"] = round(figures["tus_mibps"] / figures["direct_single_mibps"], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mib", type=int, default=256)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--parallel", type=int, default=4, help="parts in flight, for both multipart uploads")
    parser.add_argument("--repeat", type=int, default=2, help="rounds per size; the best round counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as workdir, ExitStack() as cleanup:
        if "DATABASE_URL" not in os.environ:
            from nutrimatch.local.stack import LocalStack, Ports

            stack = LocalStack(Settings(), Ports.free(), state_dir=Path(workdir) / "stack", durable=False,
                               serve_http=False)
            stack.start()
            cleanup.callback(stack.stop)
            os.environ.update(stack.environment)
            get_settings.cache_clear()
        cleanup.callback(lambda: get_database().close())
        figures = run([args.small_mib, args.large_mib], args.parallel, args.repeat, Path(workdir))
    print("RESULT " + json.dumps(figures))


if __name__ == "__main__":
    main()

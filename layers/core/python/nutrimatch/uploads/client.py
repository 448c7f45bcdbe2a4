"""The client behind `nutrimatch upload`: a resumable upload of one CSV file, then the job it starts.

Presigned multipart (default) PUTs several parts at once straight to S3, streaming each from the file; tus
(`use_tus`) sends chunks through the API with the tuspy client. Either way the upload survives Ctrl-C or a
dropped connection: the job (or tus URL) is kept in a small state file keyed by the file's path, size and
modification time, and a rerun asks the server what it already holds and sends only the rest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader.uploader import Uploader

from nutrimatch.auth.api_keys import looks_like_api_key

PART_ATTEMPTS = 5
RESUME_ATTEMPTS = 5
RESUME_PAUSE_SECONDS = 1.0  # doubled after each attempt: 1 + 2 + 4 + 8 s in all
UPLOAD_GONE = (404, 410)
UPLOAD_BUSY = (423, 429)  # a PATCH still being written, a rate limit: worth asking again, as server errors are
PART_HEADERS = {"Content-Type": "application/octet-stream"}  # what the presigned part URLs are signed for
TUS_CHUNK_BYTES = 4 * 1024**2  # when the server does not advertise Tus-Max-Chunk-Size
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
DEFAULT_STATE_DIR = Path.home() / ".nutrimatch" / "uploads"

Progress = Callable[[int], None]
"""Called with a number of bytes just sent (possibly negative, when a failed part is sent again)."""


class UploadError(RuntimeError):
    """The server refused a request; the message is the server's."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}


@dataclass(frozen=True)
class UploadResult:
    job_id: str
    method: str
    size_bytes: int
    seconds: float
    resumed: bool


class Api:
    """The nutrimatch API, authenticated with a bearer token or an API key."""

    def __init__(self, base_url: str, token: str, vendor_id: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        scheme = "ApiKey" if looks_like_api_key(token) else "Bearer"
        self.headers = {"Authorization": f"{scheme} {token}"}
        if vendor_id:
            self.headers["X-Vendor-Id"] = vendor_id
        self.session = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, f"{self.base_url}{path}", headers={**self.headers,
                                        **kwargs.pop("headers", {})}, timeout=60, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise UploadError(explained(error), response.status_code, error.get("code"), error.get("details"))
            except (ValueError, KeyError, TypeError):
                raise UploadError(f"HTTP {response.status_code}: {response.text[:200]}",
                                  response.status_code) from None
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()


def explained(error: dict[str, Any]) -> str:
    """The server's message, and each field's own where it names them ("invalid request: mode" alone says
    what was wrong, not why)."""
    details = error.get("details")
    reasons = [f"{detail.get('field') or detail.get('location')}: {detail['message']}" for detail in details
               if isinstance(detail, dict) and detail.get("message")] if isinstance(details, list) else []
    return f"{error['message']} ({'; '.join(reasons)})" if reasons else str(error["message"])


class StateFile:
    """Where an interrupted upload of this exact file (path, size, mtime) left off."""

    def __init__(self, directory: Path, file: Path) -> None:
        stat = file.stat()
        key = hashlib.sha256(f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
        self.path = directory / f"{key}.json"

    def load(self, method: str) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return state if state.get("method") == method else None

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(state))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class FileSlice:
    """A part of the file as a request body, read block by block as it is sent (never the whole part).

    Iterable with a length, so requests sends it with a Content-Length (S3 wants one) in blocks of READ_BLOCK;
    a file-like body would be read in http.client's 16 KiB blocks instead, which is markedly slower.
    """

    READ_BLOCK = 1024**2

    def __init__(self, path: Path, offset: int, length: int, progress: Progress) -> None:
        self.path, self.offset, self.length, self.progress = path, offset, length, progress
        self.sent = 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as file:
            file.seek(self.offset)
            while self.sent < self.length:
                block = file.read(min(self.READ_BLOCK, self.length - self.sent))
                if not block:
                    raise UploadError(f"{self.path} is shorter than when the upload started")
                self.sent += len(block)
                self.progress(len(block))
                yield block


def upload_file(api: Api, file: Path, *, kind: str, mode: str, use_tus: bool = False, parallel: int = 4,
                state_dir: Path = DEFAULT_STATE_DIR, progress: Progress = lambda _: None,
                checksum: bool = False) -> UploadResult:
    """Upload (or finish uploading) `file` and return its job. With `checksum` (multipart), the file's SHA-256 is
    declared when the job is created, and ingestion refuses a file that arrived different."""
    state = StateFile(state_dir, file)
    started = time.monotonic()
    if use_tus:
        job_id, resumed = _upload_tus(api, file, kind, mode, state, progress)
    else:
        job_id, resumed = _upload_multipart(api, file, kind, mode, state, parallel, progress, checksum)
    state.clear()
    return UploadResult(job_id, "tus" if use_tus else "multipart", file.stat().st_size,
                        time.monotonic() - started, resumed)


def get_job(api: Api, job_id: str) -> dict[str, Any] | None:
    """The job as the jobs API describes it; None when this API has no jobs route."""
    try:
        job: dict[str, Any] = api.json("GET", f"/api/v1/ingest/jobs/{job_id}")
    except UploadError as error:
        if error.code == "route_not_found":
            return None
        raise
    return job


def follow_job(api: Api, job_id: str, on_update: Callable[[dict[str, Any]], None],
               poll_seconds: float = 2.0) -> dict[str, Any] | None:
    """Poll the job until it finishes; None when this API has no jobs route (nothing to follow)."""
    while True:
        job = get_job(api, job_id)
        if job is None:
            return None
        on_update(job)
        if job.get("status") in FINAL_STATUSES:
            return job
        time.sleep(poll_seconds)


COUNTED = ("inserted", "updated", "unchanged", "retired", "rejected")


def describe_progress(job: dict[str, Any]) -> str:
    """A running job in a few words: its phase, how far it got in that phase, its rate and time left."""
    progress = job.get("progress") or {}
    phase = job.get("phase") or job.get("status") or "waiting"
    words = [str(phase)]
    if phase == "loading" and progress.get("chunks_total"):
        words.append(f"{progress['chunks_loaded']:,} of {progress['chunks_total']:,} chunks, "
                     f"{progress['rows_loaded']:,} rows read")
    elif phase == "merging" and progress.get("rows_loaded"):
        words.append(f"{progress['rows_merged']:,} of {progress['rows_loaded']:,} rows")
    elif phase == "indexing" and progress.get("leaves_total"):
        words.append(f"{progress['leaves_indexed']} of {progress['leaves_total']} partitions")
    if progress.get("rows_per_second"):
        words.append(f"{progress['rows_per_second']:,.0f} rows/s")
    if progress.get("eta_seconds") is not None:
        words.append(f"about {_duration(progress['eta_seconds'])} left")
    return " · ".join(words)


def summarize(job: dict[str, Any]) -> list[str]:
    """What a finished job did, in lines for a person: counts and errors.csv, or why it failed."""
    progress = job.get("progress") or {}
    took = f" in {_duration(progress['elapsed_seconds'])}" if progress.get("elapsed_seconds") is not None else ""
    status = job.get("status")
    # An upsert's merged chunks are live rows; a bulk load's are not live before its last step.
    merged = progress.get("rows_merged", 0) if not progress.get("leaves_total") else 0
    kept = (f"what its {merged:,} rows merged before it stopped changed stays live" if merged
            else "nothing of it is live")
    if status == "failed":
        error = job.get("error") or {}
        return [f"Job {job['id']} failed while {job.get('phase') or 'starting'}{took}: "
                f"{error.get('message') or 'no reason was recorded'}", f"{kept[0].upper()}{kept[1:]}."]
    if status == "cancelled":
        return [f"Job {job['id']} was cancelled while {job.get('phase') or 'waiting'}; {kept}."]
    counts = job.get("counts") or {}
    lines = [f"Job {job['id']} {status}{took}: {counts.get('rows', 0):,} rows — "
             + ", ".join(f"{counts.get(name, 0):,} {name}" for name in COUNTED)]
    if job.get("errors_csv_url"):
        lines.append(f"Rejected rows and their reasons (errors.csv): {job['errors_csv_url']}")
    if job.get("kind") == "products":
        lines.append(f"Catalog version {job['catalog_version']} is live." if job.get("catalog_version") is not None
                     else "Nothing changed: the live catalog stays as it was.")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        while block := stream.read(FileSlice.READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


# --- presigned multipart ------------------------------------------------------------------------------------
def _upload_multipart(api: Api, file: Path, kind: str, mode: str, state: StateFile, parallel: int,
                      progress: Progress, checksum: bool) -> tuple[str, bool]:
    size = file.stat().st_size
    saved = state.load("multipart")
    plan = None
    if saved:
        try:
            plan = api.json("GET", f"/api/v1/ingest/jobs/{saved['job_id']}/upload")
        except UploadError as error:
            if error.status == 409 and error.details.get("status") not in ("failed", "cancelled"):
                return saved["job_id"], True  # the last run completed it, just before it was stopped
            if error.status not in (404, 409, 410):
                raise  # otherwise the job is gone, failed or cancelled: start afresh
    resumed = plan is not None
    if plan is None:
        plan = api.json("POST", "/api/v1/ingest/csv", json={
            "kind": kind, "mode": mode, "file_name": file.name, "size_bytes": size,
            "content_type": "text/csv", "content_sha256": file_sha256(file) if checksum else None})
        state.save({"method": "multipart", "job_id": plan["job"]["id"]})
    job_id = plan["job"]["id"]
    part_size = int(plan["part_size"])
    etags = {p["part_number"]: p["etag"] for p in plan["uploaded_parts"]}
    progress(sum(min(part_size, size - (n - 1) * part_size) for n in etags))
    urls = dict(_all_urls(api, job_id, plan))

    s3 = requests.Session()
    for scheme in ("https://", "http://"):
        s3.mount(scheme, HTTPAdapter(pool_maxsize=parallel))

    def send(number: int) -> tuple[int, str]:
        offset = (number - 1) * part_size
        return number, _put_part(api, s3, job_id, file, number, (offset, min(part_size, size - offset)), urls,
                                 progress)

    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="part")
    try:
        for future in as_completed([pool.submit(send, number) for number in sorted(urls)]):
            number, etag = future.result()
            etags[number] = etag
    finally:
        # After a failure or Ctrl-C, parts not yet started are dropped; a rerun sends them.
        pool.shutdown(wait=False, cancel_futures=True)
    parts = [{"part_number": n, "etag": etags[n]} for n in sorted(etags)]
    api.json("POST", f"/api/v1/ingest/jobs/{job_id}/upload/complete", json={"parts": parts})
    return job_id, resumed


def _all_urls(api: Api, job_id: str, plan: dict[str, Any]) -> Iterator[tuple[int, str]]:
    while True:
        yield from ((u["part_number"], u["url"]) for u in plan["urls"])
        if plan.get("next_first_part") is None:
            return
        plan = api.json("GET", f"/api/v1/ingest/jobs/{job_id}/upload",
                        params={"first_part": plan["next_first_part"]})


def _put_part(api: Api, s3: requests.Session, job_id: str, file: Path, number: int, span: tuple[int, int],
              urls: dict[int, str], progress: Progress) -> str:
    """PUT one part (`span`: offset, length), retrying dropped connections and server errors; an expired URL
    is replaced."""
    for attempt in range(1, PART_ATTEMPTS + 1):
        body = FileSlice(file, *span, progress)
        try:
            response = s3.put(urls[number], data=body, timeout=300, headers=PART_HEADERS)
        except requests.ConnectionError:
            response = None
        if response is not None and response.status_code == 200:
            return str(response.headers["ETag"])
        progress(-body.sent)  # take back what was counted for the failed attempt
        if response is not None and response.status_code == 403:  # the presigned URL expired
            fresh = api.json("GET", f"/api/v1/ingest/jobs/{job_id}/upload", params={"first_part": number})
            urls.update((u["part_number"], u["url"]) for u in fresh["urls"])
        elif response is not None and response.status_code < 500:
            raise UploadError(f"S3 refused part {number}: HTTP {response.status_code} {response.text[:200]}",
                              response.status_code)
        time.sleep(min(2**attempt, 30) if attempt < PART_ATTEMPTS else 0)
    raise UploadError(f"part {number} failed {PART_ATTEMPTS} times; rerun the command to resume")


# --- tus ----------------------------------------------------------------------------------------------------
def _upload_tus(api: Api, file: Path, kind: str, mode: str, state: StateFile,
                progress: Progress) -> tuple[str, bool]:
    endpoint = f"{api.base_url}/api/v1/uploads/tus"
    client = TusClient(endpoint, headers=dict(api.headers))
    advertised = api.call("OPTIONS", "/api/v1/uploads/tus").headers.get("Tus-Max-Chunk-Size")
    chunk_size = int(advertised) if advertised else TUS_CHUNK_BYTES
    saved = state.load("tus")
    uploader = _tus_uploader(client, file, saved["url"], chunk_size) if saved else None
    resumed = uploader is not None
    if saved is None or uploader is None:
        metadata = {"kind": kind, "mode": mode, "filename": file.name, "filetype": "text/csv"}
        created = api.call("POST", "/api/v1/uploads/tus", headers={
            "Tus-Resumable": "1.0.0", "Upload-Length": str(file.stat().st_size),
            "Upload-Metadata": ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())})
        saved = {"method": "tus", "url": urljoin(endpoint, created.headers["Location"]),
                 "job_id": created.headers["Ingestion-Job-Id"]}
        state.save(saved)
        uploader = _tus_uploader(client, file, saved["url"], chunk_size)
        if uploader is None:
            raise UploadError("the tus upload just created is not there")
    progress(uploader.offset)
    size = file.stat().st_size
    while uploader.offset < size:
        before = uploader.offset
        uploader.upload_chunk()  # type: ignore[no-untyped-call]
        progress(uploader.offset - before)
    return str(saved["job_id"]), resumed


def _tus_uploader(client: TusClient, file: Path, url: str, chunk_size: int) -> Uploader | None:
    """tuspy's uploader at the server's offset (it asks with HEAD); None when the upload is gone (404, 410).

    Any other failure leaves the upload where it is: 423 (the previous run's PATCH is still being written), 429 and
    server or connection errors are asked again with growing pauses, and then, like any other refusal, end the
    run with the upload kept for the next one."""
    for attempt in range(RESUME_ATTEMPTS):
        if attempt:
            time.sleep(RESUME_PAUSE_SECONDS * 2 ** (attempt - 1))
        try:
            return client.uploader(file_path=str(file), url=url, chunk_size=chunk_size, upload_checksum=True,
                                   retries=PART_ATTEMPTS, retry_delay=2)
        except TusCommunicationError as error:
            if error.status_code in UPLOAD_GONE:
                return None
            status, reason = error.status_code, str(error)
            if status is not None and status < 500 and status not in UPLOAD_BUSY:
                break
    raise UploadError(f"the server could not say how far the upload at {url} got ({reason}); it is kept: rerun the "
                      "command to resume it", status)

"""Upload rules that need no I/O: part sizing, tus headers and metadata, CSV checks, file names, and the words
the CLI follows a job with."""

import base64
import hashlib

import pytest
from pydantic import ValidationError
from tusclient.exceptions import TusCommunicationError

from nutrimatch.errors import InvalidInput
from nutrimatch.uploads import client, csvcheck, multipart, tus
from nutrimatch.uploads.multipart import CompletedPart, NewCsvUpload
from nutrimatch.uploads.storage import MAX_PARTS, MIN_PART_BYTES, same_etag, tail_key

MIB = 1024**2
GIB = 1024**3


@pytest.mark.parametrize(("size", "part_size"), [
    (1, 8 * MIB),
    (8 * MIB * MAX_PARTS, 8 * MIB),
    (8 * MIB * MAX_PARTS + 1, 9 * MIB),
    (10 * 1000**3, 8 * MIB),
    (100 * GIB, 11 * MIB),
])
def test_part_size_is_at_least_8_mib_in_whole_mib_and_fits_10000_parts(size, part_size):
    assert multipart.part_size_for(size) == part_size
    assert multipart.part_count(size, part_size) <= MAX_PARTS


def test_ten_gib_fits_in_1280_parts_of_8_mib():
    size = 10 * GIB
    part_size = multipart.part_size_for(size)
    assert (part_size, multipart.part_count(size, part_size)) == (8 * MIB, 1280)
    assert multipart.expected_part_size(size + 5, part_size, 1281) == 5


def test_part_list_out_of_order_or_repeated_is_refused_with_details():
    with pytest.raises(InvalidInput) as refused:
        multipart._check_order([CompletedPart(part_number=n, etag="e") for n in (1, 3, 2, 3)])
    assert refused.value.details == {"duplicates": [3], "out_of_order": [2]}


def test_tus_min_part_grows_only_past_10000_parts_of_5_mib():
    assert tus.min_part_size(10 * GIB) == MIN_PART_BYTES
    assert tus.min_part_size(100 * GIB) == -(-100 * GIB // MAX_PARTS)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_metadata_pairs_decode_and_carry_the_job_options():
    header = f"kind {_b64('products')},mode {_b64('replace')},filename {_b64('../Produkte März.csv')},empty"
    metadata = tus.parse_metadata(header)
    assert metadata == {"kind": "products", "mode": "replace", "filename": "../Produkte März.csv", "empty": ""}
    options = tus.upload_options(metadata)
    assert (options.kind, options.mode, options.file_name, options.content_type) == (
        "products", "replace", "Produkte_Marz.csv", "text/csv")


def test_a_customers_file_is_only_merged_never_replacing_the_customers_it_does_not_list():
    with pytest.raises(InvalidInput) as refused:
        tus.upload_options({"kind": "customers", "mode": "replace", "filename": "crm.csv"})
    assert set(refused.value.details) == {"mode"}
    assert tus.upload_options({"kind": "customers", "mode": "upsert", "filename": "crm.csv"}).mode == "upsert"
    with pytest.raises(ValidationError) as invalid:
        NewCsvUpload(kind="customers", mode="replace", file_name="crm.csv", size_bytes=10)
    assert [error["loc"] for error in invalid.value.errors()] == [("mode",)]
    assert NewCsvUpload(kind="products", mode="replace", file_name="p.csv", size_bytes=10).mode == "replace"


@pytest.mark.parametrize("header", ["kind !!notbase64", f"kind {_b64('a')},kind {_b64('b')}"])
def test_malformed_metadata_is_a_bad_request(header):
    with pytest.raises(tus.BadRequest):
        tus.parse_metadata(header)


def test_missing_or_unknown_job_options_are_named():
    with pytest.raises(InvalidInput) as refused:
        tus.upload_options({"kind": "recipes", "mode": "merge"})
    assert set(refused.value.details) == {"kind", "mode", "filename"}


def test_checksum_is_verified_per_algorithm():
    body = b"a,b\n1,2\n"
    for name in ("sha1", "md5", "sha256"):
        digest = base64.b64encode(hashlib.new(name, body).digest()).decode()
        tus._check_checksum({"upload-checksum": f"{name} {digest}"}, body)
        with pytest.raises(tus.ChecksumMismatch):
            tus._check_checksum({"upload-checksum": f"{name} {digest}"}, body + b"x")
    with pytest.raises(tus.BadRequest):
        tus._check_checksum({"upload-checksum": "crc32 AAAA"}, body)


@pytest.mark.parametrize("header", ["sha1", "sha1 ", "sha1 AAAA",
                                    f"sha256 {base64.b64encode(hashlib.sha1(b'a').digest()).decode()}"])
def test_a_checksum_header_without_a_digest_of_the_right_length_is_a_bad_request(header):
    with pytest.raises(tus.BadRequest):
        tus._check_checksum({"upload-checksum": header}, b"a")


@pytest.mark.parametrize("value", ["\u00b2", "\uff11\uff12", "-1", "1.0", "0x10", ""])
def test_integer_headers_take_ascii_digits_only(value):
    with pytest.raises(tus.BadRequest):
        tus._integer({"upload-offset": value}, "Upload-Offset")


def test_unsupported_version_errors_name_the_supported_version():
    assert tus.error_headers(tus.UnsupportedVersion("old")) == {"Tus-Version": "1.0.0"}
    assert tus.error_headers(tus.BadRequest("bad")) == {}


class UnreachableUpload:
    """A tus client whose HEAD of the saved upload always fails with `status` (None: no connection)."""

    def __init__(self, status):
        self.status, self.asked = status, 0

    def uploader(self, **_):
        self.asked += 1
        raise TusCommunicationError(None, self.status)


@pytest.mark.parametrize(("status", "asked"), [
    (423, client.RESUME_ATTEMPTS), (429, client.RESUME_ATTEMPTS), (503, client.RESUME_ATTEMPTS),
    (None, client.RESUME_ATTEMPTS), (403, 1)])
def test_the_cli_keeps_an_upload_it_cannot_reach_for_the_next_run(monkeypatch, tmp_path, status, asked):
    monkeypatch.setattr(client, "RESUME_PAUSE_SECONDS", 0)
    server = UnreachableUpload(status)
    with pytest.raises(client.UploadError, match="rerun the command to resume it") as failed:
        client._tus_uploader(server, tmp_path / "c.csv", "http://api/uploads/tus/1", 1024)
    assert (server.asked, failed.value.status) == (asked, status)


@pytest.mark.parametrize("status", [404, 410])
def test_the_cli_starts_over_only_when_the_upload_is_gone(tmp_path, status):
    server = UnreachableUpload(status)
    assert client._tus_uploader(server, tmp_path / "c.csv", "http://api/uploads/tus/1", 1024) is None
    assert server.asked == 1


def test_options_advertise_extensions_limits_and_checksums():
    headers = tus.server_headers(10 * GIB)
    assert headers["Tus-Version"] == "1.0.0"
    assert set(headers["Tus-Extension"].split(",")) == {
        "creation", "creation-with-upload", "termination", "checksum", "expiration"}
    assert headers["Tus-Max-Size"] == str(10 * GIB)
    assert "sha1" in headers["Tus-Checksum-Algorithm"].split(",")
    # A chunk, base64-encoded in the Lambda event, must fit a synchronous invocation's 6 MB payload.
    assert int(headers["Tus-Max-Chunk-Size"]) * 4 / 3 + 64 * 1024 < 6_000_000


@pytest.mark.parametrize("declared", ["application/vnd.ms-excel", "application/zip", "image/png"])
def test_non_csv_content_types_are_refused(declared):
    with pytest.raises(InvalidInput):
        csvcheck.content_type(declared)


def test_csv_content_types_are_normalised():
    assert csvcheck.content_type("Text/CSV; charset=utf-8") == "text/csv"
    assert csvcheck.content_type(None) == "text/csv"


@pytest.mark.parametrize(("name", "safe"), [
    ("products.csv", "products.csv"),
    ("C:\\Users\\me\\Desktop\\my file (1).csv", "my_file_1_.csv"),
    ("../../etc/passwd", "passwd"),
    ("Café—menu.csv", "Cafe_menu.csv"),
])
def test_file_names_become_safe_key_segments(name, safe):
    assert csvcheck.safe_file_name(name) == safe


@pytest.mark.parametrize("name", ["...", "catalog.xlsx", "dump.csv.gz"])
def test_unusable_or_non_csv_file_names_are_refused(name):
    with pytest.raises(InvalidInput):
        csvcheck.safe_file_name(name)


@pytest.mark.parametrize("head", [
    b"PK\x03\x04\x14\x00\x06\x00",  # xlsx
    b"\x1f\x8b\x08\x00" + b"x" * 100,  # gzip
    b"%PDF-1.7\n%binary",
    b"name,price\n\x00\x01\x02",  # NUL bytes
])
def test_binary_heads_are_not_csv(head):
    with pytest.raises(InvalidInput):
        csvcheck.check_head(head)


def test_csv_heads_pass():
    csvcheck.check_head(b"external_id,name,price\n1,Oats,2.50\n2,\"Rye, dark\",3.10\n")
    csvcheck.check_head("\ufeffid;name\n1;Äpfel\n".encode())


def test_tail_keys_are_unique_per_state_and_outside_incoming():
    first, second = (tail_key("v", "u", offset) for offset in (5, 6))  # type: ignore[arg-type]
    assert first != second
    assert first.startswith("tus-scratch/")


def test_etags_compare_with_or_without_quotes():
    assert same_etag('"abc"', "abc")
    assert not same_etag('"abc"', '"abd"')


def _job(status, phase, **fields):
    progress = {"chunks_total": 8, "chunks_loaded": 3, "chunks_merged": 0, "rows_loaded": 750_000, "rows_merged": 0,
                "leaves_total": 16, "leaves_indexed": 5, "elapsed_seconds": 42.0, "rows_per_second": None,
                "eta_seconds": None, **fields.pop("progress", {})}
    return {"id": "j-1", "kind": "products", "status": status, "phase": phase, "progress": progress, **fields}


@pytest.mark.parametrize(("phase", "progress", "line"), [
    ("loading", {}, "loading · 3 of 8 chunks, 750,000 rows read"),
    ("merging", {"rows_merged": 250_000, "rows_per_second": 31_250.4, "eta_seconds": 95},
     "merging · 250,000 of 750,000 rows · 31,250 rows/s · about 1 min 35 s left"),
    ("indexing", {"eta_seconds": 4.25}, "indexing · 5 of 16 partitions · about 4.2 s left"),
    ("planning", {"eta_seconds": 7300}, "planning · about 2 h 01 min left"),
])
def test_a_running_job_is_described_by_its_phase_and_how_far_it_got(phase, progress, line):
    assert client.describe_progress(_job("running", phase, progress=progress)) == line


def test_a_completed_job_is_summarized_with_its_counts_errors_csv_and_catalog_version():
    counts = {"rows": 1000, "inserted": 900, "updated": 40, "unchanged": 50, "retired": 3, "rejected": 10}
    lines = client.summarize(_job("completed", "done", counts=counts, catalog_version=7,
                                  errors_csv_url="https://s3/errors.csv?sig"))
    assert lines == [
        "Job j-1 completed in 42.0 s: 1,000 rows — 900 inserted, 40 updated, 50 unchanged, 3 retired, 10 rejected",
        "Rejected rows and their reasons (errors.csv): https://s3/errors.csv?sig",
        "Catalog version 7 is live."]
    unchanged = client.summarize(_job("completed", "done", counts={"rows": 5, "unchanged": 5}, catalog_version=None))
    assert unchanged[-1] == "Nothing changed: the live catalog stays as it was."
    customers = client.summarize(_job("completed", "done", kind="customers", counts={"rows": 2, "inserted": 2}))
    assert customers == ["Job j-1 completed in 42.0 s: 2 rows — 2 inserted, 0 updated, 0 unchanged, 0 retired, "
                         "0 rejected"]


def test_a_failed_or_cancelled_job_says_where_it_stopped_and_why():
    failed = _job("failed", "planning", error={"code": "invalid_file", "message": "no column gives the name"})
    assert client.summarize(failed) == ["Job j-1 failed while planning in 42.0 s: no column gives the name",
                                        "Nothing of it is live."]
    late = _job("failed", "finalizing", error={"message": "boom"}, progress={"rows_merged": 9, "leaves_total": 0})
    assert client.summarize(late)[1] == "What its 9 rows merged before it stopped changed stays live."
    assert client.summarize(_job("cancelled", "loading")) == [
        "Job j-1 was cancelled while loading; nothing of it is live."]
    assert client.summarize(_job("cancelled", "merging", progress={"rows_merged": 250_000, "leaves_total": 0})) == [
        "Job j-1 was cancelled while merging; what its 250,000 rows merged before it stopped changed stays live."]
    assert client.summarize(_job("cancelled", "indexing", progress={"rows_merged": 750_000})) == [
        "Job j-1 was cancelled while indexing; nothing of it is live."]  # a bulk load: merged into its shadow


def test_the_cli_says_why_the_server_refused_each_field():
    refusal = {"code": "validation_error", "message": "invalid request: mode", "details": [
        {"field": "mode", "location": "body", "message": "replace is for products"}]}
    assert client.explained(refusal) == "invalid request: mode (mode: replace is for products)"
    assert client.explained({"message": "the job is already completed", "details": {"status": "completed"}}) == (
        "the job is already completed")

"""Only CSV text gets in: by the declared content type and file name first, then by the file's first bytes."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from nutrimatch.errors import InvalidInput
from nutrimatch.ingest.sniff import SNIFF_BYTES, sniff

CSV_CONTENT_TYPES = frozenset({
    "text/csv", "application/csv", "text/x-csv", "application/x-csv", "text/comma-separated-values",
    "text/tab-separated-values", "text/plain",
})
DEFAULT_CONTENT_TYPE = "text/csv"
MAX_FILE_NAME = 200
HEAD_BYTES = SNIFF_BYTES
"""How much of the file's start is checked (the ingestion planner sniffs the same amount)."""

# Formats people upload by mistake, recognised by their first bytes even when they hold no NUL byte.
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ", "an xz archive"),
    (b"PAR1", "a Parquet file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)
_NOT_CSV_SUFFIXES = frozenset({".xlsx", ".xls", ".xlsm", ".ods", ".zip", ".gz", ".bz2", ".xz", ".parquet", ".pdf",
                               ".json", ".xml"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def content_type(declared: str | None) -> str:
    """The media type to store the object with; refuses types that are not CSV text."""
    if not declared:
        return DEFAULT_CONTENT_TYPE
    media_type = declared.split(";")[0].strip().lower()
    if media_type not in CSV_CONTENT_TYPES:
        raise InvalidInput(
            f"content type {media_type!r} is not CSV: export the file as CSV and send it as text/csv",
            details={"content_type": media_type, "accepted": sorted(CSV_CONTENT_TYPES)})
    return media_type


def safe_file_name(name: str) -> str:
    """The client's file name reduced to a safe S3 key segment: no directories, no odd characters."""
    base = PureWindowsPath(PurePosixPath(name).name).name
    unaccented = "".join(c for c in unicodedata.normalize("NFKD", base) if not unicodedata.combining(c))
    cleaned = _UNSAFE.sub("_", unaccented).strip("._")[:MAX_FILE_NAME]
    if not cleaned:
        raise InvalidInput("file_name must name a file, e.g. products.csv", details={"file_name": name})
    suffix = PurePosixPath(cleaned.lower()).suffix
    if suffix in _NOT_CSV_SUFFIXES:
        raise InvalidInput(f"a {suffix} file is not CSV: export it as CSV first", details={"file_name": name})
    return cleaned


def check_head(head: bytes) -> None:
    """Raise InvalidInput unless the file's first bytes (up to HEAD_BYTES) look like CSV text."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise InvalidInput(f"the file is {what}, not CSV text: export it as CSV (UTF-8)",
                               details={"reason": "not_csv"})
    sniff(head)

"""The Plan step: read the header, map the columns, split the object into byte ranges on record boundaries, and
check the SHA-256 declared when the upload was created (the scan reads every byte anyway)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from nutrimatch.db import Database, scoped_transaction
from nutrimatch.errors import InvalidInput
from nutrimatch.ingest import jobs
from nutrimatch.ingest.fields import IngestKind
from nutrimatch.ingest.mapping import Basis, HeaderMapping, map_headers, normalize_header
from nutrimatch.ingest.ranges import plan_ranges
from nutrimatch.ingest.sniff import SNIFF_BYTES, Dialect, parse_header, sniff
from nutrimatch.ingest.source import S3Object, SequentialReader
from nutrimatch.settings import Settings

MIN_CHUNK_BYTES = 1024 * 1024
CHUNKS_PER_WORKER = 4


def chunk_bytes(settings: Settings, size: int) -> int:
    """Enough chunks to keep every parallel worker busy (and even out), none larger than the configured size."""
    spread = -(-size // (settings.ingest_max_concurrency * CHUNKS_PER_WORKER))
    return max(1, min(settings.ingest_chunk_bytes, max(MIN_CHUNK_BYTES, spread)))


def learned_mappings(conn: Any, vendor_id: UUID, kind: str) -> dict[str, str | None]:
    """The vendor's confirmed header → field mappings; a None field says to ignore the column."""
    rows = conn.execute("SELECT header_normalized, field FROM header_mappings WHERE vendor_id = %s AND kind = %s",
                        (vendor_id, kind)).fetchall()
    return {row["header_normalized"]: row["field"] for row in rows}


def _rows_version(conn: Any, vendor_id: UUID) -> int:
    """What the rows this job changes are stamped with (products.catalog_version, for information): the catalog
    version after the live one. The version the job announces is allocated only when Finalize announces it
    (nutrimatch.ingest.finalize): other jobs of the vendor may announce theirs first, so it may be later."""
    found = conn.execute("SELECT catalog_version + 1 AS version FROM vendors WHERE id = %s", (vendor_id,)).fetchone()
    return int(found["version"])


def _nutrient_basis(mapping: HeaderMapping) -> str:
    bases = {column.basis for column in mapping.columns if column.field and column.basis is not None}
    if len(bases) > 1:
        listed = ", ".join(f"{c.header} ({c.basis})" for c in mapping.columns if c.basis is not None)
        raise InvalidInput(f"nutrient columns mix bases: {listed}; give all per serving or all per 100 g")
    return Basis.PER_100G.value if bases and bases != {Basis.PER_SERVING} else Basis.PER_SERVING.value


def _describe(mapping: HeaderMapping, basis: str) -> dict[str, Any]:
    """The mapping as the vendor sees it in the job: header → field, with units and what was ignored."""
    return {
        "columns": [{"header": c.header, "field": c.field, "unit": c.unit, "factor": c.factor,
                     "learned": c.learned} for c in mapping.columns],
        "unmapped": list(mapping.unmapped),
        "ignored_duplicates": [c.header for c in mapping.duplicates],
        "nutrient_basis": basis,
    }


def plan(settings: Settings, database: Database, s3: Any, job_id: UUID, vendor_id: UUID) -> dict[str, Any]:
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.require_running(conn, vendor_id, job_id)
        jobs.start(conn, vendor_id, job_id)
        learned = learned_mappings(conn, vendor_id, job["kind"])
        rows_version = _rows_version(conn, vendor_id)
    source = S3Object(s3, job["s3_bucket"], job["s3_key"])
    size = source.size()
    declared = job["content_sha256"]
    with SequentialReader(source, size, digest=declared is not None) as reader:
        head = reader.read_range(0, min(SNIFF_BYTES, size))
        dialect = sniff(head)
        headers = parse_header(head, dialect, at_eof=size <= len(head))
        kind = IngestKind(job["kind"])
        mapping = map_headers(headers, kind, learned)
        if not mapping.ok:
            raise InvalidInput(mapping.message or "required columns are missing")
        basis = _nutrient_basis(mapping) if kind is IngestKind.PRODUCTS else Basis.PER_SERVING.value
        ranges = plan_ranges(reader, size, chunk_bytes(settings, size), dialect)
        streamed_sha256 = reader.sha256
    actual = (streamed_sha256 or source.sha256()) if declared else None
    if actual != declared:
        raise InvalidInput(f"the uploaded file's SHA-256 is {actual}, not the {declared} declared when the upload "
                           "was created: the file was corrupted on the way or another file was uploaded")
    if ranges.ends_inside_quotes:
        raise InvalidInput("the file ends inside a quoted field: a quote (\") is never closed")
    stored_plan = {
        "dialect": asdict(dialect), "source_columns": len(headers), "nutrient_basis": basis,
        "rows_version": rows_version,
        "columns": {c.field: {"index": c.index, "factor": c.factor} for c in mapping.columns if c.field},
    }
    with scoped_transaction(database.writer, vendor_id) as conn:
        jobs.require_running(conn, vendor_id, job_id)
        conn.execute("DELETE FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s", (vendor_id, job_id))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ingestion_chunks (job_id, vendor_id, chunk_no, byte_start, byte_end) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(job_id, vendor_id, n, r.start, r.end) for n, r in enumerate(ranges.ranges)])
        jobs.set_phase(conn, vendor_id, job_id, "loading", plan=Jsonb(stored_plan),
                       mapping=Jsonb(_describe(mapping, basis)))
    return {
        "chunks": [{"job_id": str(job_id), "vendor_id": str(vendor_id), "chunk_no": n}
                   for n in range(len(ranges.ranges))],
        "max_concurrency": settings.ingest_max_concurrency,
    }


def dialect_of(stored_plan: dict[str, Any]) -> Dialect:
    return Dialect(**stored_plan["dialect"])


def remember_mapping(conn: Any, vendor_id: UUID, kind: str, header: str, field: str | None, user: str) -> str:
    """A vendor's confirmation or correction of a header's meaning, used for its next files."""
    key = normalize_header(header)
    conn.execute(
        """INSERT INTO header_mappings (vendor_id, kind, header_normalized, field, confirmed_by)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (vendor_id, kind, header_normalized)
           DO UPDATE SET field = EXCLUDED.field, confirmed_by = EXCLUDED.confirmed_by, updated_at = now()""",
        (vendor_id, kind, key, field, user))
    return key

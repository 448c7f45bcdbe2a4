"""PrepareMerge and MergeChunk: duplicates across the whole file, how to merge, then validate and write chunk by chunk.

PrepareMerge numbers every record across chunks, marks each repeat of an external id after its first row, and
chooses how the chunks are written:
- `bulk_load` when the vendor has none of these rows yet and the file is large enough: into a shadow of the
  vendor's partitions without indexes, indexed leaf by leaf and swapped in afterwards (nutrimatch.ingest.bulk);
- `upsert` otherwise: INSERT … ON CONFLICT into the live partitions, not writing rows whose stored values hash
  as before. For products, one hash join first finds the rows whose source cells hash as they did when their
  product was stored (same cells, same mapping and rules): those are unchanged without being validated again,
  so an unchanged re-ingest costs a scan, not a validation and an index probe per row.

A chunk's validation, its row errors, its writes and its `merged` mark commit together: a retried chunk
either finds its work done or does all of it, so rows are neither lost nor counted twice.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from nutrimatch.audit import RequestInfo, record
from nutrimatch.db import Connection, Database, scoped_transaction
from nutrimatch.errors import InvalidInput
from nutrimatch.ingest import bulk, jobs
from nutrimatch.ingest.fields import IngestKind
from nutrimatch.ingest.pipeline import SCRATCH_STORAGE, changed_table, duplicates_table, staging_table
from nutrimatch.ingest.validate import (
    ChunkSource,
    Interpretation,
    SourceColumn,
    build_validation,
    lines_to_validate,
    row_hash,
)
from nutrimatch.settings import Settings
from nutrimatch.vocabulary import normalize_allergens, normalize_diet_tags

NORMALIZERS = {"allergens": normalize_allergens, "dietary_tags": normalize_diet_tags}
IMPORT_ROLE = "ingestion"
"""The audit trail's role for changes a file made (the uploader is the actor; the file's rows are the request)."""
BULK_LOAD, UPSERT = "bulk_load", "upsert"
# The duplicate and changed-row hash tables hold the whole file's external ids: 2M of them fit in this.
WHOLE_FILE_WORK_MEM = "256MB"


def _number_rows(conn: Connection, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Each chunk's first row number in the file; row errors found while loading get theirs."""
    ids = {"vendor": job["vendor_id"], "job": job["id"]}
    conn.execute(
        """UPDATE ingestion_chunks c SET row_offset = o.row_offset
             FROM (SELECT chunk_no, coalesce(sum(rows_loaded) OVER (ORDER BY chunk_no
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS row_offset
                     FROM ingestion_chunks WHERE vendor_id = %(vendor)s AND job_id = %(job)s) o
            WHERE c.vendor_id = %(vendor)s AND c.job_id = %(job)s AND c.chunk_no = o.chunk_no""", ids)
    conn.execute(
        """UPDATE ingestion_errors e SET row_number = e.line + c.row_offset
             FROM ingestion_chunks c
            WHERE e.vendor_id = %(vendor)s AND e.job_id = %(job)s AND c.vendor_id = e.vendor_id
              AND c.job_id = e.job_id AND c.chunk_no = e.chunk_no""", ids)
    chunks: list[dict[str, Any]] = conn.execute(
        "SELECT chunk_no, row_offset, rows_loaded FROM ingestion_chunks WHERE vendor_id = %(vendor)s AND "
        "job_id = %(job)s ORDER BY chunk_no", ids).fetchall()
    return chunks


def _every_row(job: dict[str, Any], chunks: list[dict[str, Any]], *columns: str) -> sql.Composable:
    """Every staged record of the job: chunk_no, line, row_number, external_id and the staged `columns`."""
    extra = sql.SQL("").join(sql.SQL(", ") + sql.Identifier("s", column) for column in columns)
    return sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {n} AS chunk_no, s.line, s.line + {offset} AS row_number, s.external_id{extra} "
                "FROM {table} s").format(
            n=sql.Literal(c["chunk_no"]), offset=sql.Literal(c["row_offset"]), extra=extra,
            table=sql.Identifier("staging", staging_table(job["id"], c["chunk_no"])))
        for c in chunks)


def _find_duplicates(conn: Connection, job: dict[str, Any], chunks: list[dict[str, Any]]) -> int:
    """Marks each repeat of an external id after its first row (the first one wins)."""
    table = sql.Identifier("staging", duplicates_table(job["id"]))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    # A hash self-join of the whole file on a 64-bit hash of the id finds the few rows whose key repeats; only
    # those are then compared by the id itself (a hash collision is no duplicate). A join, not a GROUP BY: the
    # workers of a parallel plan share one hash table, where a grouping of 2M distinct keys ends in one process.
    conn.execute(sql.SQL("""
        CREATE UNLOGGED TABLE {table} {storage} AS
        SELECT chunk_no, line, first_row
          FROM (SELECT c.chunk_no, c.line, c.row_number,
                       min(c.row_number) OVER (PARTITION BY c.external_id) AS first_row
                  FROM ({every_row}) c
                 WHERE EXISTS (SELECT FROM ({every_row}) o
                                WHERE o.external_key = c.external_key
                                  AND (o.chunk_no, o.line) <> (c.chunk_no, c.line))) r
         WHERE row_number > first_row""").format(
        table=table, storage=sql.SQL(SCRATCH_STORAGE), every_row=_every_row(job, chunks, "external_key")))
    found = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(table)).fetchone()
    return int(found["n"]) if found else 0


def _find_changed(conn: Connection, job: dict[str, Any], chunks: list[dict[str, Any]]) -> int:
    """The lines to validate: those whose product was not stored from the same source cells read the same
    way (new, changed, or read differently), and the repeats of an external id. How many."""
    table = sql.Identifier("staging", changed_table(job["id"]))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(sql.SQL("""
        CREATE UNLOGGED TABLE {table} {storage} AS
        SELECT r.chunk_no, r.line FROM ({every_row}) r
         WHERE NOT EXISTS (SELECT FROM products p WHERE p.vendor_id = %(vendor)s AND p.external_id = r.external_id
                                                    AND p.source_hash = r.source_hash)
        UNION
        SELECT chunk_no, line FROM {duplicates}""").format(
        table=table, storage=sql.SQL(SCRATCH_STORAGE), every_row=_every_row(job, chunks, "source_hash"),
        duplicates=sql.Identifier("staging", duplicates_table(job["id"]))), {"vendor": job["vendor_id"]})
    found = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(table)).fetchone()
    return int(found["n"]) if found else 0


def _has_rows(conn: Connection, kind: IngestKind, vendor_id: UUID) -> bool:
    found = conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE vendor_id = %s) AS found").format(
        sql.Identifier(kind.value)), (vendor_id,)).fetchone()
    return bool(found and found["found"])


def prepare_merge(settings: Settings, database: Database, job_id: UUID, vendor_id: UUID) -> dict[str, Any]:
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.require_running(conn, vendor_id, job_id)
        kind = IngestKind(job["kind"])
        # Whole-file hash aggregates and joins: in memory, and hashed rather than sorted (the planner prices
        # sorting text, which compares by collation, far too low and would sort two copies of the catalog).
        conn.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(WHOLE_FILE_WORK_MEM)))
        conn.execute("SET LOCAL enable_sort = off")
        conn.execute("SET LOCAL enable_mergejoin = off")
        chunks = _number_rows(conn, job)
        rows = sum(c["rows_loaded"] or 0 for c in chunks)
        if not rows:
            # Most likely an export that went wrong; in mode `replace` it would retire the whole catalog.
            raise InvalidInput("the file has a header but no rows")
        duplicates = _find_duplicates(conn, job, chunks)
        leaves: list[int] = []
        changed: int | None = None
        if rows >= settings.ingest_bulk_load_min_rows and not _has_rows(conn, kind, vendor_id):
            mode, leaves = BULK_LOAD, bulk.create(conn, job)
        else:
            mode = UPSERT
            if kind is IngestKind.PRODUCTS:
                changed = _find_changed(conn, job, chunks)
        conn.execute("UPDATE ingestion_jobs SET plan = plan || %s WHERE vendor_id = %s AND id = %s",
                      (Jsonb({"merge": mode, "bulk_leaves": leaves, "indexed_leaves": []}), vendor_id, job_id))
        jobs.set_phase(conn, vendor_id, job_id, "merging")
    return {"mode": mode, "duplicates": duplicates, "to_validate": changed,
            "leaves": [{"job_id": str(job_id), "vendor_id": str(vendor_id), "leaf": n} for n in leaves]}


def _build_lookups(conn: Connection, source: ChunkSource, columns: dict[str, SourceColumn],
                   list_fields: tuple[str, ...]) -> None:
    """Normalise each DISTINCT allergen / diet-tag cell once, in Python, with the shared vocabulary."""
    for field in list_fields:
        if field not in columns:
            continue
        cells = conn.execute(sql.SQL("SELECT DISTINCT nullif(btrim(s.{}), '') AS raw FROM {} s {}").format(
            sql.Identifier(f"c{columns[field].index}"), sql.Identifier("staging", source.staging_table),
            lines_to_validate(source))).fetchall()
        lookup = sql.Identifier(f"lookup_{field}")
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (raw text PRIMARY KEY, codes text[], unknown text[]) "
                             "ON COMMIT DROP").format(lookup))
        with conn.cursor() as cursor, cursor.copy(sql.SQL("COPY {} FROM STDIN").format(lookup)) as copy:
            for cell in cells:
                if cell["raw"] is not None:
                    codes, unknown = NORMALIZERS[field](cell["raw"])
                    copy.write_row((cell["raw"], sorted(codes), unknown))


def written_columns(reading: Interpretation) -> tuple[str, ...]:
    """Every column a merge writes: the stored values, and for products their hashes and the job's rows_version."""
    extra = ("row_hash", "source_hash", "catalog_version") if reading.kind is IngestKind.PRODUCTS else ()
    return ("id", "vendor_id", *reading.stored_columns(), *extra)


def valid_rows(reading: Interpretation) -> sql.Composable:
    """The valid rows of `validated`, with every written column (%(vendor)s and %(version)s as parameters)."""
    stored = sql.SQL(", ").join(sql.Identifier("v", c) for c in reading.stored_columns())
    extra = (sql.SQL(", {} AS row_hash, v.source_hash, %(version)s AS catalog_version").format(
        row_hash(reading.kind, "v")) if reading.kind is IngestKind.PRODUCTS else sql.SQL(""))
    return sql.SQL("SELECT v.id, %(vendor)s AS vendor_id, {}{} FROM validated v WHERE v.errors IS NULL").format(
        stored, extra)


def upsert(reading: Interpretation, rows: sql.Composable) -> sql.Composed:
    """INSERT … ON CONFLICT of `rows` (with every written column) into the live table, skipping unchanged rows.

    Answers inserted, updated and valid (the rows offered)."""
    table = sql.Identifier(reading.kind.value)
    stored = reading.stored_columns()
    columns = written_columns(reading)
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    updates = sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns[2:])
    unchanged = (sql.SQL("p.row_hash = i.row_hash") if reading.kind is IngestKind.PRODUCTS
                 else sql.SQL("ROW({}) IS NOT DISTINCT FROM ROW({})").format(
                     sql.SQL(", ").join(sql.Identifier("p", c) for c in stored),
                     sql.SQL(", ").join(sql.Identifier("i", c) for c in stored)))
    # Inserted or updated? Partitioned tables cannot return xmax, but an inserted row's created_at is the
    # transaction's now(), and an updated row keeps the created_at of an earlier transaction.
    return sql.SQL("""
        WITH incoming AS ({rows}), written AS (
            INSERT INTO {table} AS t ({names})
            SELECT {i_names} FROM incoming i
             WHERE NOT EXISTS (SELECT FROM {table} p WHERE p.vendor_id = %(vendor)s AND p.id = i.id AND {unchanged})
            ON CONFLICT (vendor_id, id) DO UPDATE SET {updates}, updated_at = now()
            RETURNING t.created_at = now() AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated,
               (SELECT count(*) FROM incoming) AS valid
          FROM written""").format(
        rows=rows, table=table, names=names, i_names=sql.SQL(", ").join(sql.Identifier("i", c) for c in columns),
        unchanged=unchanged, updates=updates)


_REVISED = "UPDATE vendors SET catalog_revision = catalog_revision + 1 WHERE id = %s"


def merge_chunk(database: Database, job_id: UUID, vendor_id: UUID, chunk_no: int) -> dict[str, Any]:
    with scoped_transaction(database.writer, vendor_id) as conn:
        # Shared: a job stopped while this merges waits for it, and counts it (finalize.announce_merged_rows).
        job = jobs.require_running(conn, vendor_id, job_id, share=True)
        chunk = jobs.lock_chunk(conn, vendor_id, job_id, chunk_no)
        if chunk["status"] == "merged":
            return {"chunk_no": chunk_no, "already_merged": True}
        plan = job["plan"]
        reading = Interpretation.of_plan(job["kind"], plan)
        skips_unchanged = plan["merge"] == UPSERT and reading.kind is IngestKind.PRODUCTS
        staging = staging_table(job_id, chunk_no)
        source = ChunkSource(staging, chunk_no, chunk["row_offset"], duplicates_table(job_id),
                             changed_table(job_id) if skips_unchanged else None)
        query = build_validation(reading, source, vendor_id)
        _build_lookups(conn, source, reading.columns, query.list_fields)
        conn.execute(query.statement)
        conn.execute(
            """INSERT INTO ingestion_errors (job_id, vendor_id, chunk_no, line, row_number, column_name, value, reason)
               SELECT %(job)s, %(vendor)s, %(chunk)s, v.line, v.row_number, e.column_name, left(e.value, 200), e.reason
                 FROM validated v, unnest(v.errors) e WHERE v.errors IS NOT NULL""",
            {"job": job_id, "vendor": vendor_id, "chunk": chunk_no})
        params = {"vendor": vendor_id, "version": jobs.rows_version(job)}
        if plan["merge"] == BULK_LOAD:
            inserted = bulk.insert(conn, job, written_columns(reading), valid_rows(reading), params)
            counts = {"inserted": inserted, "updated": 0, "valid": inserted}
        else:
            found = conn.execute(upsert(reading, valid_rows(reading)), params).fetchone()
            assert found is not None
            counts = found
        skipped = _unchanged_rows(conn, job_id, chunk_no) if skips_unchanged else 0
        unchanged = skipped + counts["valid"] - counts["inserted"] - counts["updated"]
        rejected = chunk["rows_loaded"] - skipped - counts["valid"]
        conn.execute(
            """UPDATE ingestion_chunks SET status = 'merged', merged_at = now(), rows_inserted = %s,
                      rows_updated = %s, rows_unchanged = %s, rows_rejected = %s
                WHERE vendor_id = %s AND job_id = %s AND chunk_no = %s""",
            (counts["inserted"], counts["updated"], unchanged, rejected, vendor_id, job_id, chunk_no))
        if skips_unchanged and (counts["inserted"] or counts["updated"]):  # an upsert of products changed rows
            # Live rows changed before the job's catalog version is announced: cached match answers must not
            # outlive this (sql/migrations/0016_catalog_revision.sql). Last, so the vendor's row is locked only
            # until the commit that follows, and parallel chunks do not wait on each other's merges.
            conn.execute(_REVISED, (vendor_id,))
        if reading.kind is IngestKind.CUSTOMERS and (counts["inserted"] or counts["updated"]):
            _audit_customers_import(conn, job, chunk_no)
    return {"chunk_no": chunk_no, "inserted": counts["inserted"], "updated": counts["updated"],
            "unchanged": unchanged, "rejected": rejected}


def _audit_customers_import(conn: Connection, job: dict[str, Any], chunk_no: int) -> None:
    """Customers are PII and their changes are audited (nutrimatch.customers.records): a file's changes as one
    row per chunk that changed any, in the chunk's transaction, by whoever uploaded the file. The job holds the
    counts and leads to the file, so the row seals nothing (and the step needs no data key)."""
    record(conn, vendor_id=job["vendor_id"], actor_user_id=job["created_by"], actor_role=IMPORT_ROLE,
           action="customers.imported", entity="ingestion_job", entity_id=str(job["id"]),
           request=RequestInfo(request_id=f"{job['id']}/chunk-{chunk_no}", ip=None, user_agent=None,
                               justification=None))


def _unchanged_rows(conn: Connection, job_id: UUID, chunk_no: int) -> int:
    """The chunk's staged rows that were not validated: unchanged (see _find_changed)."""
    staged = sql.Identifier("staging", staging_table(job_id, chunk_no))
    changed = sql.Identifier("staging", changed_table(job_id))
    found = conn.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {}) - (SELECT count(*) FROM {} WHERE chunk_no = %s) AS n").format(
        staged, changed), (chunk_no,)).fetchone()
    return int(found["n"]) if found else 0

"""FindDuplicates and MergeChunk: duplicates across the whole file, then validate and upsert chunk by chunk.

A chunk's validation, its row errors, its upsert and its `merged` mark commit together: a retried chunk
either finds its work done or does all of it, so rows are neither lost nor counted twice. Rows whose content
hash has not changed are not written at all (an unchanged re-ingest costs reads, not writes).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import sql

from nutrimatch.db import Connection, Database, scoped_transaction
from nutrimatch.ingest import jobs
from nutrimatch.ingest.fields import IngestKind
from nutrimatch.ingest.pipeline import duplicates_table, staging_table
from nutrimatch.ingest.validate import ChunkSource, SourceColumn, build_validation
from nutrimatch.vocabulary import normalize_allergens, normalize_diet_tags

NORMALIZERS = {"allergens": normalize_allergens, "dietary_tags": normalize_diet_tags}

# Inserted or updated? Partitioned tables cannot return xmax, but an inserted row's created_at is the
# transaction's now(), and an updated row keeps the created_at of an earlier transaction.

# Columns written per kind, after id and vendor_id. Their order is the row hash's order too.
PRODUCT_COLUMNS = ("external_id", "name", "brand", "description", "category", "price", "currency",
                   "nutrient_basis", "serving_size_g", "calories", "protein_g", "carbs_g", "fat_g",
                   "saturated_fat_g", "fiber_g", "sugar_g", "added_sugar_g", "sodium_mg", "potassium_mg",
                   "ingredients", "allergens", "dietary_tags", "status")
CUSTOMER_COLUMNS = ("external_id", "name", "email", "locale", "status")

# How a validated value becomes the stored value (defaults where the file is silent).
_STORED_AS = {
    "currency": "upper(coalesce(v.currency, 'USD'))",
    "nutrient_basis": "%(basis)s::text",
    "dietary_tags": "coalesce(v.dietary_tags, '{}')",
    "status": "lower(coalesce(v.status, 'active'))",
    "email": "lower(v.email)",
    "locale": "coalesce(replace(v.locale, '_', '-'), 'en-US')",
}


def find_duplicates(database: Database, job_id: UUID, vendor_id: UUID) -> dict[str, Any]:
    """Number every record across chunks, then mark each repeat of an external id after its first row."""
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.require_running(conn, vendor_id, job_id)
        conn.execute(
            """UPDATE ingestion_chunks c SET row_offset = o.row_offset
                 FROM (SELECT chunk_no, coalesce(sum(rows_loaded) OVER (ORDER BY chunk_no
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS row_offset
                         FROM ingestion_chunks WHERE vendor_id = %(vendor)s AND job_id = %(job)s) o
                WHERE c.vendor_id = %(vendor)s AND c.job_id = %(job)s AND c.chunk_no = o.chunk_no""",
            {"vendor": vendor_id, "job": job_id})
        conn.execute(
            """UPDATE ingestion_errors e SET row_number = e.line + c.row_offset
                 FROM ingestion_chunks c
                WHERE e.vendor_id = %(vendor)s AND e.job_id = %(job)s AND c.vendor_id = e.vendor_id
                  AND c.job_id = e.job_id AND c.chunk_no = e.chunk_no""", {"vendor": vendor_id, "job": job_id})
        chunks = conn.execute("SELECT chunk_no, row_offset FROM ingestion_chunks WHERE vendor_id = %s AND "
                              "job_id = %s ORDER BY chunk_no", (vendor_id, job_id)).fetchall()
        key = sql.Identifier(f"c{job['plan']['columns']['external_id']['index']}")
        every_row = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {n} AS chunk_no, line, line + {offset} AS row_number, nullif(btrim({key}), '') AS ext "
                    "FROM {table}").format(
                n=sql.Literal(c["chunk_no"]), offset=sql.Literal(c["row_offset"]), key=key,
                table=sql.Identifier("staging", staging_table(job_id, c["chunk_no"])))
            for c in chunks)
        table = sql.Identifier("staging", duplicates_table(job_id))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(sql.SQL("""
            CREATE UNLOGGED TABLE {table} AS
            WITH every_row AS ({every_row}),
                 repeated AS (SELECT ext FROM every_row WHERE ext IS NOT NULL GROUP BY ext HAVING count(*) > 1),
                 ranked AS (SELECT r.chunk_no, r.line, r.row_number,
                                   min(r.row_number) OVER (PARTITION BY r.ext) AS first_row
                              FROM every_row r JOIN repeated USING (ext))
            SELECT chunk_no, line, first_row FROM ranked WHERE row_number > first_row""").format(
            table=table, every_row=every_row))
        duplicates = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(table)).fetchone()
        jobs.set_phase(conn, vendor_id, job_id, "merging")
    return {"duplicates": duplicates["n"] if duplicates else 0}


def _build_lookups(conn: Connection, staging: sql.Identifier, columns: dict[str, SourceColumn],
                   list_fields: tuple[str, ...]) -> None:
    """Normalise each DISTINCT allergen / diet-tag cell once, in Python, with the shared vocabulary."""
    for field in list_fields:
        if field not in columns:
            continue
        source = sql.Identifier(f"c{columns[field].index}")
        cells = conn.execute(sql.SQL("SELECT DISTINCT nullif(btrim({}), '') AS raw FROM {}").format(
            source, staging)).fetchall()
        lookup = sql.Identifier(f"lookup_{field}")
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (raw text PRIMARY KEY, codes text[], unknown text[]) "
                             "ON COMMIT DROP").format(lookup))
        with conn.cursor() as cursor, cursor.copy(sql.SQL("COPY {} FROM STDIN").format(lookup)) as copy:
            for cell in cells:
                if cell["raw"] is not None:
                    codes, unknown = NORMALIZERS[field](cell["raw"])
                    copy.write_row((cell["raw"], sorted(codes), unknown))


def _upsert(kind: IngestKind) -> sql.Composed:
    table, columns = ("products", PRODUCT_COLUMNS) if kind is IngestKind.PRODUCTS else ("customers", CUSTOMER_COLUMNS)
    stored = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(sql.SQL(_STORED_AS.get(c, f"v.{c}")), sql.Identifier(c)) for c in columns)
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    updates = sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns)
    extra_insert = sql.SQL(", row_hash, catalog_version") if kind is IngestKind.PRODUCTS else sql.SQL("")
    extra_values = sql.SQL(", h.row_hash, %(version)s") if kind is IngestKind.PRODUCTS else sql.SQL("")
    extra_update = (sql.SQL(", row_hash = EXCLUDED.row_hash, catalog_version = EXCLUDED.catalog_version")
                    if kind is IngestKind.PRODUCTS else sql.SQL(""))
    unchanged = (sql.SQL("p.row_hash = h.row_hash") if kind is IngestKind.PRODUCTS
                 else sql.SQL("ROW(p.{}) IS NOT DISTINCT FROM ROW(h.{})").format(
                     sql.SQL(", p.").join(map(sql.Identifier, columns)),
                     sql.SQL(", h.").join(map(sql.Identifier, columns))))
    return sql.SQL("""
        WITH incoming AS (
            SELECT entity_uuid(%(vendor)s, v.external_id) AS id, {stored}
              FROM validated v WHERE cardinality(v.errors) = 0 AND v.external_id IS NOT NULL
        ), hashed AS (
            SELECT i.*, decode(md5(ROW({names})::text), 'hex') AS row_hash FROM incoming i
        ), written AS (
            INSERT INTO {table} AS t (id, vendor_id, {names}{extra_insert})
            SELECT h.id, %(vendor)s, {h_names}{extra_values} FROM hashed h
             WHERE NOT EXISTS (SELECT 1 FROM {table} p WHERE p.vendor_id = %(vendor)s AND p.id = h.id AND {unchanged})
            ON CONFLICT (vendor_id, id) DO UPDATE SET {updates}{extra_update}, updated_at = now()
            RETURNING t.created_at = now() AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated,
               (SELECT count(*) FROM incoming) AS valid
          FROM written""").format(
        stored=stored, names=names, table=sql.Identifier(table), extra_insert=extra_insert,
        h_names=sql.SQL(", ").join(sql.SQL("h.{}").format(sql.Identifier(c)) for c in columns),
        extra_values=extra_values, unchanged=unchanged, updates=updates, extra_update=extra_update)


def merge_chunk(database: Database, job_id: UUID, vendor_id: UUID, chunk_no: int) -> dict[str, Any]:
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.require_running(conn, vendor_id, job_id)
        chunk = conn.execute(
            "SELECT * FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s AND chunk_no = %s FOR UPDATE",
            (vendor_id, job_id, chunk_no)).fetchone()
        assert chunk is not None, f"chunk {chunk_no} was never planned"
        if chunk["status"] == "merged":
            return {"chunk_no": chunk_no, "already_merged": True}
        plan = job["plan"]
        kind = IngestKind(job["kind"])
        columns = {field: SourceColumn(spec["index"], spec["factor"]) for field, spec in plan["columns"].items()}
        staging = staging_table(job_id, chunk_no)
        query = build_validation(
            kind, columns, ChunkSource(staging, chunk_no, chunk["row_offset"], duplicates_table(job_id)),
            per_100g=plan["nutrient_basis"] == "per_100g", decimal_comma=plan["dialect"]["decimal_comma"])
        _build_lookups(conn, sql.Identifier("staging", staging), columns, query.list_fields)
        conn.execute(query.statement)
        conn.execute(
            """INSERT INTO ingestion_errors (job_id, vendor_id, chunk_no, line, row_number, column_name, value, reason)
               SELECT %(job)s, %(vendor)s, %(chunk)s, v.line, v.row_number, e.column_name, left(e.value, 200), e.reason
                 FROM validated v, unnest(v.errors) e WHERE cardinality(v.errors) > 0""",
            {"job": job_id, "vendor": vendor_id, "chunk": chunk_no})
        counts = conn.execute(_upsert(kind), {"vendor": vendor_id, "basis": plan["nutrient_basis"],
                                              "version": job["catalog_version"]}).fetchone()
        assert counts is not None
        unchanged = counts["valid"] - counts["inserted"] - counts["updated"]
        rejected = chunk["rows_loaded"] - counts["valid"]
        conn.execute(
            """UPDATE ingestion_chunks SET status = 'merged', merged_at = now(), rows_inserted = %s,
                      rows_updated = %s, rows_unchanged = %s, rows_rejected = %s
                WHERE vendor_id = %s AND job_id = %s AND chunk_no = %s""",
            (counts["inserted"], counts["updated"], unchanged, rejected, vendor_id, job_id, chunk_no))
    return {"chunk_no": chunk_no, "inserted": counts["inserted"], "updated": counts["updated"],
            "unchanged": unchanged, "rejected": rejected}

"""The LoadChunk step: stream one byte range from S3 and COPY it, as text, into an UNLOGGED staging table.

The staging table also derives, as rows arrive, what later steps look rows up by (the external id, and for
products the hash of the source cells): computed here, by the parallel loads, instead of by the serial step
that compares the whole file with the catalog.

The fast path hands the raw bytes straight to COPY (PostgreSQL parses the CSV and converts the encoding).
If COPY refuses the range — a ragged row, a stray blank line, bytes invalid in the declared encoding — the
range is streamed again through Python's csv module: well-formed records are copied, the others recorded as
row errors. Everything happens in one transaction, so a chunk that dies half way leaves nothing behind and
its retry starts clean.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from nutrimatch.db import Connection, Database, scoped_transaction
from nutrimatch.errors import InvalidInput
from nutrimatch.ingest import jobs
from nutrimatch.ingest.pipeline import SCRATCH_STORAGE, staging_table
from nutrimatch.ingest.plan import dialect_of
from nutrimatch.ingest.sniff import Dialect
from nutrimatch.ingest.source import BlockStream, S3Object, transcode_to_utf8
from nutrimatch.ingest.validate import Interpretation

COPY_REFUSALS = (psycopg.errors.BadCopyFileFormat, psycopg.errors.CharacterNotInRepertoire,
                 psycopg.errors.UntranslatableCharacter, psycopg.errors.InvalidTextRepresentation)
ERROR_BATCH = 1000
MAX_ERROR_VALUE = 200


def _columns(count: int) -> list[sql.Identifier]:
    return [sql.Identifier(f"c{i}") for i in range(count)]


def _blocks(source: S3Object, chunk: dict[str, Any], dialect: Dialect) -> Iterator[bytes]:
    blocks = source.stream_range(chunk["byte_start"], chunk["byte_end"])
    return transcode_to_utf8(blocks, dialect.encoding) if dialect.pg_encoding is None else blocks


def _copy_raw(conn: Connection, table: sql.Identifier, columns: list[sql.Identifier], dialect: Dialect,
              blocks: Iterator[bytes]) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, DELIMITER {}, QUOTE '\"', ENCODING {}, "
                        "FREEZE)").format(
        table, sql.SQL(", ").join(columns), sql.Literal(dialect.delimiter),
        sql.Literal(dialect.pg_encoding or "UTF8"))
    with conn.cursor() as cursor:
        with cursor.copy(statement) as copy:
            for block in blocks:
                copy.write(block)
        return cursor.rowcount


def _copy_parsed(conn: Connection, table: sql.Identifier, columns: list[sql.Identifier], dialect: Dialect,
                 blocks: Iterator[bytes], job: dict[str, Any], chunk_no: int) -> int:
    """Record by record: the well-formed ones are copied, the ragged ones become row errors."""
    encoding = "utf-8" if dialect.pg_encoding is None else dialect.encoding
    text = io.TextIOWrapper(io.BufferedReader(BlockStream(blocks)), encoding=encoding, errors="replace",
                            newline="")
    errors: list[tuple[Any, ...]] = []
    line = 0
    statement = sql.SQL("COPY {} (line, {}) FROM STDIN WITH (FREEZE)").format(table, sql.SQL(", ").join(columns))
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        try:
            for record in csv.reader(text, delimiter=dialect.delimiter, quotechar=dialect.quotechar, strict=True):
                if not record:
                    continue  # a blank line is not a record
                line += 1
                if len(record) == len(columns):
                    copy.write_row([line, *record])
                    continue
                errors.append((job["id"], job["vendor_id"], chunk_no, line, None,
                               dialect.delimiter.join(record)[:MAX_ERROR_VALUE],
                               f"expected {len(columns)} columns, found {len(record)}"))
                if len(errors) >= ERROR_BATCH:
                    _write_errors(conn, errors)
        except csv.Error as error:
            raise InvalidInput(f"malformed CSV near record {line + 1} of chunk {chunk_no}: {error}") from error
    _write_errors(conn, errors)
    return line


def _write_errors(conn: Connection, errors: list[tuple[Any, ...]]) -> None:
    if errors:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ingestion_errors (job_id, vendor_id, chunk_no, line, column_name, value, reason) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)", errors)
        errors.clear()


def load_chunk(database: Database, s3: Any, job_id: UUID, vendor_id: UUID, chunk_no: int) -> dict[str, Any]:
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.require_running(conn, vendor_id, job_id)
        chunk = jobs.lock_chunk(conn, vendor_id, job_id, chunk_no)
        if chunk["status"] != "pending":
            return {"chunk_no": chunk_no, "rows": chunk["rows_loaded"], "method": chunk["load_method"]}
        plan = job["plan"]
        dialect = dialect_of(plan)
        table = sql.Identifier("staging", staging_table(job_id, chunk_no))
        columns = _columns(plan["source_columns"])
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        # Line numbers from a sequence cached in the session: COPY draws one per row. The derived columns lead,
        # fixed-width ones first, so the whole-file steps read them at known offsets instead of walking every
        # text cell of the row.
        create = sql.SQL("CREATE UNLOGGED TABLE {} (line bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 1000), "
                         "{}) {}").format(
            table, sql.SQL(", ").join([*Interpretation.of_plan(job["kind"], plan).derived_columns(),
                                       *(sql.SQL("{} text").format(c) for c in columns)]),
            sql.SQL(SCRATCH_STORAGE))
        source = S3Object(s3, job["s3_bucket"], job["s3_key"])
        method = "copy"
        try:
            # Created in the COPY's own subtransaction, so the COPY may FREEZE its rows.
            with conn.transaction():
                conn.execute(create)
                rows = _copy_raw(conn, table, columns, dialect, _blocks(source, chunk, dialect))
        except COPY_REFUSALS:
            method = "parsed"
            conn.execute(create)
            rows = _copy_parsed(conn, table, columns, dialect, _blocks(source, chunk, dialect), job, chunk_no)
        conn.execute(
            """UPDATE ingestion_chunks SET status = 'loaded', load_method = %s, rows_loaded = %s,
                      load_attempts = load_attempts + 1, loaded_at = now()
                WHERE vendor_id = %s AND job_id = %s AND chunk_no = %s""",
            (method, rows, vendor_id, job_id, chunk_no))
    return {"chunk_no": chunk_no, "rows": rows, "method": method}

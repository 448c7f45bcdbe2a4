"""The LoadChunk step: stream one byte range from S3 and COPY it, as text, into an UNLOGGED staging table.

The staging table also derives, as rows arrive, what later steps look rows up by (the external id, and for
products the hash of the source cells): computed here, by the parallel loads, instead of by the serial step
that compares the whole file with the catalog.

The fast path hands the raw bytes straight to COPY (PostgreSQL parses the CSV and converts the encoding).
If COPY refuses the range — a ragged row, a stray blank line, bytes invalid in the declared encoding, a NUL —
or the range holds a line of just `\\.` (COPY … CSV would take it for the end of its data and drop the rest
without a word), the range is streamed again through Python's csv module: well-formed records are copied, the
others recorded as row errors with their external id where its cell can be read (so a `replace` does not
retire the products they list). Everything happens in one transaction, so a chunk that dies half way leaves
nothing behind and its retry starts clean.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterator
from typing import IO, Any
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
MAX_ERROR_VALUE = 200
ERROR_SPOOL_BYTES = 1024 * 1024
# PostgreSQL's CSV COPY reads an unquoted line of just `\.` as the end of its data, and silently ignores the rest.
_END_OF_DATA_LINE = re.compile(rb"[\r\n]\\\.[\r\n]")
# Text PostgreSQL cannot store: NUL, and the bytes invalid in the file's encoding (decoded as lone surrogates).
_UNSTORABLE = re.compile("[\x00\udc80-\udcff]")


class EndOfDataLine(Exception):
    """A range holds a line that COPY … CSV would take for the end of its data: it is loaded record by record."""


def _columns(count: int) -> list[sql.Identifier]:
    return [sql.Identifier(f"c{i}") for i in range(count)]


def _blocks(source: S3Object, chunk: dict[str, Any], dialect: Dialect) -> Iterator[bytes]:
    blocks = source.stream_range(chunk["byte_start"], chunk["byte_end"])
    return transcode_to_utf8(blocks, dialect.encoding) if dialect.pg_encoding is None else blocks


def without_end_of_data_line(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """`blocks`, checked for a line of just `\\.` (raises EndOfDataLine). Quotes are not followed, so such a
    line inside a quoted field is taken for one too: the range is then only loaded the slower way."""
    tail = b"\n"  # a range starts at the start of a line
    for block in blocks:
        edge = tail + block[:3]
        # A lone byte is found at memchr's speed, a pair of bytes far slower; most blocks hold no backslash at all.
        if (b"\\" in edge and _END_OF_DATA_LINE.search(edge)) or (
                b"\\" in block and _END_OF_DATA_LINE.search(block)):
            raise EndOfDataLine
        tail = (tail + block[-3:])[-3:]
        yield block
    if _END_OF_DATA_LINE.search(tail + b"\n"):
        raise EndOfDataLine


def _copy_raw(conn: Connection, table: sql.Identifier, columns: list[sql.Identifier], dialect: Dialect,
              blocks: Iterator[bytes]) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, DELIMITER {}, QUOTE '\"', ENCODING {}, "
                        "FREEZE)").format(
        table, sql.SQL(", ").join(columns), sql.Literal(dialect.delimiter),
        sql.Literal(dialect.pg_encoding or "UTF8"))
    with conn.cursor() as cursor:
        with cursor.copy(statement) as copy:
            for block in without_end_of_data_line(blocks):
                copy.write(block)
        return cursor.rowcount


def _copy_parsed(conn: Connection, table: sql.Identifier, columns: list[sql.Identifier], dialect: Dialect,
                 blocks: Iterator[bytes], job: dict[str, Any], chunk_no: int) -> int:
    """Record by record: the well-formed ones are copied, the others become row errors (spooled while the COPY
    runs, which holds the connection, and written after it)."""
    encoding = "utf-8" if dialect.pg_encoding is None else dialect.encoding
    text = io.TextIOWrapper(io.BufferedReader(BlockStream(blocks)), encoding=encoding, errors="surrogateescape",
                            newline="")
    external_id = job["plan"]["columns"]["external_id"]["index"]
    line = 0
    statement = sql.SQL("COPY {} (line, {}) FROM STDIN WITH (FREEZE)").format(table, sql.SQL(", ").join(columns))
    with tempfile.SpooledTemporaryFile(ERROR_SPOOL_BYTES, "w+", encoding="utf-8", newline="") as spool:
        rejected = csv.writer(spool)
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            try:
                for record in csv.reader(text, delimiter=dialect.delimiter, quotechar=dialect.quotechar,
                                         strict=True):
                    if not record:
                        continue  # a blank line is not a record
                    line += 1
                    reason = _rejection(record, len(columns), dialect.encoding)
                    if reason is None:
                        copy.write_row([line, *record])
                        continue
                    key = record[external_id].strip(" ") if external_id < len(record) else ""
                    rejected.writerow((line, _UNSTORABLE.sub("\ufffd", key) or None,
                                       _UNSTORABLE.sub("\ufffd", dialect.delimiter.join(record)[:MAX_ERROR_VALUE]),
                                       reason))
            except csv.Error as error:
                raise InvalidInput(f"malformed CSV near record {line + 1} of chunk {chunk_no}: {error}") from error
        _write_errors(conn, spool, job, chunk_no)
    return line


def _rejection(record: list[str], columns: int, encoding: str) -> str | None:
    """Why a record cannot be staged, or None."""
    if len(record) != columns:
        return f"expected {columns} columns, found {len(record)}"
    unstorable = next((found for cell in record if (found := _UNSTORABLE.search(cell))), None)
    if unstorable is None:
        return None
    if unstorable.group() == "\x00":
        return "contains a NUL byte"
    return f"holds bytes that are not valid {encoding}, the encoding of the file"


_LOAD_ERRORS = "CREATE TEMP TABLE load_errors (line bigint, external_id text, value text, reason text) ON COMMIT DROP"
_SAVE_LOAD_ERRORS = """INSERT INTO ingestion_errors (job_id, vendor_id, chunk_no, line, external_id, value, reason)
                       SELECT %s, %s, %s, line, external_id, value, reason FROM load_errors"""


def _write_errors(conn: Connection, spool: IO[str], job: dict[str, Any], chunk_no: int) -> None:
    """The spooled row errors, into ingestion_errors (through a temporary table: COPY cannot write a table
    under row-level security)."""
    if not spool.tell():
        return
    spool.seek(0)
    conn.execute(_LOAD_ERRORS)
    with conn.cursor() as cursor, cursor.copy("COPY load_errors FROM STDIN WITH (FORMAT csv)") as copy:
        while block := spool.read(ERROR_SPOOL_BYTES):
            copy.write(block)
    conn.execute(_SAVE_LOAD_ERRORS, (job["id"], job["vendor_id"], chunk_no))


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
        except (*COPY_REFUSALS, EndOfDataLine):
            method = "parsed"
            conn.execute(create)
            rows = _copy_parsed(conn, table, columns, dialect, _blocks(source, chunk, dialect), job, chunk_no)
        conn.execute(
            """UPDATE ingestion_chunks SET status = 'loaded', load_method = %s, rows_loaded = %s,
                      load_attempts = load_attempts + 1, loaded_at = now()
                WHERE vendor_id = %s AND job_id = %s AND chunk_no = %s""",
            (method, rows, vendor_id, job_id, chunk_no))
    return {"chunk_no": chunk_no, "rows": rows, "method": method}

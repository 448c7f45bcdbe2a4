"""Bulk loading a vendor's first catalog (or first customers) without maintaining indexes row by row.

Maintaining the full-text GIN index, the sort indexes and the primary key for every inserted row costs more
than computing the rows. So when the vendor has none of these rows yet, PrepareMerge creates a shadow of the
vendor's partitions without indexes (`staging.bulk_<job>`, same columns, defaults, generated search vector
and checks); MergeChunk inserts the valid rows there; IndexLeaf builds on each shadow leaf the indexes of its
live sibling and analyzes it (the Map spreads the leaves over the workers); Finalize swaps the shadow leaves
in for the vendor's empty leaves, in one short transaction that locks only the vendor's own partition. The
DDL runs as the tables' owner through the SECURITY DEFINER functions of sql/migrations/0009_bulk_load.sql.

Nothing is visible before the swap, every step is one transaction (a retried chunk finds its rows either
inserted and marked merged, or absent), and a failed job's shadow is dropped by MarkFailed. Should another
job have filled the vendor's partition meanwhile, the swap does nothing and the shadow's rows are upserted.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import sql

from nutrimatch.db import Connection, Database, scoped_transaction
from nutrimatch.ingest import jobs


def create(conn: Connection, job: dict[str, Any]) -> list[int]:
    """The job's (empty) shadow; the hash remainders of its leaves."""
    found = conn.execute("SELECT create_bulk_load(%s, %s, %s) AS leaves",
                         (job["vendor_id"], job["id"], job["kind"])).fetchone()
    assert found is not None
    return list(found["leaves"])


def shadow(conn: Connection, job_id: UUID) -> sql.Identifier:
    found = conn.execute("SELECT bulk_load_table(%s) AS name", (job_id,)).fetchone()
    assert found is not None
    return sql.Identifier("staging", found["name"])


def insert(conn: Connection, job: dict[str, Any], columns: tuple[str, ...], rows: sql.Composable,
           params: dict[str, Any]) -> int:
    """Inserts `rows` (with `columns`) into the job's shadow; how many."""
    statement = sql.SQL("INSERT INTO {} ({}) {}").format(
        shadow(conn, job["id"]), sql.SQL(", ").join(map(sql.Identifier, columns)), rows)
    return conn.execute(statement, params).rowcount


def index_leaf(database: Database, job_id: UUID, vendor_id: UUID, leaf: int) -> dict[str, Any]:
    """The IndexLeaf step: one shadow leaf gets its live sibling's indexes and fresh statistics."""
    with scoped_transaction(database.writer, vendor_id) as conn:
        # Its own short transaction: the leaves are indexed in parallel, each holding its lock for a while.
        conn.execute("UPDATE ingestion_jobs SET phase = 'indexing', updated_at = now() "
                     "WHERE vendor_id = %s AND id = %s AND phase = 'merging'", (vendor_id, job_id))
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.require_running(conn, vendor_id, job_id)
        conn.execute("SELECT index_bulk_load_leaf(%s, %s, %s, %s)", (vendor_id, job_id, job["kind"], leaf))
        # A set of leaf numbers, not a count: a retried leaf is not counted twice.
        conn.execute(
            """UPDATE ingestion_jobs SET updated_at = now(), plan = jsonb_set(plan, '{indexed_leaves}', (
                      SELECT jsonb_agg(DISTINCT n) FROM jsonb_array_elements(
                             coalesce(plan -> 'indexed_leaves', '[]') || to_jsonb(%s::int)) AS leaves(n)))
                WHERE vendor_id = %s AND id = %s""", (leaf, vendor_id, job_id))
    return {"leaf": leaf}


def swap_in(conn: Connection, job: dict[str, Any]) -> bool:
    """Replaces the vendor's empty leaves by the shadow's; False (and nothing done) if they are not empty."""
    found = conn.execute("SELECT swap_in_bulk_load(%s, %s, %s) AS swapped",
                         (job["vendor_id"], job["id"], job["kind"])).fetchone()
    return bool(found and found["swapped"])


def drop(conn: Connection, job: dict[str, Any]) -> None:
    conn.execute("SELECT drop_bulk_load(%s, %s)", (job["vendor_id"], job["id"]))

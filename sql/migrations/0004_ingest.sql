-- Ingestion pipeline: per-chunk bookkeeping, row errors, learned header mappings, the event outbox, and the
-- staging schema where each chunk is COPYed as text before it is validated and merged.

ALTER TABLE ingestion_jobs
    ADD COLUMN plan jsonb,
    ADD COLUMN catalog_version bigint;

CREATE SCHEMA staging;
-- Chunk tables are created and dropped by the pipeline; they are never exposed through the API.
GRANT USAGE, CREATE ON SCHEMA staging TO nutrimatch_app;

CREATE TABLE ingestion_chunks (
    job_id          uuid NOT NULL REFERENCES ingestion_jobs (id) ON DELETE CASCADE,
    vendor_id       uuid NOT NULL,
    chunk_no        integer NOT NULL,
    byte_start      bigint NOT NULL,
    byte_end        bigint NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'loaded', 'merged')),
    load_method     text CHECK (load_method IN ('copy', 'parsed')),
    rows_loaded     bigint,
    row_offset      bigint,
    rows_inserted   bigint,
    rows_updated    bigint,
    rows_unchanged  bigint,
    rows_rejected   bigint,
    load_attempts   integer NOT NULL DEFAULT 0,
    loaded_at       timestamptz,
    merged_at       timestamptz,
    PRIMARY KEY (job_id, chunk_no)
);

CREATE TABLE ingestion_errors (
    job_id       uuid NOT NULL REFERENCES ingestion_jobs (id) ON DELETE CASCADE,
    vendor_id    uuid NOT NULL,
    chunk_no     integer NOT NULL,
    line         bigint NOT NULL,
    row_number   bigint,
    column_name  text,
    value        text,
    reason       text NOT NULL
);
CREATE INDEX ingestion_errors_job_idx ON ingestion_errors (job_id, chunk_no, line);

CREATE TABLE header_mappings (
    vendor_id          uuid NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('products', 'customers')),
    header_normalized  text NOT NULL,
    field              text,
    confirmed_by       text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor_id, kind, header_normalized)
);

-- Events for webhooks: written in the transaction of what they announce, delivered later (never lost).
CREATE TABLE outbox_events (
    id            uuid PRIMARY KEY,
    vendor_id     uuid NOT NULL,
    event_type    text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_events_unpublished_idx ON outbox_events (created_at) WHERE published_at IS NULL;

-- A row error as the validation SQL produces it.
CREATE TYPE ingest_row_error AS (column_name text, value text, reason text);

-- Numbers as vendors write them: optional sign, decimals, surrounding spaces; decimal commas when the file
-- uses them. Anything else is NULL (and becomes a row error where the cell was not empty).
CREATE FUNCTION ingest_parse_numeric(raw text, decimal_comma boolean) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN v ~ '^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$' THEN v::numeric END
    FROM (SELECT CASE WHEN decimal_comma THEN replace(btrim(raw), ',', '.') ELSE btrim(raw) END AS v) s
$$;

-- Statistics for the partitions one job touched (the application role does not own them).
CREATE FUNCTION analyze_vendor_partitions(vendor uuid, base text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
BEGIN
    IF base NOT IN ('products', 'customers') THEN
        RAISE EXCEPTION 'unknown table %', base;
    END IF;
    EXECUTE format('ANALYZE %I', vendor_partition_name(base, vendor));
END
$$;

ALTER TABLE ingestion_chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingestion_chunks
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());
ALTER TABLE ingestion_errors ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingestion_errors
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());
ALTER TABLE header_mappings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON header_mappings
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());
ALTER TABLE outbox_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox_events
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

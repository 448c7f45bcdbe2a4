-- Uploads: ingestion jobs (shared with the ingestion pipeline) and the state of tus uploads.

CREATE TABLE ingestion_jobs (
    id                   uuid PRIMARY KEY,
    -- No foreign key to vendors (as for products and customers): purging a vendor must not trip over them.
    vendor_id            uuid NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('products', 'customers')),
    mode                 text NOT NULL CHECK (mode IN ('upsert', 'replace')),
    status               text NOT NULL DEFAULT 'awaiting_upload' CHECK (status IN (
                             'awaiting_upload', 'uploading', 'uploaded', 'queued', 'running', 'completed',
                             'failed', 'cancelled')),
    phase                text,
    file_name            text NOT NULL,
    content_type         text NOT NULL DEFAULT 'text/csv',
    size_bytes           bigint NOT NULL CHECK (size_bytes > 0),
    content_sha256       text CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    s3_bucket            text NOT NULL,
    s3_key               text NOT NULL,
    upload_method        text NOT NULL CHECK (upload_method IN ('multipart', 'tus')),
    multipart_upload_id  text,
    -- Presigned multipart: the size of every part but the last. tus: the smallest part it will write.
    part_size            bigint CHECK (part_size > 0),
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    uploaded_at          timestamptz,
    started_at           timestamptz,
    finished_at          timestamptz,
    error                jsonb,
    counts               jsonb NOT NULL DEFAULT '{}',
    progress             jsonb NOT NULL DEFAULT '{}',
    mapping              jsonb
);
CREATE INDEX ingestion_jobs_vendor_idx ON ingestion_jobs (vendor_id, created_at DESC);
-- The S3 event names the object; the ingestion starter finds its job by key.
CREATE UNIQUE INDEX ingestion_jobs_key_idx ON ingestion_jobs (s3_bucket, s3_key);

-- A tus upload: where its bytes stand. Its S3 multipart upload is the job's; parts hold everything before
-- the tail, the tail object the bytes after the last part (under S3's 5 MiB part minimum).
CREATE TABLE tus_uploads (
    id              uuid PRIMARY KEY,
    vendor_id       uuid NOT NULL,
    job_id          uuid NOT NULL UNIQUE REFERENCES ingestion_jobs (id) ON DELETE CASCADE,
    upload_length   bigint NOT NULL CHECK (upload_length > 0),
    upload_offset   bigint NOT NULL DEFAULT 0 CHECK (upload_offset BETWEEN 0 AND upload_length),
    -- The Upload-Metadata header as the client sent it (HEAD echoes it) and its decoded pairs.
    raw_metadata    text,
    metadata        jsonb NOT NULL DEFAULT '{}',
    -- [{"part_number": 1, "etag": "\"…\"", "size": 10485760}, …] in part order.
    parts           jsonb NOT NULL DEFAULT '[]',
    tail_key        text,
    tail_size       bigint NOT NULL DEFAULT 0 CHECK (tail_size >= 0),
    expires_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((tail_size = 0) = (tail_key IS NULL))
);
CREATE INDEX tus_uploads_expiry_idx ON tus_uploads (expires_at) WHERE completed_at IS NULL;

ALTER TABLE ingestion_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingestion_jobs
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

ALTER TABLE tus_uploads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tus_uploads
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

-- Expiry runs for every vendor at once: it lists the expired uploads (ids only) here, then cleans each one
-- up in a transaction scoped to its vendor.
CREATE FUNCTION expired_tus_uploads(p_limit integer) RETURNS TABLE (id uuid, vendor_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
    SELECT id, vendor_id FROM tus_uploads
     WHERE completed_at IS NULL AND expires_at < now()
     ORDER BY expires_at
     LIMIT p_limit
$$;

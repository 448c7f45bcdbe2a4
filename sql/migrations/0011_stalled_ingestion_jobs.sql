-- Jobs whose pipeline stopped without its last word: the execution timed out or was stopped from outside, so
-- neither Finalize nor MarkFailed ran and the job would stay `queued` or `running` for ever, its staging
-- tables and shadow kept. The sweeper (nutrimatch.ingest.finalize.fail_stalled) lists them here for every
-- vendor at once (ids only), then fails each one in a transaction scoped to its vendor.
CREATE FUNCTION stalled_ingestion_jobs(p_idle interval, p_limit integer) RETURNS TABLE (id uuid, vendor_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
    SELECT id, vendor_id FROM ingestion_jobs
     WHERE status IN ('queued', 'running') AND updated_at < now() - p_idle
     ORDER BY updated_at
     LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION stalled_ingestion_jobs(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stalled_ingestion_jobs(interval, integer) TO nutrimatch_app;

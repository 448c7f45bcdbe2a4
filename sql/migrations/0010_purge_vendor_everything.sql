-- Purging an offboarded vendor removes everything it owns that later migrations added: ingestion jobs (with
-- their chunks, row errors and tus uploads, by cascade), learned header mappings and undelivered events.
-- The audit trail stays (HIPAA retention, append-only); profiles and data keys go by cascade from vendors.
CREATE OR REPLACE FUNCTION purge_vendor(p_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM vendors WHERE id = p_id AND status = 'deleted') THEN
        RETURN false;
    END IF;
    PERFORM drop_vendor_partitions(p_id);
    DELETE FROM ingestion_jobs WHERE vendor_id = p_id;
    DELETE FROM header_mappings WHERE vendor_id = p_id;
    DELETE FROM outbox_events WHERE vendor_id = p_id;
    DELETE FROM api_keys WHERE vendor_id = p_id;
    DELETE FROM vendors WHERE id = p_id;
    RETURN true;
END
$$;

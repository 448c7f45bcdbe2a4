-- The full-text index of a vendor's products is left with no pending entries by every ingestion that changes them.
--
-- A GIN index with fastupdate (the default) puts new entries in a pending list, moved into the index proper only
-- when the list outgrows gin_pending_list_limit (4 MB per leaf) or autovacuum visits the leaf; until then every
-- full-text lookup reads the whole list. An upsert that renamed 2 % of a 2M-product catalog made searches 60 %
-- slower (mean 8.5 → 13.8 ms, two-word queries 9.8 → 21.5 ms), and a vendor's 16 leaves may keep up to 64 MB
-- pending indefinitely. Finalize flushes the lists of the vendor's leaves instead, in one sorted pass (the cost
-- fastupdate deferred). SECURITY DEFINER: gin_clean_pending_list is for the index's owner.
CREATE FUNCTION flush_vendor_search_index(vendor uuid) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    leaf_index regclass;
    flushed_pages bigint := 0;
BEGIN
    FOR leaf_index IN
        SELECT i.indexrelid::regclass
          FROM pg_partition_tree(vendor_partition_name('products', vendor)::regclass) AS tree
          JOIN pg_index i ON i.indrelid = tree.relid
          JOIN pg_class index_class ON index_class.oid = i.indexrelid
          JOIN pg_am am ON am.oid = index_class.relam
         WHERE tree.isleaf AND am.amname = 'gin'
    LOOP
        flushed_pages := flushed_pages + gin_clean_pending_list(leaf_index);
    END LOOP;
    RETURN flushed_pages;
END
$$;

REVOKE ALL ON FUNCTION flush_vendor_search_index(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flush_vendor_search_index(uuid) TO nutrimatch_app;

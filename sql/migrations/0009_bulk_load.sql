-- Fast ingestion: a vendor's first catalog is bulk-loaded into shadow partitions without indexes that then
-- replace its empty partitions; later files skip the rows whose source did not change. See
-- nutrimatch.ingest.bulk and nutrimatch.ingest.merge.

-- A hash of the source cells a product was loaded from (and of how they were read: the header mapping, units
-- and rules). A re-ingest compares it with the cells it staged, and does not validate what did not change.
-- NULL when unknown (retired products, rows written before this column).
ALTER TABLE products ADD COLUMN source_hash bigint;

-- entity_uuid over an already computed sha256(uuid_send(vendor) || convert_to(external_id, 'UTF8')): the same
-- UUID, but a statement that computes the digest once (in a subquery) does not hash each row three times.
CREATE FUNCTION entity_uuid_of_digest(digest bytea) RETURNS uuid
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT encode(set_byte(set_byte(substring(digest FROM 1 FOR 16), 6, (get_byte(digest, 6) & 15) | 128),
                           8, (get_byte(digest, 8) & 63) | 128), 'hex')::uuid
$$;

-- Bulk loads ------------------------------------------------------------------------------------------------
-- The shadow of one job: staging.bulk_<job>, partitioned like the vendor's partition of `base` (products or
-- customers), same columns, defaults, generated columns and checks, no indexes. Each shadow leaf also carries
-- its vendor and its hash bound as CHECK constraints, so attaching it proves the partition constraint from
-- them instead of scanning the rows.

CREATE FUNCTION bulk_load_table(job uuid) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT 'bulk_' || replace(job::text, '-', '') $$;

CREATE FUNCTION bulk_load_leaf(job uuid, remainder integer) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT bulk_load_table(job) || '_p' || lpad(remainder::text, 2, '0') $$;

-- The leaves of the vendor's partition of `base`, with their hash bounds.
CREATE FUNCTION vendor_leaves(base text, vendor uuid)
    RETURNS TABLE (leaf oid, leaf_name name, modulus integer, remainder integer)
    LANGUAGE sql STABLE
AS $$
    SELECT c.oid, c.relname, bound[1]::integer, bound[2]::integer
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid,
           regexp_match(pg_get_expr(c.relpartbound, c.oid), 'modulus (\d+), remainder (\d+)') AS bound
     WHERE i.inhparent = to_regclass(quote_ident(vendor_partition_name(base, vendor)))
     ORDER BY 4
$$;

-- The bulk-load functions run as the tables' owner: they act only for the transaction's own vendor, on a job
-- of that vendor of the given kind.
CREATE FUNCTION bulk_load_check(vendor uuid, job uuid, base text) RETURNS void
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF vendor IS DISTINCT FROM app_vendor_id()
       OR NOT EXISTS (SELECT 1 FROM ingestion_jobs j WHERE j.id = job AND j.vendor_id = vendor AND j.kind = base) THEN
        RAISE EXCEPTION 'no % job % for the current vendor', base, job USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- Creates (afresh) the job's shadow table; returns the remainders of its leaves.
CREATE FUNCTION create_bulk_load(vendor uuid, job uuid, base text) RETURNS integer[]
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    shadow text := bulk_load_table(job);
    live text := vendor_partition_name(base, vendor);
    part record;
BEGIN
    PERFORM bulk_load_check(vendor, job, base);
    EXECUTE format('DROP TABLE IF EXISTS staging.%I', shadow);
    EXECUTE format('CREATE TABLE staging.%I (LIKE %I INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS '
                   'INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY HASH (id)', shadow, base);
    FOR part IN SELECT * FROM vendor_leaves(base, vendor) LOOP
        -- No autovacuum while the job fills it: it would compete for the cores and block the swap.
        EXECUTE format('CREATE TABLE staging.%I PARTITION OF staging.%I ('
                       '  CONSTRAINT bulk_load_vendor CHECK (vendor_id = %L::uuid),'
                       '  CONSTRAINT bulk_load_bound CHECK (satisfies_hash_partition(%L::regclass, %s, %s, id))'
                       ') FOR VALUES WITH (MODULUS %s, REMAINDER %s)'
                       ' WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)',
                       bulk_load_leaf(job, part.remainder), shadow, vendor, quote_ident(live), part.modulus,
                       part.remainder, part.modulus, part.remainder);
    END LOOP;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'vendor % has no % partitions', vendor, base;
    END IF;
    EXECUTE format('ALTER TABLE staging.%I ENABLE ROW LEVEL SECURITY', shadow);
    EXECUTE format('CREATE POLICY tenant_isolation ON staging.%I USING (vendor_id = app_vendor_id()) '
                   'WITH CHECK (vendor_id = app_vendor_id())', shadow);
    EXECUTE format('GRANT SELECT, INSERT ON staging.%I TO nutrimatch_app', shadow);
    RETURN ARRAY(SELECT remainder FROM vendor_leaves(base, vendor));
END
$$;

-- Builds on one shadow leaf every index its live sibling has (whatever migrations added), then analyzes it.
-- Idempotent: an index built by an earlier attempt is kept.
CREATE FUNCTION index_bulk_load_leaf(vendor uuid, job uuid, base text, leaf_remainder integer) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
    -- A GIN index builds fastest when its entries fit in memory; the Map already keeps every core busy.
    SET maintenance_work_mem = '256MB' SET max_parallel_maintenance_workers = 0
AS $$
DECLARE
    shadow_leaf text := bulk_load_leaf(job, leaf_remainder);
    sibling oid;
    ix record;
    index_name text;
BEGIN
    PERFORM bulk_load_check(vendor, job, base);
    SELECT l.leaf INTO STRICT sibling FROM vendor_leaves(base, vendor) l WHERE l.remainder = leaf_remainder;
    FOR ix IN
        SELECT row_number() OVER (ORDER BY i.indexrelid) AS n, con.conname,
               pg_get_constraintdef(con.oid) AS constraint_def, pg_get_indexdef(i.indexrelid) AS index_def
          FROM pg_index i
          LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
         WHERE i.indrelid = sibling
    LOOP
        -- Job-specific names (two jobs may shadow the same vendor); the swap gives them their siblings' names.
        index_name := shadow_leaf || '_i' || ix.n;
        CONTINUE WHEN to_regclass(format('staging.%I', index_name)) IS NOT NULL;
        IF ix.conname IS NOT NULL THEN
            -- A primary key or unique constraint: the parent's constraint index attaches only to a constraint.
            EXECUTE format('ALTER TABLE staging.%I ADD CONSTRAINT %I %s', shadow_leaf, index_name, ix.constraint_def);
        ELSE
            EXECUTE regexp_replace(ix.index_def, '^(CREATE (UNIQUE )?INDEX )\S+ ON (ONLY )?\S+ ',
                                   format('\1%I ON staging.%I ', index_name, shadow_leaf));
        END IF;
    END LOOP;
    EXECUTE format('ANALYZE staging.%I', shadow_leaf);
END
$$;

-- Replaces the vendor's leaves by the job's shadow leaves, which keep their statistics and whose indexes
-- attach to the partitioned indexes without a rebuild. Only the vendor's own partition is locked, briefly.
-- Returns false, changing nothing, when the vendor's partition is no longer empty (another job loaded rows
-- meanwhile): the caller then merges the shadow's rows the ordinary way.
CREATE FUNCTION swap_in_bulk_load(vendor uuid, job uuid, base text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    shadow text := bulk_load_table(job);
    live text := vendor_partition_name(base, vendor);
    parts jsonb;
    part record;
    shadow_leaf text;
    occupied boolean;
    sibling_names jsonb;
    ix record;
BEGIN
    PERFORM bulk_load_check(vendor, job, base);
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', live);
    EXECUTE format('SELECT EXISTS (SELECT FROM %I)', live) INTO occupied;
    IF occupied THEN
        RETURN false;
    END IF;
    -- Read before the loop changes them.
    parts := (SELECT jsonb_agg(l) FROM vendor_leaves(base, vendor) l);
    FOR part IN SELECT * FROM jsonb_to_recordset(parts) AS l(leaf oid, leaf_name text, modulus integer,
                                                              remainder integer) LOOP
        shadow_leaf := bulk_load_leaf(job, part.remainder);
        -- The live leaf's index names, by the partitioned index each one belongs to.
        SELECT jsonb_object_agg(h.inhparent::text, c.relname) INTO sibling_names
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_inherits h ON h.inhrelid = i.indexrelid
         WHERE i.indrelid = part.leaf;
        EXECUTE format('DROP TABLE %I', part.leaf_name);
        EXECUTE format('ALTER TABLE staging.%I DETACH PARTITION staging.%I', shadow, shadow_leaf);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION staging.%I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                       live, shadow_leaf, part.modulus, part.remainder);
        EXECUTE format('ALTER TABLE staging.%I DROP CONSTRAINT bulk_load_vendor, DROP CONSTRAINT bulk_load_bound, '
                       'RESET (autovacuum_enabled, toast.autovacuum_enabled)', shadow_leaf);
        EXECUTE format('ALTER TABLE staging.%I SET SCHEMA public', shadow_leaf);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', shadow_leaf, part.leaf_name);
        FOR ix IN
            SELECT c.relname, h.inhparent
              FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_inherits h ON h.inhrelid = i.indexrelid
             WHERE i.indrelid = to_regclass(quote_ident(part.leaf_name))
        LOOP
            CONTINUE WHEN sibling_names ->> ix.inhparent::text IS NULL;
            EXECUTE format('ALTER INDEX %I RENAME TO %I', ix.relname, sibling_names ->> ix.inhparent::text);
        END LOOP;
        -- Partitions are reached only through the parent, where RLS applies (as create_vendor_partitions).
        EXECUTE format('REVOKE ALL ON %I FROM nutrimatch_app', part.leaf_name);
    END LOOP;
    EXECUTE format('DROP TABLE staging.%I', shadow);
    RETURN true;
END
$$;

-- A failed or finished job's shadow, if any.
CREATE FUNCTION drop_bulk_load(vendor uuid, job uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
BEGIN
    PERFORM bulk_load_check(vendor, job, (SELECT kind FROM ingestion_jobs WHERE id = job AND vendor_id = vendor));
    EXECUTE format('DROP TABLE IF EXISTS staging.%I', bulk_load_table(job));
END
$$;

REVOKE ALL ON FUNCTION create_bulk_load(uuid, uuid, text), index_bulk_load_leaf(uuid, uuid, text, integer),
    swap_in_bulk_load(uuid, uuid, text), drop_bulk_load(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_bulk_load(uuid, uuid, text), index_bulk_load_leaf(uuid, uuid, text, integer),
    swap_in_bulk_load(uuid, uuid, text), drop_bulk_load(uuid, uuid) TO nutrimatch_app;

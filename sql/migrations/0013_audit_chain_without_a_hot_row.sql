-- Appending to a vendor's audit chain no longer updates one row per vendor on every access.
--
-- Before: every append locked and updated the vendor's single audit_chain_heads row. While anything holds back
-- the xmin horizon — a reader's hot_standby_feedback does, for the seconds between its reports, on Aurora as on
-- the local replica — none of that row's old versions can be pruned, so each append walked every version
-- written since (at 300 appends/s the cost of an append doubled within 10 s, and the one-row table grew to 260
-- pages).
--
-- Now: appenders of one vendor queue on a transaction-scoped advisory lock instead of a row lock; the previous
-- row is the chain's last (the primary key read backwards), and the head (which lets the verifier notice a
-- removed tail) is kept in 64 rows per vendor, row seq % 64 holding the newest row of its slot. Each head row
-- is updated by one append in 64, so none gathers a long chain of versions; the head is the slot row with the
-- highest seq. Should two transactions ever compute the same seq (an isolation level that hides the previous
-- commit), the primary key refuses the second: the chain cannot fork.
ALTER TABLE audit_chain_heads ADD COLUMN slot smallint;
UPDATE audit_chain_heads SET slot = seq % 64;
ALTER TABLE audit_chain_heads ALTER COLUMN slot SET NOT NULL,
    ADD CONSTRAINT audit_chain_heads_slot_check CHECK (slot >= 0 AND slot < 64),
    DROP CONSTRAINT audit_chain_heads_pkey,
    ADD PRIMARY KEY (vendor_id, slot);

CREATE OR REPLACE FUNCTION audit_append(p_vendor uuid, p_actor_user_id text, p_actor_role text, p_action text,
                                        p_entity text, p_entity_id text, p_request_id text, p_ip text, p_ua text,
                                        p_justification text, p_before bytea, p_after bytea,
                                        p_data_key_version integer)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    last audit_log;
    entry audit_log;
BEGIN
    IF p_vendor IS NULL OR p_vendor IS DISTINCT FROM app_vendor_id() THEN
        RAISE EXCEPTION 'audit rows may only be appended for the transaction''s vendor'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_log:' || p_vendor::text, 0));
    -- A statement after the lock: its snapshot includes the commit of the previous holder.
    SELECT * INTO last FROM audit_log WHERE vendor_id = p_vendor ORDER BY seq DESC LIMIT 1;
    entry := ROW(p_vendor, coalesce(last.seq, 0) + 1, clock_timestamp(), p_actor_user_id, p_actor_role, p_action,
                 p_entity, p_entity_id, p_request_id, p_ip, p_ua, p_justification, p_before, p_after,
                 p_data_key_version, coalesce(last.row_hash, decode(repeat('00', 32), 'hex')), NULL);
    entry.row_hash := sha256(entry.prev_hash || audit_canonical(entry));
    INSERT INTO audit_log SELECT entry.*;
    INSERT INTO audit_chain_heads (vendor_id, slot, seq, row_hash)
    VALUES (p_vendor, entry.seq % 64, entry.seq, entry.row_hash)
    ON CONFLICT (vendor_id, slot) DO UPDATE SET seq = EXCLUDED.seq, row_hash = EXCLUDED.row_hash;
    RETURN entry.seq;
END
$$;

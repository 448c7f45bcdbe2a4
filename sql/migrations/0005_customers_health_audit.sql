-- Customers' health profiles (PHI, encrypted), the vendors' data keys, and the HIPAA audit trail.

-- Envelope encryption: each vendor's AES-256 data key, wrapped by the KMS key with the encryption context
-- {"vendor_id": ...}. Only the wrapped form is stored; the plaintext exists only in process memory. Rows are
-- never updated or deleted by the application (losing a wrapped key loses the data sealed under it); a new
-- key version is a new row. Purging the vendor removes them (crypto-shredding whatever refers to them).
CREATE TABLE vendor_data_keys (
    vendor_id    uuid NOT NULL REFERENCES vendors (id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version > 0),
    wrapped_key  bytea NOT NULL,
    kms_key_id   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor_id, version)
);

-- One row per customer that ever had a profile. `sealed_profile` is AES-256-GCM over the JSON of the
-- profile and the limits derived from it, with associated data (table, vendor_id, customer_id, version), so
-- a ciphertext cannot be moved to another row, customer, vendor or version. Erasing a profile (the customer
-- was deleted) clears the ciphertext but keeps the row, so versions never repeat: matching caches are keyed
-- by version and must never meet an old one again.
CREATE TABLE customer_health_profiles (
    vendor_id         uuid NOT NULL REFERENCES vendors (id) ON DELETE CASCADE,
    customer_id       uuid NOT NULL,
    version           bigint NOT NULL CHECK (version > 0),
    data_key_version  integer,
    nonce             bytea CHECK (octet_length(nonce) = 12),
    sealed_profile    bytea,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        text NOT NULL,
    PRIMARY KEY (vendor_id, customer_id),
    FOREIGN KEY (vendor_id, data_key_version) REFERENCES vendor_data_keys (vendor_id, version),
    CHECK ((sealed_profile IS NULL) = (nonce IS NULL) AND (sealed_profile IS NULL) = (data_key_version IS NULL))
);

-- HIPAA audit trail -------------------------------------------------------------------------------------------
-- Retention: HIPAA §164.316(b)(2)(i) asks for documentation to be kept 6 years from creation; audit rows are
-- kept at least that long. Nothing in the application deletes them (the table refuses it); removing rows past
-- retention is an owner-only maintenance step that must also re-anchor the vendor's chain.
--
-- Tamper evidence: rows form one hash chain per vendor. row_hash = sha256(prev_hash || audit_canonical(row));
-- the first row's prev_hash is 32 zero bytes; seq counts 1, 2, 3 … without gaps; audit_chain_heads keeps the
-- last seq and hash so a removed tail is noticed too. Appends are serialized per vendor by locking the head
-- row, so concurrent writers cannot fork the chain. nutrimatch.audit.verify recomputes the chain in Python.
-- before/after hold sealed JSON (12-byte nonce || AES-GCM ciphertext under the vendor's data key version
-- data_key_version), never plaintext: they may carry PHI.
CREATE TABLE audit_log (
    vendor_id         uuid NOT NULL,
    seq               bigint NOT NULL CHECK (seq > 0),
    "timestamp"       timestamptz NOT NULL,
    actor_user_id     text NOT NULL,
    actor_role        text NOT NULL,
    action            text NOT NULL,
    entity            text NOT NULL,
    entity_id         text NOT NULL,
    request_id        text,
    ip                text,
    ua                text,
    justification     text,
    before            bytea,
    after             bytea,
    data_key_version  integer,
    prev_hash         bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    row_hash          bytea NOT NULL CHECK (octet_length(row_hash) = 32),
    PRIMARY KEY (vendor_id, seq)
);
CREATE INDEX audit_log_entity_idx ON audit_log (vendor_id, entity_id, seq);
CREATE INDEX audit_log_action_idx ON audit_log (vendor_id, action, seq);
CREATE INDEX audit_log_actor_idx ON audit_log (vendor_id, actor_user_id, seq);
CREATE INDEX audit_log_time_idx ON audit_log (vendor_id, "timestamp");

CREATE TABLE audit_chain_heads (
    vendor_id  uuid PRIMARY KEY,
    seq        bigint NOT NULL DEFAULT 0,
    row_hash   bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'
);

-- One field of the canonical form: 4-byte big-endian length then the bytes; NULL is length -1 and no bytes.
CREATE FUNCTION audit_field(value bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN value IS NULL THEN '\xffffffff'::bytea ELSE int4send(octet_length(value)) || value END $$;

-- The canonical serialization a row's hash covers (mirrored by nutrimatch.audit.chain.canonical_bytes).
CREATE FUNCTION audit_canonical(r audit_log) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT uuid_send(r.vendor_id) || int8send(r.seq)
        || int8send((extract(epoch FROM r."timestamp") * 1000000)::bigint)
        || audit_field(convert_to(r.actor_user_id, 'UTF8')) || audit_field(convert_to(r.actor_role, 'UTF8'))
        || audit_field(convert_to(r.action, 'UTF8')) || audit_field(convert_to(r.entity, 'UTF8'))
        || audit_field(convert_to(r.entity_id, 'UTF8')) || audit_field(convert_to(r.request_id, 'UTF8'))
        || audit_field(convert_to(r.ip, 'UTF8')) || audit_field(convert_to(r.ua, 'UTF8'))
        || audit_field(convert_to(r.justification, 'UTF8'))
        || audit_field(r.before) || audit_field(r.after) || audit_field(int4send(r.data_key_version))
$$;

-- The only way rows enter the trail: chained under the vendor's head lock, in the caller's transaction (so an
-- access and its audit row commit or roll back together). SECURITY DEFINER because the application role may
-- not write the table directly, and so may not forge a link; it may only append for its own tenant.
CREATE FUNCTION audit_append(p_vendor uuid, p_actor_user_id text, p_actor_role text, p_action text,
                             p_entity text, p_entity_id text, p_request_id text, p_ip text, p_ua text,
                             p_justification text, p_before bytea, p_after bytea, p_data_key_version integer)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    head audit_chain_heads;
    entry audit_log;
BEGIN
    IF p_vendor IS NULL OR p_vendor IS DISTINCT FROM app_vendor_id() THEN
        RAISE EXCEPTION 'audit rows may only be appended for the transaction''s vendor'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO audit_chain_heads (vendor_id) VALUES (p_vendor) ON CONFLICT (vendor_id) DO NOTHING;
    SELECT * INTO head FROM audit_chain_heads WHERE vendor_id = p_vendor FOR UPDATE;
    entry := ROW(p_vendor, head.seq + 1, clock_timestamp(), p_actor_user_id, p_actor_role, p_action, p_entity,
                 p_entity_id, p_request_id, p_ip, p_ua, p_justification, p_before, p_after, p_data_key_version,
                 head.row_hash, NULL);
    entry.row_hash := sha256(head.row_hash || audit_canonical(entry));
    INSERT INTO audit_log SELECT entry.*;
    UPDATE audit_chain_heads SET seq = entry.seq, row_hash = entry.row_hash WHERE vendor_id = p_vendor;
    RETURN entry.seq;
END
$$;

-- Append-only, for everyone: the owner too must disable these triggers (or run as a replication-role
-- session) to change history, and the verifier then finds the change.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Privileges: the application reads the trail of its tenant and appends only through audit_append.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log, audit_chain_heads FROM nutrimatch_app;
REVOKE UPDATE, DELETE, TRUNCATE ON vendor_data_keys FROM nutrimatch_app;
REVOKE DELETE, TRUNCATE ON customer_health_profiles FROM nutrimatch_app;
REVOKE ALL ON FUNCTION audit_append(uuid, text, text, text, text, text, text, text, text, text, bytea, bytea,
                                    integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append(uuid, text, text, text, text, text, text, text, text, text, bytea, bytea,
                                       integer) TO nutrimatch_app;

-- Row-level security -----------------------------------------------------------------------------------------
ALTER TABLE vendor_data_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vendor_data_keys
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

ALTER TABLE customer_health_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customer_health_profiles
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

ALTER TABLE audit_chain_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_chain_heads
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

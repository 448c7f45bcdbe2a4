-- Hot-path functions rewritten as single expressions, so the planner inlines them into set-based statements
-- instead of calling them (with a subquery each) once per row: ingestion computes an id for every row.

CREATE OR REPLACE FUNCTION entity_uuid(vendor uuid, external_id text) RETURNS uuid
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT encode(
        set_byte(
            set_byte(substring(sha256(uuid_send(vendor) || convert_to(external_id, 'UTF8')) FROM 1 FOR 16),
                     6, (get_byte(sha256(uuid_send(vendor) || convert_to(external_id, 'UTF8')), 6) & 15) | 128),
            8, (get_byte(sha256(uuid_send(vendor) || convert_to(external_id, 'UTF8')), 8) & 63) | 128),
        'hex')::uuid
$$;

-- Superseded by the inline parsing the validation SQL generates (nutrimatch.ingest.validate).
DROP FUNCTION ingest_parse_numeric(text, boolean);

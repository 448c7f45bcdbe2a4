-- Tenancy: vendors, their partitioned catalogs and customers, API keys, and row-level security.

-- Deterministic ids: a row's id is derived from (vendor, external id), so (vendor_id, id) is both the primary
-- key and the upsert key of the hash-partitioned tables (a UNIQUE (vendor_id, external_id) cannot exist
-- there). UUIDv8 (RFC 9562) over SHA-256; nutrimatch.tenancy.ids computes the same value in Python.
CREATE FUNCTION entity_uuid(vendor uuid, external_id text) RETURNS uuid
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT encode(
        set_byte(set_byte(digest, 6, (get_byte(digest, 6) & 15) | 128), 8, (get_byte(digest, 8) & 63) | 128),
        'hex')::uuid
    FROM (SELECT substring(sha256(uuid_send(vendor) || convert_to(external_id, 'UTF8')) FROM 1 FOR 16) AS digest) d
$$;

CREATE TABLE vendors (
    id                      uuid PRIMARY KEY,
    slug                    text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status                  text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    plan                    text NOT NULL DEFAULT 'starter' CHECK (plan IN ('starter', 'growth', 'enterprise')),
    rate_limit_per_second   integer NOT NULL CHECK (rate_limit_per_second > 0),
    rate_limit_burst        integer NOT NULL CHECK (rate_limit_burst > 0),
    catalog_version         bigint NOT NULL DEFAULT 0,
    allow_unknown_allergens boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);

CREATE TABLE products (
    id               uuid NOT NULL,
    vendor_id        uuid NOT NULL,
    external_id      text NOT NULL,
    name             text NOT NULL,
    brand            text,
    description      text,
    category         text,
    price            numeric(12, 2) CHECK (price >= 0),
    currency         char(3) NOT NULL DEFAULT 'USD',
    nutrient_basis   text NOT NULL DEFAULT 'per_serving' CHECK (nutrient_basis IN ('per_serving', 'per_100g')),
    serving_size_g   numeric(8, 2) CHECK (serving_size_g > 0),
    calories         numeric(8, 2) CHECK (calories >= 0),
    protein_g        numeric(8, 2) CHECK (protein_g >= 0),
    carbs_g          numeric(8, 2) CHECK (carbs_g >= 0),
    fat_g            numeric(8, 2) CHECK (fat_g >= 0),
    saturated_fat_g  numeric(8, 2) CHECK (saturated_fat_g >= 0),
    fiber_g          numeric(8, 2) CHECK (fiber_g >= 0),
    sugar_g          numeric(8, 2) CHECK (sugar_g >= 0),
    added_sugar_g    numeric(8, 2) CHECK (added_sugar_g >= 0),
    sodium_mg        numeric(10, 2) CHECK (sodium_mg >= 0),
    potassium_mg     numeric(10, 2) CHECK (potassium_mg >= 0),
    ingredients      text,
    -- NULL: the vendor did not say (unknown allergen information), distinct from '{}' (declared free of all).
    allergens        text[],
    dietary_tags     text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired', 'draft')),
    search_tsv       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(name, '')), 'A')
        || setweight(to_tsvector('english', coalesce(brand, '')), 'B')
        || setweight(to_tsvector('english', coalesce(category, '') || ' ' || coalesce(description, '')), 'C')
        || setweight(to_tsvector('english', coalesce(ingredients, '')), 'D')
    ) STORED,
    row_hash         bytea,
    catalog_version  bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor_id, id)
) PARTITION BY LIST (vendor_id);

CREATE INDEX products_search_idx ON products USING gin (search_tsv);

CREATE TABLE customers (
    id           uuid NOT NULL,
    vendor_id    uuid NOT NULL,
    external_id  text NOT NULL,
    name         text,
    email        text,
    locale       text NOT NULL DEFAULT 'en-US',
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'deleted')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor_id, id)
) PARTITION BY LIST (vendor_id);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    vendor_id     uuid NOT NULL REFERENCES vendors (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    role          text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_vendor_idx ON api_keys (vendor_id, created_at);

-- Partitions ------------------------------------------------------------------------------------------------

CREATE FUNCTION vendor_partition_name(base text, vendor uuid) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT base || '_v_' || replace(vendor::text, '-', '') $$;

-- Creates the vendor's LIST partition of products (16 HASH leaves) and of customers (32 HASH leaves).
-- Idempotent: what exists is left alone. SECURITY DEFINER because the application role may not run DDL.
CREATE FUNCTION create_vendor_partitions(vendor uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    spec record;
    parent text;
    leaf text;
    i integer;
BEGIN
    FOR spec IN SELECT * FROM (VALUES ('products', 16), ('customers', 32)) AS s(base, modulus) LOOP
        parent := vendor_partition_name(spec.base, vendor);
        IF to_regclass(parent) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%L) PARTITION BY HASH (id)',
                           parent, spec.base, vendor);
            -- Partitions are reached only through the parent, where RLS applies.
            EXECUTE format('REVOKE ALL ON %I FROM nutrimatch_app', parent);
        END IF;
        FOR i IN 0 .. spec.modulus - 1 LOOP
            leaf := parent || '_p' || lpad(i::text, 2, '0');
            IF to_regclass(leaf) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                               leaf, parent, spec.modulus, i);
                EXECUTE format('REVOKE ALL ON %I FROM nutrimatch_app', leaf);
            END IF;
        END LOOP;
    END LOOP;
END
$$;

CREATE FUNCTION drop_vendor_partitions(vendor uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    base text;
BEGIN
    FOREACH base IN ARRAY ARRAY['products', 'customers'] LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', vendor_partition_name(base, vendor));
    END LOOP;
END
$$;

-- Onboarding: the vendor and all its partitions, in the caller's transaction.
CREATE FUNCTION onboard_vendor(p_id uuid, p_slug text, p_name text, p_plan text,
                               p_rate integer, p_burst integer) RETURNS SETOF vendors
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
BEGIN
    PERFORM create_vendor_partitions(p_id);
    RETURN QUERY INSERT INTO vendors (id, slug, name, plan, rate_limit_per_second, rate_limit_burst)
        VALUES (p_id, p_slug, p_name, p_plan, p_rate, p_burst) RETURNING *;
END
$$;

-- Purge of an offboarded (soft-deleted) vendor: its partitions, keys and row.
CREATE FUNCTION purge_vendor(p_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM vendors WHERE id = p_id AND status = 'deleted') THEN
        RETURN false;
    END IF;
    PERFORM drop_vendor_partitions(p_id);
    DELETE FROM api_keys WHERE vendor_id = p_id;
    DELETE FROM vendors WHERE id = p_id;
    RETURN true;
END
$$;

-- API keys are looked up before the tenant is known, so the lookup runs as the owner and returns only the
-- key's own facts (and records its use).
CREATE FUNCTION authenticate_api_key(p_hash bytea)
    RETURNS TABLE (key_id uuid, vendor_id uuid, role text, vendor_status text,
                   rate_limit_per_second integer, rate_limit_burst integer)
    LANGUAGE sql SECURITY DEFINER SET search_path = public
AS $$
    UPDATE api_keys k SET last_used_at = now()
      FROM vendors v
     WHERE k.key_hash = p_hash AND k.revoked_at IS NULL AND v.id = k.vendor_id
    RETURNING k.id, k.vendor_id, k.role, v.status, v.rate_limit_per_second, v.rate_limit_burst
$$;

CREATE FUNCTION vendor_access(p_id uuid)
    RETURNS TABLE (status text, rate_limit_per_second integer, rate_limit_burst integer)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$ SELECT status, rate_limit_per_second, rate_limit_burst FROM vendors WHERE id = p_id $$;

REVOKE ALL ON FUNCTION create_vendor_partitions(uuid), drop_vendor_partitions(uuid) FROM PUBLIC, nutrimatch_app;

-- Row-level security ----------------------------------------------------------------------------------------
-- `app.platform_admin` is set (per transaction) only for callers the authorizer verified as platform admins.
CREATE FUNCTION app_is_platform_admin() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(current_setting('app.platform_admin', true), '') = 'on' $$;

ALTER TABLE vendors ENABLE ROW LEVEL SECURITY;
CREATE POLICY vendor_self ON vendors
    USING (id = app_vendor_id() OR app_is_platform_admin())
    WITH CHECK (id = app_vendor_id() OR app_is_platform_admin());

ALTER TABLE products ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON products
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customers
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (vendor_id = app_vendor_id()) WITH CHECK (vendor_id = app_vendor_id());

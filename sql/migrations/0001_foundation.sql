-- Foundation: the application role's privileges and the tenant-scope helper every RLS policy uses.

-- The role logs in with credentials the platform gives it (local stack: trust; AWS: RDS Proxy secret).
-- Created here without LOGIN if missing so that migrations also run against a bare server.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nutrimatch_app') THEN
        CREATE ROLE nutrimatch_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO nutrimatch_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nutrimatch_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO nutrimatch_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO nutrimatch_app;

-- The vendor of the current transaction, set by the application with set_config('app.vendor_id', ..., true).
-- Unset or empty means no tenant: every tenant policy then matches nothing.
CREATE FUNCTION app_vendor_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.vendor_id', true), '')::uuid $$;

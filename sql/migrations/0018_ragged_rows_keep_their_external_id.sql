-- A row rejected while loading (a ragged row: too many or too few cells) never reaches staging, so a `replace`
-- file that lists a product only on such a row retired it, while a row rejected by validation keeps its product.
-- The loader keeps the external id of such a row where its cell can be read, and Finalize counts it as listed.
ALTER TABLE ingestion_errors ADD COLUMN external_id text;

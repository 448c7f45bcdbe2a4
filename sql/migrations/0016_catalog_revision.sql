-- A count of the committed changes to a vendor's live product rows.
--
-- catalog_version names a whole catalog: a job bumps it once, when it is finalized, and matching builds its
-- feature snapshot per version. An upsert changes live rows before that, chunk by chunk (one transaction each),
-- and a job may stop between chunks (cancelled, failed) without ever bumping the version. Matching checks the
-- rows it ranks against their live state, but a cached answer is not ranked again: keyed by the version alone,
-- an answer cached before a chunk made a product unsafe (an allergen added) was served after it. Every
-- transaction that changes live product rows bumps catalog_revision, and cached answers are keyed by both.
ALTER TABLE vendors ADD COLUMN catalog_revision bigint NOT NULL DEFAULT 0;

-- The audit trail outlives a purged vendor (HIPAA retention: audit_log has no tie to vendors and refuses
-- deletes), so the vendor's wrapped data keys must outlive it too, or the retained rows' sealed before/after
-- could no longer be opened in an investigation. A wrapped key holds no PHI and opens nothing without the KMS
-- key (and its vendor_id encryption context). Purging still drops the vendor's partitions, and with them every
-- profile sealed under these keys.
ALTER TABLE vendor_data_keys DROP CONSTRAINT vendor_data_keys_vendor_id_fkey;

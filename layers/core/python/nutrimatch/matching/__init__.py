"""Health-aware matching: exact top-k of a vendor's catalog for one person's profile, fast and explained.

scoring (the health score and its reasons) → features (levels of amounts per serving) → snapshot (the catalog
as compact columns in leaves) → engine (filters and branch-and-bound top-k) → service (audit, cache, the
live-row check). snapshot_store keeps snapshots per process and publishes them at ingest finalize.
"""

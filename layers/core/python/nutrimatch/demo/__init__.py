"""Deterministic synthetic demo data: product catalogs, customers and health profiles."""

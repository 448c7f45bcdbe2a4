"""Envelope encryption of PHI: AES-256-GCM under per-vendor data keys that KMS wraps."""

from nutrimatch.crypto.envelope import (
    NONCE_BYTES,
    DataKey,
    Sealed,
    associated_data,
    current_data_key,
    data_key,
    open_sealed,
    seal,
    unwrap,
)

__all__ = [
    "NONCE_BYTES",
    "DataKey",
    "Sealed",
    "associated_data",
    "current_data_key",
    "data_key",
    "open_sealed",
    "seal",
    "unwrap",
]

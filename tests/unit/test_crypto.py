"""Envelope sealing: AES-256-GCM bound to its associated data; the unwrapped-key cache expires."""

import os
from uuid import uuid4

import pytest
from cryptography.exceptions import InvalidTag

from nutrimatch.crypto import NONCE_BYTES, DataKey, Sealed, associated_data, open_sealed, seal
from nutrimatch.crypto.envelope import _KeyCache


def _key() -> DataKey:
    return DataKey(uuid4(), 1, os.urandom(32))


def test_a_sealed_value_opens_only_with_its_key_and_associated_data():
    key, other = _key(), _key()
    context = associated_data("table", key.vendor_id, 7)
    sealed = seal(key, b"celiac disease", context)
    assert b"celiac" not in sealed.ciphertext and len(sealed.nonce) == NONCE_BYTES
    assert open_sealed(key, sealed, context) == b"celiac disease"
    with pytest.raises(InvalidTag):
        open_sealed(other, sealed, context)
    with pytest.raises(InvalidTag):
        open_sealed(key, sealed, associated_data("table", key.vendor_id, 8))
    with pytest.raises(InvalidTag):
        open_sealed(key, Sealed(sealed.nonce, sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])), context)


def test_every_seal_uses_a_fresh_nonce_and_round_trips_as_bytes():
    key = _key()
    first, second = seal(key, b"same", b"ad"), seal(key, b"same", b"ad")
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext
    assert Sealed.from_bytes(first.to_bytes()) == first


def test_associated_data_is_unambiguous():
    vendor = uuid4()
    assert associated_data("t", "ab", "c") != associated_data("t", "a", "bc")
    assert associated_data("t", vendor, 1) != associated_data("t", vendor, 2)
    assert associated_data("t", vendor) != associated_data("u", vendor)
    assert associated_data("t", vendor, 1) == associated_data("t", vendor, 1)


def test_the_key_cache_forgets_expired_keys(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("nutrimatch.crypto.envelope.time.monotonic", lambda: clock[0])
    cache = _KeyCache()
    vendor = uuid4()
    cache.put(vendor, b"wrapped-a", b"material-a", ttl_seconds=300)
    assert cache.get(vendor, b"wrapped-a") == b"material-a" and cache.get(vendor, b"wrapped-b") is None
    clock[0] += 299
    assert cache.get(vendor, b"wrapped-a") == b"material-a"
    clock[0] += 1
    assert cache.get(vendor, b"wrapped-a") is None


def test_the_key_cache_answers_a_wrapped_key_only_for_its_vendor():
    cache = _KeyCache()
    vendor, other = uuid4(), uuid4()
    cache.put(vendor, b"wrapped-a", b"material-a", ttl_seconds=300)
    assert cache.get(other, b"wrapped-a") is None  # KMS must check the other vendor's context itself

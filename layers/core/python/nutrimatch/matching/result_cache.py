"""Match results in Redis, under keys made of ids and versions only (no PHI).

A key names the vendor, the customer, the profile version, the catalog version and revision, the vendor's
unknown-allergen setting, k and a digest of the filters: a profile write, a new catalog or any change to the
catalog's live rows changes the key, so a stale result is never read (it expires with its TTL). Redis being
down only costs the cache: matching goes on without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from uuid import UUID

import redis
from pydantic import BaseModel, ValidationError

from nutrimatch.cache import redis_client
from nutrimatch.matching.models import Match, MatchQuery
from nutrimatch.matching.scoring import SCORING_VERSION
from nutrimatch.settings import Settings

logger = logging.getLogger("nutrimatch.matching")


class CachedMatches(BaseModel):
    """What a key holds: the ranked products of one request (the profile's own facts are not kept)."""

    matches: list[Match]
    eligible_count: int
    generated_at: datetime
    max_health_score: int


def cache_key(*, vendor_id: UUID, customer_id: UUID, profile_version: int, catalog_version: int,
              catalog_revision: int, allow_unknown_allergens: bool, query: MatchQuery) -> str:
    filters = json.dumps([query.category, None if query.max_price is None else str(query.max_price)])
    digest = hashlib.sha256(filters.encode()).hexdigest()[:16]
    return (f"nm:match:s{SCORING_VERSION}:{vendor_id}:{customer_id}:p{profile_version}:c{catalog_version}"
            f".{catalog_revision}:u{int(allow_unknown_allergens)}:k{query.k}:f{digest}")


class ResultCache:
    def __init__(self, settings: Settings) -> None:
        self.client = redis_client(settings.redis_url)
        self.ttl = settings.matching_cache_ttl_seconds

    def get(self, key: str) -> CachedMatches | None:
        try:
            raw = self.client.get(key)
        except redis.RedisError:
            logger.warning("match cache unavailable; computing")
            return None
        if raw is None:
            return None
        try:
            return CachedMatches.model_validate_json(raw)
        except ValidationError:
            return None  # written by another version of this model: recompute and overwrite

    def put(self, key: str, value: CachedMatches) -> None:
        try:
            self.client.set(key, value.model_dump_json(), ex=self.ttl)
        except redis.RedisError:
            logger.warning("match cache unavailable; result not cached")

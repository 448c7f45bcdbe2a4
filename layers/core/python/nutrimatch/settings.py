"""One settings model for the whole product, parsed once from the environment.

Every external part (PostgreSQL writer and reader, Redis, the AWS endpoint) can be pointed elsewhere by an
environment variable; when nothing is set, the embedded local stack's defaults apply.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[4]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    # --- databases: the owner connection runs migrations; the app role is what handlers use -----------------
    database_url: str = Field(
        default="postgresql://nutrimatch_app:nutrimatch_app@127.0.0.1:54320/nutrimatch",
        description="Writer endpoint, connecting as the application role (no BYPASSRLS).",
    )
    database_replica_url: str | None = Field(
        default="postgresql://nutrimatch_app:nutrimatch_app@127.0.0.1:54321/nutrimatch",
        description="Reader endpoint; unset to send every read to the writer.",
    )
    # In AWS the functions get the RDS Proxy endpoints and a Secrets Manager secret instead of URLs.
    database_host: str | None = None
    database_reader_host: str | None = None
    database_secret_arn: str | None = None
    database_name: str = "nutrimatch"
    database_admin_url: str = Field(
        default="postgresql://postgres@127.0.0.1:54320/nutrimatch",
        description="Owner connection for migrations and partition management.",
    )
    db_pool_min: int = 1
    db_pool_max: int = 8
    db_check_idle_seconds: float = Field(
        default=10.0, description="A pooled connection unused this long is checked with a round trip before use.")
    replica_max_lag_seconds: float = 5.0
    replica_lag_cache_seconds: float = 1.0

    # --- redis ----------------------------------------------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:63790/0"

    # --- AWS (moto locally) -----------------------------------------------------------------------------------
    aws_endpoint_url: str | None = "http://127.0.0.1:45660"
    aws_region: str = Field(default="us-east-1", alias="AWS_DEFAULT_REGION")
    upload_bucket: str = "nutrimatch-uploads"
    ingest_queue: str = "nutrimatch-ingest-events"
    webhook_queue: str = "nutrimatch-webhooks"
    kms_key_alias: str = "alias/nutrimatch-phi"
    jwt_secret_name: str = "nutrimatch/jwt"
    state_machine_arn: str | None = None

    # --- PHI encryption (issue 6) ---------------------------------------------------------------------------
    data_key_cache_seconds: float = Field(
        default=300, gt=0, description="How long an unwrapped per-vendor data key stays in process memory.")

    # --- authentication -----------------------------------------------------------------------------------
    jwt_issuer: str = "https://auth.nutrimatch.local/"
    jwt_audience: str = "nutrimatch-api"
    jwt_jwks_url: str | None = None
    jwt_hs256_secret: SecretStr | None = SecretStr("local-development-secret-change-me-0123456789")
    jwks_cache_seconds: int = 600

    # --- uploads / ingestion ------------------------------------------------------------------------------
    max_upload_bytes: int = 10 * 1024**3
    presign_expiry_seconds: int = 3600
    tus_expiry_hours: int = 24
    ingest_chunk_bytes: int = 64 * 1024**2
    ingest_max_concurrency: int = 2
    ingest_stalled_after_seconds: int = Field(
        default=7 * 3600, gt=0,
        description="A queued or running job no step has touched for this long is failed by the sweeper: longer "
                    "than an execution may run (the state machine's TimeoutSeconds), so its pipeline is gone.")

    # --- ingestion: bulk loads (issue 5, performance) -------------------------------------------------------
    ingest_bulk_load_min_rows: int = Field(
        default=10_000, ge=0,
        description="A vendor's first file of at least this many rows is bulk-loaded (indexes built after the "
                    "load, then swapped in); smaller ones are upserted, cheaper than the bulk load's DDL.")

    # --- local stack --------------------------------------------------------------------------------------
    local_state_dir: Path = REPO_ROOT / ".nutrimatch"
    local_host: str = "127.0.0.1"
    local_gateway_port: int = 8080
    local_pg_port: int = 54320
    local_replica_port: int = 54321
    local_redis_port: int = 63790
    local_moto_port: int = 45660

    # --- read replica routing and search (issue 7) ----------------------------------------------------------
    replica_stale_lag_seconds: float = Field(
        default=1.0, description="Replica answers within this lag are 'fresh', beyond it 'stale'.")
    replica_connect_timeout_seconds: float = Field(
        default=0.5, description="How long a read waits for a reader connection before using the writer.")
    replica_down_retry_seconds: float = Field(
        default=5.0, description="After the reader failed, how long reads go straight to the writer.")
    search_rank_candidates: int = Field(
        default=1000, description="Relevance ranks at most this many matches (the first the index yields).")
    search_rank_examined: int = Field(
        default=10000, description="Relevance reads at most this many matches to find those that pass the filters.")
    search_prefix_lookup_ratio: float = Field(
        default=20, description="A word being typed this much more common than the other words is checked on "
                                "their matches instead of being looked up in the full-text index.")
    search_sort_candidates: int = Field(
        default=5000, description="Matches of a search collected and sorted in memory for an exact order.")
    search_walk_budget: int = Field(
        default=10000, description="Products an exact order may read along its index to fill a page.")
    search_band_sample: int = Field(
        default=500, description="Matches sampled to bound the bands of an exact order whose walk ran out.")
    search_facet_sample: int = Field(
        default=1000, description="Facet counts cover at most this many matching products.")
    search_statement_timeout_ms: int = 5000

    # --- matching (issue 6) ---------------------------------------------------------------------------------
    matching_snapshot_memory_mb: int = Field(
        default=1024, description="Feature snapshots a process keeps in memory (least recently used go first).")
    matching_snapshot_prefix: str = Field(
        default="matching/snapshots/", description="Where snapshots are published in the upload bucket.")
    matching_cache_ttl_seconds: int = Field(default=900, description="Lifetime of a cached match result.")

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _no_local_defaults_in_lambda(self) -> Settings:
        """In Lambda, nothing may fall back to the laptop defaults (moto's endpoint, the local HS256 secret)."""
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            if "aws_endpoint_url" not in self.model_fields_set:
                self.aws_endpoint_url = None
            if "jwt_hs256_secret" not in self.model_fields_set:
                self.jwt_hs256_secret = None
        return self


def _with_database_secret(settings: Settings) -> Settings:
    """Build the connection URLs from the proxy endpoints and the app role's secret (AWS)."""
    import json

    from nutrimatch import aws

    secret = json.loads(aws.client("secretsmanager", settings).get_secret_value(
        SecretId=settings.database_secret_arn)["SecretString"])
    credentials = f"{quote(secret['username'])}:{quote(secret['password'])}"
    port = secret.get("port", 5432)

    def url(host: str) -> str:
        return f"postgresql://{credentials}@{host}:{port}/{settings.database_name}?sslmode=require"

    reader = url(settings.database_reader_host) if settings.database_reader_host else None
    return settings.model_copy(update={"database_url": url(settings.database_host or secret["host"]),
                                       "database_replica_url": reader})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Parse the environment once; tests that need other values call `get_settings.cache_clear()`."""
    settings = Settings()
    if settings.database_secret_arn:
        settings = _with_database_secret(settings)
    return settings

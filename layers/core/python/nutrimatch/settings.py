"""One settings model for the whole product, parsed once from the environment.

Every external part (PostgreSQL writer and reader, Redis, the AWS endpoint) can be pointed elsewhere by an
environment variable; when nothing is set, the embedded local stack's defaults apply.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
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
    database_admin_url: str = Field(
        default="postgresql://postgres@127.0.0.1:54320/nutrimatch",
        description="Owner connection for migrations and partition management.",
    )
    db_pool_min: int = 1
    db_pool_max: int = 8
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

    # --- local stack --------------------------------------------------------------------------------------
    local_state_dir: Path = REPO_ROOT / ".nutrimatch"
    local_host: str = "127.0.0.1"
    local_gateway_port: int = 8080
    local_pg_port: int = 54320
    local_replica_port: int = 54321
    local_redis_port: int = 63790
    local_moto_port: int = 45660

    log_level: str = "INFO"

    @property
    def replica_enabled(self) -> bool:
        return bool(self.database_replica_url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Parse the environment once; tests that need other values call `get_settings.cache_clear()`."""
    return Settings()

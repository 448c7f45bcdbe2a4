"""The API's authorizer: credentials in, an IAM policy over the route table and the caller's context out.

The policy allows exactly the routes the caller's role may call (from nutrimatch.routes), so API Gateway
enforces the role matrix before any handler runs — and, because the policy covers every route, a cached
authorizer answer stays correct for the caller's next requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from nutrimatch.auth import api_keys
from nutrimatch.auth.tokens import verify_token
from nutrimatch.db import Database, scoped_transaction
from nutrimatch.errors import Unauthorized
from nutrimatch.routes import ROUTES, Role
from nutrimatch.settings import Settings


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    vendor_id: str | None
    auth_type: str
    api_key_id: str | None = None
    rate_limit_per_second: int | None = None
    rate_limit_burst: int | None = None

    def context(self) -> dict[str, str | int]:
        """Authorizer context values must be strings, numbers or booleans."""
        values: dict[str, str | int | None] = {
            "user_id": self.user_id, "role": self.role.value, "vendor_id": self.vendor_id or "",
            "auth_type": self.auth_type, "api_key_id": self.api_key_id or "",
            "rate_limit_per_second": self.rate_limit_per_second, "rate_limit_burst": self.rate_limit_burst,
        }
        return {k: v for k, v in values.items() if v is not None}


def _credentials(headers: dict[str, str]) -> tuple[str, str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("authorization", "").strip()
    scheme, _, credential = value.partition(" ")
    if scheme.lower() in ("bearer", "apikey") and credential.strip():
        return scheme.lower(), credential.strip()
    raise Unauthorized("send `Authorization: Bearer <jwt>` or `Authorization: ApiKey <key>`")


def _vendor_limits(database: Database, vendor_id: str) -> tuple[int, int]:
    with scoped_transaction(database.writer, None) as conn:
        row = conn.execute("SELECT * FROM vendor_access(%s)", (UUID(vendor_id),)).fetchone()
    if row is None or row["status"] != "active":
        raise Unauthorized("vendor is not active")
    return row["rate_limit_per_second"], row["rate_limit_burst"]


def authenticate(headers: dict[str, str], settings: Settings, database: Database) -> Principal:
    scheme, credential = _credentials(headers)
    if scheme == "apikey":
        if not api_keys.looks_like_api_key(credential):
            raise Unauthorized("malformed API key")
        with scoped_transaction(database.writer, None) as conn:
            row = conn.execute("SELECT * FROM authenticate_api_key(%s)",
                               (api_keys.hash_key(credential),)).fetchone()
        if row is None or row["vendor_status"] != "active":
            raise Unauthorized("unknown, revoked or inactive API key")
        return Principal(
            user_id=f"api-key:{row['key_id']}", role=Role(row["role"]), vendor_id=str(row["vendor_id"]),
            auth_type="api_key", api_key_id=str(row["key_id"]),
            rate_limit_per_second=row["rate_limit_per_second"], rate_limit_burst=row["rate_limit_burst"])
    identity = verify_token(credential, settings)
    rate = burst = None
    if identity.vendor_id:
        rate, burst = _vendor_limits(database, identity.vendor_id)
    return Principal(user_id=identity.user_id, role=identity.role, vendor_id=identity.vendor_id, auth_type="jwt",
                     rate_limit_per_second=rate, rate_limit_burst=burst)


def _route_arn(method_arn: str, method: str, path: str) -> str:
    # arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}
    api_and_stage = "/".join(method_arn.split("/")[:2])
    return f"{api_and_stage}/{method}{re.sub(r'{[^}]+}', '*', path)}"


def policy_for(principal: Principal, method_arn: str) -> dict[str, Any]:
    allowed = sorted({_route_arn(method_arn, r.method, r.path) for r in ROUTES
                      if not r.public and r.allows(principal.role)})
    statements: list[dict[str, Any]] = []
    if allowed:
        statements.append({"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": allowed})
    else:
        statements.append({"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [method_arn]})
    return {"principalId": principal.user_id,
            "policyDocument": {"Version": "2012-10-17", "Statement": statements},
            "context": principal.context()}

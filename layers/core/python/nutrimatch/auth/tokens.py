"""JWT verification and local token minting.

Two kinds of issuer: a real identity provider whose keys come from its JWKS (RS256/ES256 — Cognito, Auth0,
Appwrite), or a shared HS256 secret for local use. The verifying key is chosen by the token's algorithm, and
each algorithm family accepts only its own key source, so an HS256 token signed with an RSA public key
(algorithm confusion) or an unsigned `alg: none` token never verifies.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWKClient

from nutrimatch.errors import Unauthorized
from nutrimatch.routes import Role
from nutrimatch.settings import Settings

ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")
SHARED_SECRET_ALGORITHM = "HS256"
VENDOR_CLAIMS = ("vendor_id", "custom:vendor_id", "https://nutrimatch.io/vendor_id")
ROLE_CLAIMS = ("role", "custom:role", "https://nutrimatch.io/role")

_jwks_clients: dict[str, PyJWKClient] = {}


@dataclass(frozen=True)
class TokenIdentity:
    user_id: str
    role: Role
    vendor_id: str | None


def _jwks_client(settings: Settings) -> PyJWKClient:
    assert settings.jwt_jwks_url
    client = _jwks_clients.get(settings.jwt_jwks_url)
    if client is None:
        client = PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=settings.jwks_cache_seconds)
        _jwks_clients[settings.jwt_jwks_url] = client
    return client


def _first_claim(claims: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next((claims[name] for name in names if claims.get(name)), None)


def verify_token(token: str, settings: Settings) -> TokenIdentity:
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as error:
        raise Unauthorized("malformed token") from error
    if algorithm in ASYMMETRIC_ALGORITHMS and settings.jwt_jwks_url:
        try:
            key: Any = _jwks_client(settings).get_signing_key_from_jwt(token).key
        except jwt.PyJWTError as error:
            raise Unauthorized("token signed by an unknown key") from error
    elif algorithm == SHARED_SECRET_ALGORITHM and settings.jwt_hs256_secret is not None:
        key = settings.jwt_hs256_secret.get_secret_value()
    else:
        raise Unauthorized(f"token algorithm {algorithm!r} is not accepted")
    try:
        claims = jwt.decode(
            token, key, algorithms=[algorithm], audience=settings.jwt_audience, issuer=settings.jwt_issuer,
            options={"require": ["exp", "iss", "aud", "sub"]}, leeway=30,
        )
    except jwt.PyJWTError as error:
        raise Unauthorized(f"invalid token: {error}") from error
    try:
        role = Role(_first_claim(claims, ROLE_CLAIMS))
    except ValueError as error:
        raise Unauthorized("token carries no known role") from error
    vendor = _first_claim(claims, VENDOR_CLAIMS)
    if vendor is None and role is not Role.PLATFORM_ADMIN:
        raise Unauthorized("token carries no vendor")
    try:
        vendor_id = str(uuid.UUID(str(vendor))) if vendor else None
    except ValueError as error:
        raise Unauthorized("token vendor is not a UUID") from error
    return TokenIdentity(user_id=str(claims["sub"]), role=role, vendor_id=vendor_id)


def mint_local_token(settings: Settings, *, role: Role, vendor_id: str | None, user_id: str,
                     ttl_seconds: int = 3600) -> str:
    """An HS256 token for demos and tests, signed with the local shared secret."""
    if settings.jwt_hs256_secret is None:
        raise RuntimeError("no HS256 secret is configured (JWT_HS256_SECRET)")
    now = int(time.time())
    claims: dict[str, Any] = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": user_id,
                              "role": role.value, "iat": now, "nbf": now, "exp": now + ttl_seconds}
    if vendor_id:
        claims["vendor_id"] = vendor_id
    return jwt.encode(claims, settings.jwt_hs256_secret.get_secret_value(), algorithm=SHARED_SECRET_ALGORITHM)

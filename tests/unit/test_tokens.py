"""JWT verification: what must be refused is refused, whatever the key source."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from nutrimatch.auth.tokens import mint_local_token, verify_token
from nutrimatch.errors import Unauthorized
from nutrimatch.routes import Role
from nutrimatch.settings import Settings

VENDOR = "6f1c2b8e-9a1d-4c3e-8f00-1234567890ab"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _claims(**overrides):
    now = int(time.time())
    claims = {"iss": "https://issuer.example/", "aud": "nutrimatch-api", "sub": "user-1", "role": "clinician",
              "vendor_id": VENDOR, "iat": now, "nbf": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture(scope="module")
def jwks_url():
    keys = []
    for kid, key, alg in (("rsa-1", RSA_KEY, "RS256"), ("ec-1", EC_KEY, "ES256")):
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
    body = json.dumps({"keys": keys}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()


def _settings(jwks_url=None, secret="s" * 40):
    return Settings(jwt_issuer="https://issuer.example/", jwt_audience="nutrimatch-api", jwt_jwks_url=jwks_url,
                    jwt_hs256_secret=SecretStr(secret) if secret else None)


def _hs(claims, secret="s" * 40):
    return jwt.encode(claims, secret, algorithm="HS256")


def test_a_valid_hs256_token_gives_the_identity():
    identity = verify_token(_hs(_claims()), _settings())
    assert (identity.user_id, identity.role, identity.vendor_id) == ("user-1", Role.CLINICIAN, VENDOR)


def test_minted_local_tokens_verify():
    settings = _settings()
    token = mint_local_token(settings, role=Role.ANALYST, vendor_id=VENDOR, user_id="u")
    assert verify_token(token, settings).role is Role.ANALYST


@pytest.mark.parametrize(("name", "token"), [
    ("forged signature", _hs(_claims(), secret="x" * 40)),
    ("expired", _hs(_claims(exp=int(time.time()) - 3600))),
    ("not yet valid", _hs(_claims(nbf=int(time.time()) + 3600))),
    ("wrong audience", _hs(_claims(aud="someone-else"))),
    ("wrong issuer", _hs(_claims(iss="https://evil.example/"))),
    ("no expiry", _hs(_claims(exp=None))),
    ("unknown role", _hs(_claims(role="superuser"))),
    ("no vendor for a vendor role", _hs(_claims(vendor_id=None))),
    ("garbage", "not.a.token"),
])
def test_bad_tokens_are_refused(name, token):
    with pytest.raises(Unauthorized):
        verify_token(token, _settings())


def test_alg_none_is_refused():
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=")
    token = f"{header.decode()}.{payload.decode()}."
    with pytest.raises(Unauthorized, match="not accepted"):
        verify_token(token, _settings())


def test_rs256_and_es256_verify_against_the_jwks(jwks_url):
    settings = _settings(jwks_url)
    rs = jwt.encode(_claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(_claims(role="api_client"), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    assert verify_token(rs, settings).role is Role.CLINICIAN
    assert verify_token(es, settings).role is Role.API_CLIENT


def test_a_key_not_in_the_jwks_is_refused(jwks_url):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(), stranger, algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(Unauthorized):
        verify_token(token, _settings(jwks_url))


def test_hs256_signed_with_the_public_key_is_refused(jwks_url):
    """Algorithm confusion: the RSA public key (known to all) used as an HMAC secret."""
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = _hs_raw(_claims(), public_pem)
    with pytest.raises(Unauthorized):
        verify_token(forged, _settings(jwks_url))
    with pytest.raises(Unauthorized, match="not accepted"):
        verify_token(forged, _settings(jwks_url, secret=None))


def _hs_raw(claims, key: bytes) -> str:
    """HS256 by hand: PyJWT itself refuses to use a PEM key as an HMAC secret."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'}).encode())}." \
                    f"{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"

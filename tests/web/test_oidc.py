"""Single sign-on end to end: a small OpenID Connect provider written here (discovery, JWKS with
an RSA key from `cryptography`, /authorize, /token signing ID tokens by hand) and Causeline, each
on its own loopback HTTP server, with a real HTTP client following the real redirects."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select

from core.settings import Settings
from db.models import AuditEvent, Membership, User
from db.queries.auth import add_membership, create_project, create_user
from server.app import create_app
from tests.live import live_server

CLIENT_ID, CLIENT_SECRET = "causeline-test", "s3cret-of-the-client"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(key: rsa.RSAPrivateKey, kid: str) -> dict:
    numbers = key.public_key().public_numbers()
    as_bytes = lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")  # noqa: E731
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64url(as_bytes(numbers.n)),
            "e": b64url(as_bytes(numbers.e))}


def sign_rs256(key: rsa.RSAPrivateKey, kid: str, claims: dict) -> str:
    signing_input = (b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode()) + "."
                     + b64url(json.dumps(claims).encode()))
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(signature)


@dataclass
class Provider:
    """The test's identity provider; tests change `claims`, `state_override`, `signing_key`."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    claims: dict = field(default_factory=dict)  # merged over the ID token's claims
    state_override: str | None = None
    signing_key: rsa.RSAPrivateKey | None = None  # sign with another key than the published one
    kid: str = "k1"
    client_secret: str = CLIENT_SECRET  # what the provider expects from Causeline
    discovery_issuer: str | None = None  # what the discovery document claims to be (default: the truth)
    jwks_fetches: int = 0
    codes: dict = field(default_factory=dict)
    authorize_requests: list = field(default_factory=list)
    token_requests: list = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery(request: Request):
            issuer = str(request.base_url).rstrip("/")
            return {"issuer": self.discovery_issuer or issuer, "authorization_endpoint": f"{issuer}/authorize",
                    "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
                    "response_types_supported": ["code"], "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"]}

        @app.get("/jwks")
        def jwks():
            self.jwks_fetches += 1
            return {"keys": [jwk_of(self.key, self.kid)]}

        @app.get("/authorize")
        def authorize(request: Request):
            q = dict(request.query_params)
            self.authorize_requests.append(q)
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = q
            state = self.state_override if self.state_override is not None else q["state"]
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': state})}", 302)

        @app.post("/token")
        def token(request: Request, grant_type: str = Form(), code: str = Form(), redirect_uri: str = Form(),
                  code_verifier: str = Form("")):
            issuer = str(request.base_url).rstrip("/")
            self.token_requests.append({"code": code, "code_verifier": code_verifier,
                                        "authorization": request.headers.get("authorization")})
            basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{self.client_secret}".encode()).decode()
            if request.headers.get("authorization") != basic:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            asked = self.codes.pop(code, None)
            if grant_type != "authorization_code" or asked is None or asked["redirect_uri"] != redirect_uri:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            if b64url(hashlib.sha256(code_verifier.encode()).digest()) != asked.get("code_challenge"):
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
            now = int(time.time())
            claims = {"iss": issuer, "sub": "u-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                      "nonce": asked["nonce"], "email": "Grace@Example.com", "email_verified": True,
                      "groups": ["eng"], **self.claims}
            return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                    "id_token": sign_rs256(self.signing_key or self.key, self.kid, claims)}

        return app


@pytest.fixture
def world(database_url, engine, sessionmaker):
    """(provider, Causeline's URL, sessionmaker): acme is the SSO project; groups map to roles."""
    with sessionmaker.begin() as session:
        create_project(session, "acme")
    provider = Provider()
    with live_server(provider.app()) as idp_url:
        settings = Settings(database_url=database_url, demo="off", oidc_issuer=idp_url, oidc_client_id=CLIENT_ID,
                            oidc_client_secret=CLIENT_SECRET, oidc_role_claim="groups", oidc_project="acme",
                            oidc_role_map="admins=admin,eng=engineer,audit=auditor", oidc_name="TestIdP")
        app = create_app(settings, engine=engine, parts=("api", "web"))
        with live_server(app) as url:
            yield provider, url, sessionmaker


def sign_in(url: str, next_path: str = "/traces") -> httpx.Response:
    """A browser's sign-in: start, the provider, the callback, the page; every redirect followed."""
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        response = browser.get(f"{url}/auth/oidc/start", params={"next": next_path})
        response.extensions["cookies"] = dict(browser.cookies)
        return response


def member_role(sessionmaker, email: str) -> str | None:
    with sessionmaker() as session:
        return session.scalar(select(Membership.role).join(User, User.id == Membership.user_id)
                              .where(User.email == email))


def logins(sessionmaker) -> list[tuple]:
    with sessionmaker() as session:
        return [(e.actor, e.outcome, e.target, e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.chain == 0, AuditEvent.action == "login").order_by(AuditEvent.seq))]


def test_login_page_offers_the_provider(world):
    _, url, _ = world
    page = httpx.get(f"{url}/login", params={"next": "/audit"})
    assert page.status_code == 200
    assert "Sign in with TestIdP" in page.text and "/auth/oidc/start?next=/audit" in page.text


def test_first_sign_in_creates_the_user_with_the_mapped_role(world):
    provider, url, sessionmaker = world
    response = sign_in(url, "/traces")
    assert response.status_code == 200, response.text
    assert urlsplit(str(response.url)).path == "/traces"
    assert [urlsplit(str(r.url)).path for r in response.history] == ["/auth/oidc/start", "/authorize",
                                                                     "/auth/oidc/callback"]
    assert "causeline_session" in response.extensions["cookies"]
    assert "causeline_oidc" not in response.extensions["cookies"]  # one answer per sign-in
    asked = provider.authorize_requests[0]
    assert asked["code_challenge_method"] == "S256" and asked["nonce"] and asked["state"]
    assert "openid" in asked["scope"].split() and asked["redirect_uri"] == f"{url}/auth/oidc/callback"
    assert member_role(sessionmaker, "grace@example.com") == "engineer"
    assert logins(sessionmaker)[-1][:2] == ("user:grace@example.com", "ok")
    assert logins(sessionmaker)[-1][3]["method"] == "oidc"
    with sessionmaker() as session:
        added = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.add")).one()
        assert (added.actor, added.target, added.details["role"]) == ("oidc", "grace@example.com", "engineer")


def test_role_follows_the_claim_on_each_sign_in(world):
    provider, url, sessionmaker = world
    assert sign_in(url).status_code == 200
    provider.claims = {"groups": ["sales", "audit"]}
    assert sign_in(url).status_code == 200
    assert member_role(sessionmaker, "grace@example.com") == "auditor"
    provider.claims = {"groups": ["sales"]}  # nothing mapped: the default role
    assert sign_in(url).status_code == 200
    assert member_role(sessionmaker, "grace@example.com") == "viewer"


def test_existing_password_user_is_matched_by_email_and_keeps_password_login(world):
    provider, url, sessionmaker = world
    with sessionmaker.begin() as session:
        create_user(session, "grace@example.com", "pw-of-grace")
    provider.claims = {"groups": ["admins"]}
    assert sign_in(url).status_code == 200
    assert member_role(sessionmaker, "grace@example.com") == "admin"
    with sessionmaker() as session:
        assert len(session.scalars(select(User).where(User.email == "grace@example.com")).all()) == 1
    password = httpx.post(f"{url}/login", data={"email": "grace@example.com", "password": "pw-of-grace",
                                                 "next": "/traces"}, headers={"origin": url})
    assert password.status_code == 303


def refused(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert urlsplit(str(response.url)).path == "/auth/oidc/callback"
    assert message in response.text.replace("&#39;", "'"), response.text
    assert "causeline_session" not in response.extensions["cookies"]


@pytest.mark.parametrize("claims, status, message", [
    ({"nonce": "not-the-one-sent"}, 401, "nonce mismatch"),
    ({"aud": "another-app"}, 401, "issued for another application"),
    ({"aud": ["another-app"], "azp": CLIENT_ID}, 401, "issued for another application"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, 401, "The ID token has expired"),
    ({"iss": "http://127.0.0.1:1/elsewhere"}, 401, "not by the configured issuer"),
    ({"email_verified": False}, 403, "has not verified the e-mail address grace@example.com"),
    ({"email_verified": None, "email": None}, 403, "sent no e-mail address"),
])
def test_bad_tokens_are_refused_with_a_clear_message(world, claims, status, message):
    provider, url, sessionmaker = world
    provider.claims = claims
    refused(sign_in(url), status, message)
    assert member_role(sessionmaker, "grace@example.com") is None
    actor, outcome, _, details = logins(sessionmaker)[-1]
    assert (actor, outcome, details["method"]) == ("anonymous", "failed", "oidc")
    assert message in details["reason"].replace("&#39;", "'")


def test_bad_signature_is_refused(world):
    provider, url, sessionmaker = world
    provider.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(sign_in(url), 401, "signature does not verify")
    assert member_role(sessionmaker, "grace@example.com") is None


def test_rotated_provider_key_is_fetched_again(world):
    provider, url, sessionmaker = world
    assert sign_in(url).status_code == 200
    assert provider.jwks_fetches == 1
    assert sign_in(url).status_code == 200
    assert provider.jwks_fetches == 1  # cached
    provider.key, provider.kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), "k2"
    assert sign_in(url).status_code == 200
    assert provider.jwks_fetches == 2


def test_the_last_admin_is_not_demoted_by_the_provider(world):
    provider, url, sessionmaker = world
    provider.claims = {"groups": ["admins"]}
    assert sign_in(url).status_code == 200
    provider.claims = {"groups": ["eng"]}
    assert sign_in(url).status_code == 200  # still signs in, as the admin it is
    assert member_role(sessionmaker, "grace@example.com") == "admin"
    with sessionmaker() as session:
        kept = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.role")).one()
        assert kept.outcome == "refused" and kept.details["new"] == "engineer" and "last admin" in kept.details["reason"]


def test_refused_code_exchange_says_why(world):
    provider, url, _ = world
    provider.client_secret = "rotated-at-the-provider"
    refused(sign_in(url), 401, "refused the code exchange: invalid_client")


def test_wrong_state_is_refused_before_any_code_exchange(world):
    provider, url, sessionmaker = world
    provider.state_override = "forged-state"
    refused(sign_in(url), 400, "state mismatch")
    assert provider.token_requests == []
    assert logins(sessionmaker)[-1][1] == "failed"


def test_callback_without_this_browsers_sign_in_is_refused(world):
    provider, url, _ = world
    response = httpx.get(f"{url}/auth/oidc/callback", params={"code": "x", "state": "y"})
    assert response.status_code == 400 and "not started from this browser" in response.text
    assert provider.token_requests == []


def test_unmapped_user_is_refused_when_there_is_no_default_role(database_url, engine, sessionmaker):
    with sessionmaker.begin() as session:
        project = create_project(session, "acme")
        add_membership(session, create_user(session, "grace@example.com", "pw").id, project.id, "engineer")
        add_membership(session, create_user(session, "boss@example.com", "pw").id, project.id, "admin")
    provider = Provider(claims={"groups": ["sales"]})
    with live_server(provider.app()) as idp_url:
        settings = Settings(database_url=database_url, demo="off", oidc_issuer=idp_url, oidc_client_id=CLIENT_ID,
                            oidc_client_secret=CLIENT_SECRET, oidc_role_claim="groups", oidc_project="acme",
                            oidc_role_map="eng=engineer", oidc_default_role="none")
        with live_server(create_app(settings, engine=engine, parts=("api", "web"))) as url:
            refused(sign_in(url), 403, "grace@example.com has no Causeline role")
    assert member_role(sessionmaker, "grace@example.com") is None  # the provider took the role away
    with sessionmaker() as session:
        removed = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.remove")).one()
        assert removed.target == "grace@example.com"


def test_provider_error_is_shown_only_to_the_browser_that_signed_in(world):
    provider, url, _ = world
    crafted = httpx.get(f"{url}/auth/oidc/callback", params={"error": "access_denied",
                                                              "error_description": "Call +1 555 0100"})
    assert crafted.status_code == 400 and "Call +1" not in crafted.text
    with httpx.Client(timeout=30) as browser:
        start = browser.get(f"{url}/auth/oidc/start")
        assert start.status_code == 302 and "/authorize?" in start.headers["location"]
        answer = browser.get(f"{url}/auth/oidc/callback", params={"error": "access_denied",
                                                                   "error_description": "user not assigned"})
    assert answer.status_code == 401
    assert "refused the sign-in: access_denied (user not assigned)" in answer.text


def test_start_refuses_a_provider_it_cannot_trust_or_reach(database_url, engine, sessionmaker):
    provider = Provider(discovery_issuer="https://impostor.example")
    with live_server(provider.app()) as idp_url:
        for issuer, message in ((idp_url, "names issuer 'https://impostor.example'"),
                                ("http://127.0.0.1:9", "could not be read")):
            settings = Settings(database_url=database_url, demo="off", oidc_issuer=issuer, oidc_client_id=CLIENT_ID)
            with live_server(create_app(settings, engine=engine, parts=("web",))) as url:
                response = httpx.get(f"{url}/auth/oidc/start", timeout=30)
            assert response.status_code == 502 and message in response.text.replace("&#39;", "'"), response.text
    assert provider.authorize_requests == []


def test_sso_routes_without_configuration(client):
    assert client.get("/auth/oidc/start", follow_redirects=False).status_code == 404
    assert client.get("/auth/oidc/callback", follow_redirects=False).status_code == 404
    assert "Sign in with" not in client.get("/login").text

"""The OpenID Connect relying party, on Authlib's public API: discovery, the authorization
request (code flow, PKCE S256, state, nonce), the code exchange, and the ID token's checks.

Authlib (its Starlette client app, without its session storage: web/routes_oidc.py keeps the
sign-in's state in a cookie) fetches the discovery document and the JWKS and talks to the
token endpoint. The ID token is verified here with joserfc (Authlib's JOSE library) and
Authlib's CodeIDToken rather than with `parse_id_token`, because that one does not insist
that `aud` names this client and accepts whatever algorithms the discovery document lists:
here the audience is checked, and only asymmetric algorithms are accepted (a JWKS holds
public keys; HS256 or "none" would let anyone who knows the document forge a token).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2  # the HTTP client Authlib uses when it is installed (its errors are what fail here)
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError, ExpiredTokenError, InvalidClaimError, InvalidKeyIdError, JoseError, MissingClaimError,
)
from joserfc.jwk import KeySet

from core.settings import Settings

ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_S = 60  # clock skew tolerated on exp/iat


class OidcError(Exception):
    """A sign-in that cannot be completed; `message` is for the person signing in."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Authorization:
    url: str  # the provider's authorization endpoint with this sign-in's parameters
    state: str
    nonce: str
    code_verifier: str


def configured(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def display_name(settings: Settings) -> str | None:
    """What the login button calls the provider, or None when single sign-on is off."""
    if not configured(settings):
        return None
    return settings.oidc_name or urlsplit(settings.oidc_issuer).hostname or settings.oidc_issuer


class OidcProvider:
    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        client_kwargs: dict = {"scope": settings.oidc_scopes, "code_challenge_method": "S256", "timeout": 10}
        if not secret:
            client_kwargs["token_endpoint_auth_method"] = "none"  # a public client: PKCE is its proof
        self.client = OAuth().register(
            "oidc", client_id=self.client_id, client_secret=secret, client_kwargs=client_kwargs,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
        )

    async def metadata(self) -> dict:
        try:
            metadata = await self.client.load_server_metadata()
        except (httpx2.HTTPError, ValueError) as exc:
            raise OidcError(f"The identity provider's discovery document ({self.issuer}/.well-known/"
                            f"openid-configuration) could not be read: {_why(exc)}.", status=502) from None
        # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
        if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
            raise OidcError(f"The identity provider's discovery document names issuer {metadata.get('issuer')!r}, "
                            f"not the configured {self.issuer!r}: check CAUSELINE_OIDC_ISSUER.", status=502)
        return metadata

    async def authorize(self, redirect_uri: str) -> Authorization:
        await self.metadata()
        try:
            rv = await self.client.create_authorization_url(redirect_uri)
        except RuntimeError as exc:  # Authlib's word for a discovery document without an authorization endpoint
            raise OidcError(f"The identity provider's discovery document is incomplete ({exc}).", status=502) from None
        return Authorization(rv["url"], rv["state"], rv["nonce"], rv["code_verifier"])

    async def finish(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> dict:
        """Exchanges the code and returns the verified ID token's claims. Raises OidcError."""
        metadata = await self.metadata()
        try:
            token = await self.client.fetch_access_token(redirect_uri=redirect_uri, code=code,
                                                         code_verifier=code_verifier)
        except OAuthError as exc:
            raise OidcError(f"The identity provider refused the code exchange: {exc.error}"
                            + (f" ({exc.description})" if exc.description else "") + ".", status=401) from None
        except (httpx2.HTTPError, ValueError) as exc:
            raise OidcError(f"The identity provider's token endpoint could not be reached: {_why(exc)}.",
                            status=502) from None
        if not isinstance(token, dict) or not isinstance(token.get("id_token"), str):
            raise OidcError("The identity provider returned no ID token (is 'openid' among the scopes?).", status=401)
        return await self.verify(token["id_token"], metadata, nonce=nonce, access_token=token.get("access_token"))

    async def verify(self, id_token: str, metadata: dict, *, nonce: str, access_token: str | None) -> dict:
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in offered if alg in ASYMMETRIC_ALGS]
        if not algorithms:
            raise OidcError(f"The identity provider signs ID tokens only with {offered}; Causeline accepts "
                            f"{', '.join(ASYMMETRIC_ALGS)}.", status=502)
        try:
            try:
                decoded = jwt.decode(id_token, await self._keys(), algorithms=algorithms)
            except InvalidKeyIdError:  # the provider rotated its keys since the JWKS was fetched
                decoded = jwt.decode(id_token, await self._keys(force=True), algorithms=algorithms)
        except (httpx2.HTTPError, RuntimeError) as exc:
            raise OidcError(f"The identity provider's signing keys (JWKS) could not be read: {_why(exc)}.",
                            status=502) from None
        except BadSignatureError:
            raise OidcError("The ID token's signature does not verify against the identity provider's published "
                            "keys: the token was not issued by the configured provider.", status=401) from None
        except InvalidKeyIdError:
            raise OidcError("The ID token is signed with a key the identity provider does not publish.",
                            status=401) from None
        except (JoseError, ValueError) as exc:
            raise OidcError(f"The ID token could not be verified ({_why(exc)}).", status=401) from None
        claims = CodeIDToken(
            decoded.claims, decoded.header,
            {"iss": {"essential": True, "value": metadata["issuer"]},
             "aud": {"essential": True, "value": self.client_id}},
            {"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
        )
        try:
            claims.validate(leeway=LEEWAY_S)
        except ExpiredTokenError:
            raise OidcError("The ID token has expired. Sign in again; if this repeats, check this server's clock.",
                            status=401) from None
        except (InvalidClaimError, MissingClaimError) as exc:
            raise OidcError(self._claim_message(exc, dict(decoded.claims)), status=401) from None
        except JoseError as exc:
            raise OidcError(f"The ID token was refused ({_why(exc)}).", status=401) from None
        return dict(claims)

    def _claim_message(self, exc: InvalidClaimError | MissingClaimError, claims: dict) -> str:
        missing = isinstance(exc, MissingClaimError)
        if exc.claim == "nonce":
            return ("The ID token does not belong to this sign-in (nonce mismatch): it may be replayed. "
                    "Start again from the login page.")
        if exc.claim in ("aud", "azp"):
            return (f"The ID token was issued for another application (audience {claims.get('aud')!r}), "
                    f"not for client id {self.client_id!r}.")
        if exc.claim == "iss":
            return f"The ID token was issued by {claims.get('iss')!r}, not by the configured issuer {self.issuer!r}."
        return f"The ID token's '{exc.claim}' claim is {'missing' if missing else 'invalid'}."

    async def _keys(self, force: bool = False) -> KeySet:
        return KeySet.import_key_set(await self.client.fetch_jwk_set(force=force))


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

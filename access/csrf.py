"""CSRF: every state-changing form POST must come from one of our own pages.

The session cookie is SameSite=Lax, so browsers do not attach it to cross-site POSTs, and
on top of that every POST must carry an Origin (or, failing that, a Referer) naming this
very host; a form on another site can forge neither. Login needs the Origin check itself
(there is no cookie yet): it stops "login CSRF", where a foreign page logs the victim into
the attacker's account.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.requests import HTTPConnection

from core.permissions import Principal


def same_origin(request: HTTPConnection) -> bool:
    """The POST came from one of our own pages (see the module docstring).

    Compares host[:port] only, not the scheme, so it also holds behind a TLS-terminating
    proxy — as long as the proxy passes the original Host header through."""
    host = request.headers.get("host")
    source = request.headers.get("origin") or request.headers.get("referer")
    if not host or not source or source == "null":
        return False
    return urlsplit(source).netloc.lower() == host.lower()


def require_same_site(request: HTTPConnection, principal: Principal) -> None:
    """For a JSON API change: made with a key, or with a login session from this site. (A cookie
    is sent by the browser on its own; a page on a sibling subdomain is "same-site" to SameSite.)"""
    if principal.key_id is None and not same_origin(request):
        raise HTTPException(403, detail="a change made with a login session must come from this site (Origin header)")

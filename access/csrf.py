"""CSRF: every state-changing form POST must come from one of our own pages.

The session cookie is SameSite=Lax, so browsers do not attach it to cross-site POSTs, and
on top of that every POST must carry an Origin (or, failing that, a Referer) naming this
very host; a form on another site can forge neither. Login needs the Origin check itself
(there is no cookie yet): it stops "login CSRF", where a foreign page logs the victim into
the attacker's account.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection


def same_origin(request: HTTPConnection) -> bool:
    """The POST came from one of our own pages (see the module docstring).

    Compares host[:port] only, not the scheme, so it also holds behind a TLS-terminating
    proxy — as long as the proxy passes the original Host header through."""
    host = request.headers.get("host")
    source = request.headers.get("origin") or request.headers.get("referer")
    if not host or not source or source == "null":
        return False
    return urlsplit(source).netloc.lower() == host.lower()

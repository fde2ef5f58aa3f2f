"""Jinja2 environment, display filters and the page response helper.

Autoescape is on for every template and no filter here returns Markup: span names,
prompts and attributes are attacker-controlled text, so they must always go through
escaping. (Jinja's own `tojson` returns Markup — use `pretty` instead.)
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from access.credentials import PROJECT_COOKIE
from core.model_call_dedup import not_counted_note
from core.span import is_model_call

HERE = Path(__file__).resolve().parent

# htmx comes from the CDN, pinned to one exact file by Subresource Integrity: if the CDN
# served anything else, the browser would refuse to run it. Computed from the npm package:
#   npm pack htmx.org@2.0.11 && tar -xzf htmx.org-2.0.11.tgz package/dist/htmx.min.js
#   openssl dgst -sha384 -binary package/dist/htmx.min.js | openssl base64 -A
HTMX_VERSION = "2.0.11"
HTMX_URL = f"https://unpkg.com/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
# The copy `make run` fetches (npm) for Causeline to serve itself: an air-gapped network has no CDN.
HTMX_FILE = HERE / "static" / "vendor" / f"htmx-{HTMX_VERSION}.min.js"
HTMX_LOCAL = f"/static/vendor/{HTMX_FILE.name}"


def htmx_source(copy: Path) -> str:
    """Where pages load htmx from: the local copy when it is there and is the pinned file (its
    hash is the SRI's), else the CDN. The browser checks the SRI either way."""
    try:
        digest = "sha384-" + base64.b64encode(hashlib.sha384(copy.read_bytes()).digest()).decode()
    except OSError:
        return HTMX_URL
    return HTMX_LOCAL if digest == HTMX_SRI else HTMX_URL


HTMX_SRC = htmx_source(HTMX_FILE)

# Defence in depth behind autoescaping: no inline or foreign scripts except pinned htmx
# (script-src names that one file, not the whole CDN host; only 'self' when it is served here).
# Inline *styles* are allowed for the computed duration bars (style="left:..%").
PAGE_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'self'; script-src 'self'{'' if HTMX_SRC == HTMX_LOCAL else ' ' + HTMX_URL}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin keeps the Referer on our own POSTs (the CSRF check may need it) and
    # never leaks trace URLs to other sites.
    "Referrer-Policy": "same-origin",
    # Pages show prompts and user data: do not let shared caches keep them.
    "Cache-Control": "no-store",
    "Vary": "Cookie, HX-Request",
}


# The top navigation: (path, label). Every page is scoped to the viewer's current project.
NAV = (
    ("/overview", "Overview"), ("/traces", "Traces"), ("/failures", "Failures"), ("/costs", "Costs"),
    ("/providers", "Providers"), ("/routing", "Routing"), ("/audit", "Audit"), ("/reports", "Reports"),
    ("/export", "Export"), ("/settings", "Settings"),
)


def fmt_duration_ns(ns: int | None) -> str:
    if ns is None:
        return "—"
    if ns < 1_000_000:
        return f"{ns / 1000:.0f} µs"
    ms = ns / 1_000_000
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.2f} s"
    minutes, seconds = divmod(int(s), 60)
    return f"{minutes}m {seconds:02d}s"


def fmt_duration(start: datetime, end: datetime) -> str:
    return fmt_duration_ns(int((end - start).total_seconds() * 1_000_000) * 1000)


def fmt_money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if value < Decimal("0.0001"):
        return "<$0.0001"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def fmt_usd(value: str | Decimal | None) -> str:
    """A decimal string from the JSON models (money is a string there), formatted as fmt_money."""
    return fmt_money(None if value is None else Decimal(value))


def fmt_int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def fmt_hex(value: bytes | None) -> str:
    return "" if value is None else value.hex()


def pretty(value: Any) -> str:
    """Indented JSON as a plain str, so autoescaping still applies in <pre>."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def trace_cost(trace) -> str:
    """Never a silent $0: unpriced model calls are named, alone or next to the priced sum."""
    priced = trace.llm_calls - trace.unpriced_calls
    if trace.llm_calls and priced == 0:
        return "unpriced"
    if trace.unpriced_calls:
        return f"{fmt_money(trace.cost_usd)} + {trace.unpriced_calls} unpriced"
    return fmt_money(trace.cost_usd) if trace.llm_calls or trace.cost_usd else "—"


def span_cost(span) -> str:
    if span.cost_usd is not None:
        return fmt_money(span.cost_usd)
    if span.cost_source == "unpriced" or is_model_call(span.category):
        return "unpriced"
    return "—"


def keep_query(keep: dict[str, Any], **extra: Any) -> str:
    """A query string of `keep` overridden by `extra`, without empty values (for filter links)."""
    return urlencode({k: v for k, v in {**keep, **extra}.items() if v not in (None, "")})


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(
        duration_ns=fmt_duration_ns, money=fmt_money, usd=fmt_usd, num=fmt_int, time=fmt_time, hex=fmt_hex, pretty=pretty,
    )
    env.globals.update(
        fmt_duration=fmt_duration, trace_cost=trace_cost, span_cost=span_cost, not_counted_note=not_counted_note,
        htmx_url=HTMX_SRC, htmx_sri=HTMX_SRI, nav=NAV, keep_query=keep_query,
    )
    return Jinja2Templates(env=env)


TEMPLATES = make_templates()


def render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200):
    response = TEMPLATES.TemplateResponse(
        request, name, context, status_code=status_code, headers=PAGE_HEADERS,
    )
    chosen = getattr(request.state, "chosen_project", None)
    if chosen:
        # ?project= on a page is remembered, so every link (and the JSON API under the same
        # login) stays in that project. Not a credential: membership is checked on every request.
        settings = request.app.state.settings
        response.set_cookie(PROJECT_COOKIE, chosen, max_age=settings.session_days * 86400, path="/",
                            httponly=True, samesite="lax", secure=settings.secure_cookies)
    return response

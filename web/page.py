"""The page pattern: one data builder (pages/), two renderings.

A page route builds its data once with a `pages/` function, renders it with `render_page`,
and names its JSON twin: the same data from the API, same query string, announced with
`Link: <...>; rel="alternate"; type="application/json"` (and linked on the page).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from web.render import render


def twin(path: str, params: dict[str, Any] | None = None) -> str:
    """The JSON twin's URL: an /api path with the page's own (non-empty) query parameters."""
    query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")}, doseq=True)
    return f"{path}?{query}" if query else path


def render_page(request: Request, template: str, context: dict[str, Any], *, json_href: str | None,
                status_code: int = 200):
    context = {"json_href": json_href, **context}
    response = render(request, template, context, status_code=status_code)
    if json_href:
        response.headers["Link"] = f'<{json_href}>; rel="alternate"; type="application/json"'
    return response

"""/docs without the internet: Swagger UI's assets come from the swagger-ui-bundle-v2 package
(installed with the server) and are served here, under a strict Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")


def docs_page() -> HTMLResponse:
    return with_csp(get_swagger_ui_html(
        openapi_url="/openapi.json", title="Causeline API", swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css", swagger_favicon_url=f"{ASSETS}/favicon-32x32.png"))


def with_csp(page: HTMLResponse) -> HTMLResponse:
    """Swagger UI's page with a Content-Security-Policy: its own inline script allowed by hash,
    its assets from this server only, nothing else (no framing, no plugins)."""
    body = page.body.decode()
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in re.findall(r"<script>(.*?)</script>", body, flags=re.S))
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'")
    page.headers["X-Frame-Options"] = "DENY"
    return page

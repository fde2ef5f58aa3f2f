"""The one browser harness of the web tests: uvicorn on a free port, real Chromium through
Playwright, every other origin blocked, a logged-in page, and axe-core.

htmx is loaded as in production: from Causeline itself when `make` fetched the copy it serves
(web/static/vendor), else from the pinned CDN URL with its SRI hash, answered here from the
local copy in .cache/vendor (tests have no internet). Chromium checks the integrity hash
either way, so this also proves that the SRI in web/render.py matches the real htmx file.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from web.render import HTMX_URL, HTMX_VERSION

ROOT = Path(__file__).resolve().parents[2]
HTMX_COPY = ROOT / ".cache" / "vendor" / "htmx.min.js"
AXE = HTMX_COPY.parent / "axe.min.js"  # `make vendor`
SETUP = (
    f"mkdir -p .cache/vendor && cd .cache/vendor && npm pack htmx.org@{HTMX_VERSION} --silent "
    f"&& tar -xzf htmx.org-{HTMX_VERSION}.tgz --strip-components=2 package/dist/htmx.min.js "
    f"&& rm htmx.org-{HTMX_VERSION}.tgz"
)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored, for a person to look at


@contextmanager
def serve(app):
    """uvicorn in a background thread on a free port we bound ourselves (no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def chromium(app, seeded=None, *, width: int = 1440, color_scheme: str = "light", land: str = "/overview",
             check: bool = True):
    """(base URL, page, seen): a page logged in as `seeded` (when given), landed on `land`;
    `seen` collects dialogs, console errors and requests to other origins, which must stay
    empty (checked on leaving when `check`)."""
    if not HTMX_COPY.is_file() or not Path(CHROMIUM).exists():
        pytest.fail(f"needs {HTMX_COPY} and {CHROMIUM}; from {ROOT} run:\n  {SETUP}")
    from playwright.sync_api import sync_playwright

    with serve(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=color_scheme)
            seen: dict[str, list[str]] = {"dialogs": [], "console": [], "blocked": []}

            def route(r):
                url = r.request.url
                if url == HTMX_URL:
                    # crossorigin="anonymous" makes this a CORS request: the CDN's ACAO header is needed.
                    r.fulfill(path=HTMX_COPY, content_type="application/javascript",
                              headers={"Access-Control-Allow-Origin": "*"})
                elif url.startswith(base):
                    r.continue_()
                else:
                    seen["blocked"].append(url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
            if seeded is not None:
                page.goto(f"{base}/login?next={land}")
                page.fill("input[name=email]", seeded.email)
                page.fill("input[name=password]", seeded.password)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}{land}")
            yield base, page, seen
            if check:
                assert seen["dialogs"] == [], f"a dialog fired: {seen['dialogs']}"
                assert seen["console"] == [], f"browser console errors: {seen['console']}"
                assert seen["blocked"] == [], f"the page tried to reach other origins: {seen['blocked']}"
        finally:
            browser.close()


def serious_accessibility_violations(page) -> list[dict]:
    """axe-core's serious and critical violations. Injected through the DevTools protocol
    (page.evaluate), which the page's CSP does not apply to: no inline script is added."""
    assert AXE.is_file(), f"{AXE} is missing: run `make vendor`"
    page.evaluate(AXE.read_text() + "\n;undefined")
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .map(v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

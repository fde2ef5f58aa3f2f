"""Review findings on the pages: login throttling, NUL bytes and extreme dates in forms,
the exact-file CSP, the truncated trace notice, the API reference behind login."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from core import security
from server.app import create_app
from tests.live import live_server
from tests.web.conftest import ORIGIN, login
from web.login_guard import FailureWindow, LoginGuard
from web.render import HTMX_LOCAL, HTMX_SRC, HTMX_URL, htmx_source


def post_login(client: TestClient, email: str, password: str):
    return client.post("/login", data={"email": email, "password": password, "next": "/traces"},
                       headers=ORIGIN, follow_redirects=False)


def test_login_guard_is_owned_by_the_app(settings, engine):
    first = create_app(settings, engine=engine, parts=("web",))
    second = create_app(settings, engine=engine, parts=("web",))
    assert isinstance(first.state.login_guard, LoginGuard)
    assert first.state.login_guard is not second.state.login_guard


def test_password_checks_beyond_the_slots_get_429_at_once(app, client, seeded, monkeypatch):
    checks = []
    real_verify = security.verify_password
    monkeypatch.setattr(security, "verify_password", lambda h, p: checks.append(1) or real_verify(h, p))
    guard = app.state.login_guard = LoginGuard(max_concurrent=1)
    assert guard.try_acquire()  # the only slot is busy with another login, and stays so until `finally`
    try:
        # Answered while the slot is still taken (waiting for it would never end here), and with
        # no password hashed: the refusal costs nothing.
        busy = post_login(client, seeded.email, seeded.password)
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert "Too many logins at once" in busy.text and 'name="email"' in busy.text
        assert checks == []
    finally:
        guard.release()
    assert post_login(client, seeded.email, seeded.password).status_code == 303
    assert checks == [1]


def test_concurrent_logins_run_at_most_two_password_checks(app, seeded, monkeypatch):
    """Over real HTTP: 8 simultaneous logins while each check takes 0.6 s."""
    running, peak, lock = [0], [0], threading.Lock()
    real_verify = security.verify_password

    def slow_verify(password_hash: str, password: str) -> bool:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.6)
        with lock:
            running[0] -= 1
        return real_verify(password_hash, password)

    monkeypatch.setattr(security, "verify_password", slow_verify)
    with live_server(app) as url:
        def attempt(_):
            return httpx.post(f"{url}/login", data={"email": seeded.email, "password": "wrong"},
                              headers={"origin": url}, timeout=30)

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(r.status_code for r in pool.map(attempt, range(8)))
        # Pages keep answering while the checks run.
        assert httpx.get(f"{url}/login", timeout=5).status_code == 200
    assert peak[0] <= 2
    assert statuses.count(401) >= 1 and statuses.count(429) >= 4 and set(statuses) <= {401, 429}


def test_failed_logins_are_limited_per_email(app, client, seeded):
    app.state.login_guard = LoginGuard(pair_failures=3, ip_failures=100, email_free_failures=100)
    for _ in range(3):
        assert post_login(client, seeded.email, "wrong").status_code == 401
    # Even the right password is not checked now.
    locked = post_login(client, seeded.email.upper(), seeded.password)
    assert locked.status_code == 429 and 0 < int(locked.headers["retry-after"]) <= 15 * 60
    assert "Too many failed logins" in locked.text
    # Another email from the same client is still checked.
    assert post_login(client, "someone@example.com", "wrong").status_code == 401


def test_a_successful_login_resets_the_email_counter(app, client, seeded):
    app.state.login_guard = LoginGuard(pair_failures=3, ip_failures=100, email_free_failures=100)
    for _ in range(2):
        for _ in range(2):
            assert post_login(client, seeded.email, "wrong").status_code == 401
        assert post_login(client, seeded.email, seeded.password).status_code == 303


def test_failed_logins_are_limited_per_client_address(app, client, seeded):
    app.state.login_guard = LoginGuard(pair_failures=100, ip_failures=3)
    for i in range(3):
        assert post_login(client, f"guess{i}@example.com", "wrong").status_code == 401
    locked = post_login(client, seeded.email, seeded.password)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0


def test_failure_window_slides_and_stays_bounded():
    now = [1000.0]
    window = FailureWindow(2, 60, max_keys=3, clock=lambda: now[0])
    window.fail("a")
    assert window.retry_after("a") == 0
    now[0] += 10
    window.fail("a")
    assert window.retry_after("a") == 50  # the first failure leaves the window in 50 s
    now[0] += 50
    assert window.retry_after("a") == 0
    for key in "bcdef":
        window.fail(key)
    assert len(window) == 3


def test_nul_in_the_login_email_is_a_plain_401_without_a_query(app, client, engine, seeded):
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = post_login(client, "ada\x00@example.com", seeded.password)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 401 and "Wrong email or password." in response.text
    assert statements == []


@pytest.mark.parametrize("query, message", [
    ("service=a%00b", "“Service” must not contain NUL characters."),
    ("agent=%00&model=x%00", "“Agent” must not contain NUL characters."),
    ("since=0001-01-01T00:00:00%2B05:00", "“From” must be between 1970-01-01 and 9999-01-01."),
    ("until=9999-12-31T23:00-05:00", "“To” must be between 1970-01-01 and 9999-01-01."),
])
def test_nul_and_extreme_dates_are_form_errors(client, seeded, query, message):
    login(client, seeded)
    for path in ("/traces", "/traces/rows"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 200, response.text
    assert message in client.get(f"/traces?{query}").text


def test_csp_allows_only_the_pinned_htmx_file(client, seeded):
    login(client, seeded)
    csp = client.get("/traces").headers["content-security-policy"]
    [script_src] = [d.strip() for d in csp.split(";") if d.strip().startswith("script-src")]
    # The copy Causeline serves itself (fetched by make) when present, else the one pinned CDN file.
    assert script_src == ("script-src 'self'" if HTMX_SRC == HTMX_LOCAL else f"script-src 'self' {HTMX_URL}")


def test_htmx_is_served_from_the_local_copy_only_when_it_is_the_pinned_file(tmp_path):
    copy = tmp_path / "htmx.min.js"
    assert htmx_source(copy) == HTMX_URL  # not fetched: the CDN, still pinned by SRI
    copy.write_text("alert('not htmx')")
    assert htmx_source(copy) == HTMX_URL  # tampered or another version: never served
    pinned = Path(__file__).resolve().parents[2] / ".cache" / "vendor" / "htmx.min.js"
    copy.write_bytes(pinned.read_bytes())
    assert htmx_source(copy) == HTMX_LOCAL


def test_api_reference_is_served_without_a_cdn(client, seeded):
    login(client, seeded)
    page = client.get("/docs")
    assert "https://" not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
    csp = page.headers["content-security-policy"]
    assert "https:" not in csp and "script-src 'self' 'sha256-" in csp
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/docs/assets/{asset}").status_code == 200


def test_trace_page_says_when_spans_are_cut(settings, engine, seeded):
    capped = settings.model_copy(update={"max_trace_spans": 3})
    with TestClient(create_app(capped, engine=engine, parts=("api", "web")), base_url="http://testserver") as client:
        login(client, seeded)
        html = client.get(f"/traces/{seeded.trace.hex}").text
        assert "only the first 3 (by start time) are shown" in html and "This trace has 8 spans" in html
        assert html.count('class="span-row') == 3
        # A span beyond the cut still opens by id.
        late = seeded.trace.spans["orphan"].hex()
        assert f'data-span="{late}"' not in html
        assert "retrieval search_kb" in client.get(f"/traces/{seeded.trace.hex}?span={late}").text
    with TestClient(create_app(settings, engine=engine, parts=("api", "web")), base_url="http://testserver") as client:
        login(client, seeded)
        assert "only the first" not in client.get(f"/traces/{seeded.trace.hex}").text


def test_api_reference_follows_the_login(client, seeded):
    response = client.get("/docs", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fdocs"
    assert client.get("/openapi.json").status_code == 401
    login(client, seeded)
    assert client.get("/docs").status_code == 200
    # What Swagger UI does next: fetch the spec with the session cookie.
    assert client.get("/openapi.json").json()["info"]["title"] == "Causeline"


def test_nobody_can_lock_an_owner_out_from_another_address():
    now = [1000.0]
    guard = LoginGuard(pair_failures=10, ip_failures=1000, email_free_failures=5, email_max_delay_s=30,
                       clock=lambda: now[0])
    for i in range(200):  # an attacker rotating nothing but guessing hard from one address
        if guard.refuse("6.6.6.6", "owner@x") is None:
            guard.failed("6.6.6.6", "owner@x")
        now[0] += 0.5
    assert guard.refuse("6.6.6.6", "owner@x").retry_after > 60  # the attacker's pair is locked
    owner = guard.refuse("10.0.0.7", "owner@x")  # the owner, elsewhere: seconds at most
    assert owner is None or owner.retry_after <= 30
    now[0] += 31
    assert guard.refuse("10.0.0.7", "owner@x") is None


def test_the_account_delay_grows_and_is_capped():
    now = [0.0]
    guard = LoginGuard(pair_failures=1000, ip_failures=1000, email_free_failures=2, email_max_delay_s=8,
                       clock=lambda: now[0])
    waits = []
    for i in range(7):
        guard.failed(f"10.0.0.{i}", "a@x")  # every guess from a new address
        refusal = guard.refuse(f"10.0.1.{i}", "a@x")
        waits.append(refusal.retry_after if refusal else 0)
    assert waits == [0, 1, 2, 4, 8, 8, 8]

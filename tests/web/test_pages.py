"""Server-rendered pages: login, redirects, CSRF, escaping, list/tree rendering, fragments."""

from __future__ import annotations

import os
import re
from html import unescape
from urllib.parse import quote

from fastapi.testclient import TestClient

from db.queries.auth import create_user
from server.app import create_app
from tests.api.seed import XSS, make_span, seed_agent_trace, seed_project, seed_simple_traces, store
from tests.web.conftest import ORIGIN, login
from web.render import HTMX_LOCAL, HTMX_SRC, HTMX_SRI
from web.tree import build_tree

ESCAPED_XSS = "&lt;script&gt;alert(1)&lt;/script&gt;"


def span_order(html: str) -> list[str]:
    return re.findall(r'<tr class="span-row[^"]*" data-span="([0-9a-f]{16})"', html)


def test_logged_out_requests_go_to_login(client, seeded):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/overview"
    response = client.get("/traces", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Ftraces"
    target = f"/traces/{seeded.trace.hex}?span={seeded.trace.spans['llm'].hex()}"
    response = client.get(target, follow_redirects=False)
    assert response.headers["location"] == f"/login?next={quote(target, safe='')}"
    # An htmx fragment asks htmx for a full-page redirect instead of swapping the login form in.
    response = client.get(f"/traces/{seeded.trace.hex}/spans/{seeded.trace.spans['llm'].hex()}",
                          headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver/traces/{seeded.trace.hex}"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == f"/login?next={quote('/traces/' + seeded.trace.hex, safe='')}"


def test_login_sets_a_strict_cookie_and_logout_revokes_it(client, seeded):
    form = client.get("/login?next=/traces/" + seeded.trace.hex)
    assert form.status_code == 200 and 'name="password"' in form.text
    assert f'value="/traces/{seeded.trace.hex}"' in form.text

    wrong = client.post("/login", data={"email": seeded.email, "password": "nope"}, headers=ORIGIN,
                        follow_redirects=False)
    assert wrong.status_code == 401 and "Wrong email or password." in wrong.text
    assert "set-cookie" not in wrong.headers
    unknown = client.post("/login", data={"email": "who@example.com", "password": "nope"}, headers=ORIGIN)
    assert unknown.status_code == 401 and "Wrong email or password." in unknown.text

    ok = client.post("/login", data={"email": "ADA@example.com", "password": seeded.password,
                                     "next": f"/traces/{seeded.trace.hex}"}, headers=ORIGIN, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == f"/traces/{seeded.trace.hex}"
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith("causeline_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
    token = client.cookies["causeline_session"]

    page = client.get("/traces")
    assert page.status_code == 200 and "ada@example.com" in page.text and "invoke_agent triage" in page.text
    assert client.get("/login", follow_redirects=False).headers["location"] == "/overview"

    out = client.post("/logout", headers=ORIGIN, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'causeline_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    client.cookies.set("causeline_session", token)  # replaying the old cookie no longer works
    assert client.get("/traces", follow_redirects=False).status_code == 303


def test_secure_cookie_behind_https(settings, engine, seeded):
    app = create_app(settings.model_copy(update={"secure_cookies": True}), engine=engine, parts=("api", "web"))
    with TestClient(app, base_url="http://testserver") as client:
        response = client.post("/login", data={"email": seeded.email, "password": seeded.password},
                               headers=ORIGIN, follow_redirects=False)
        assert "Secure" in response.headers["set-cookie"]


def test_cross_site_posts_are_refused(client, seeded):
    data = {"email": seeded.email, "password": seeded.password}
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Referer": "https://evil.example/login"}, {"Origin": "http://testserver.evil.example"}):
        response = client.post("/login", data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 403, headers
        assert "set-cookie" not in response.headers
    # A same-origin Referer is enough when a browser omits Origin.
    response = client.post("/login", data=data, headers={"Referer": "http://testserver/login"}, follow_redirects=False)
    assert response.status_code == 303
    assert client.post("/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/traces", follow_redirects=False).status_code == 200  # still logged in


def test_open_redirect_is_refused(client, seeded):
    hostile = ["https://evil.example/", "//evil.example", "/\\evil.example", "\\\\evil.example",
               "javascript:alert(1)", "http:/evil.example", "/traces\r\nSet-Cookie: x=1", "///evil.example", ""]
    logged_out = TestClient(client.app)
    for next_value in hostile:
        response = client.post("/login", data={"email": seeded.email, "password": seeded.password,
                                               "next": next_value}, headers=ORIGIN, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/overview", next_value
        form = logged_out.get("/login", params={"next": next_value})
        assert 'name="next" value="/overview"' in form.text, next_value


def test_local_next_is_kept(client, seeded):
    login(client, seeded, next_path="/traces?status=error&agent=triage")
    response = client.post("/login", data={"email": seeded.email, "password": seeded.password,
                                           "next": "/traces?status=error"}, headers=ORIGIN, follow_redirects=False)
    assert response.headers["location"] == "/traces?status=error"


def test_prompt_and_attribute_text_is_escaped(client, session, seeded):
    hostile = os.urandom(16)
    store(session, [make_span(seeded.project.id, hostile, name='<img src=x onerror="alert(2)">', start_ms=0,
                              duration_ms=1, agent_name=XSS, service_name="x")])
    session.commit()
    login(client, seeded)
    fallback = seeded.trace.spans["fallback"].hex()
    pages = [
        client.get(f"/traces/{seeded.trace.hex}?span={fallback}"),
        client.get(f"/traces/{seeded.trace.hex}/spans/{fallback}", headers={"HX-Request": "true"}),
        client.get("/traces"),
        client.get(f"/traces/{hostile.hex()}"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert XSS not in page.text and "<img src=x" not in page.text
        # Only our own two <script src> tags, in the head of full pages.
        assert page.text.count("<script") in (0, 2)
    assert ESCAPED_XSS in pages[0].text and ESCAPED_XSS in pages[1].text  # input and attributes, in <pre>
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in pages[2].text
    assert ESCAPED_XSS in pages[3].text  # agent name tag


def test_pages_send_security_headers(client, seeded):
    login(client, seeded)
    for response in (client.get("/traces"), client.get("/login", follow_redirects=False)):
        csp = response.headers.get("content-security-policy", "")
        if response.status_code == 200:
            # htmx from Causeline itself when make fetched the pinned copy, else the pinned CDN file.
            script_src = "script-src 'self';" if HTMX_SRC == HTMX_LOCAL else "script-src 'self' https://unpkg.com"
            assert script_src in csp and "object-src 'none'" in csp
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"
    html = client.get("/traces").text
    assert f'<script src="{HTMX_SRC}" integrity="{HTMX_SRI}" crossorigin="anonymous"' in html
    assert re.fullmatch(r"(https://unpkg\.com/htmx\.org@2\.\d+\.\d+/dist|/static/vendor)/htmx(-2\.\d+\.\d+)?\.min\.js",
                        HTMX_SRC)


def test_trace_list_page(client, session, seeded):
    login(client, seeded)
    html = client.get("/traces").text
    assert '<span class="badge error">error</span>' in html
    assert "$0.0081 + 2 unpriced" in html  # never a silent $0
    assert 'href="/api/traces"' in html and f'href="/traces/{seeded.trace.hex}"' in html
    assert "4.20 s" in html and "1,600 / 400" in html

    unpriced_only = os.urandom(16)
    store(session, [make_span(seeded.project.id, unpriced_only, name="lonely call", start_ms=60_000, duration_ms=5,
                              category="llm", request_model="mystery", cost_source="unpriced")])
    session.commit()
    row = client.get("/traces", params={"model": "mystery"}).text
    assert "lonely call" in row and ">unpriced</td>" in row and "$0<" not in row
    assert 'href="/api/traces?model=mystery"' in row


def test_trace_list_pagination_with_and_without_htmx(client, session, seeded):
    seed_simple_traces(session, seeded.project.id, 4, service="batch")
    session.commit()
    login(client, seeded)
    first = client.get("/traces", params={"service": "batch", "limit": 3}).text
    assert first.count('<tr class="status-') == 3
    href = unescape(re.search(r'<tr class="more">.*?<a href="([^"]+)" hx-get="([^"]+)"', first, re.S).group(1))
    fragment_url = unescape(re.search(r'<tr class="more">.*?hx-get="([^"]+)"', first, re.S).group(1))
    assert href.startswith("/traces?service=batch&limit=3&cursor=")
    assert fragment_url == href.replace("/traces?", "/traces/rows?", 1)

    fragment = client.get(fragment_url, headers={"HX-Request": "true"}).text
    assert "<html" not in fragment and fragment.count('<tr class="status-') == 1
    assert '<tr class="more">' not in fragment  # last page
    full = client.get(href).text  # the no-JavaScript fallback is a whole page
    assert "<html" in full and full.count('<tr class="status-') == 1 and "Newest traces" in full
    ids = set(re.findall(r'href="/traces/([0-9a-f]{32})"', first + fragment))
    assert len(ids) == 4


def test_bad_filters_are_explained_on_the_page(client, seeded):
    login(client, seeded)
    html = client.get("/traces", params={"since": "yesterday", "status": "broken", "limit": "9999",
                                         "cursor": "junk"}).text
    assert "is not a date/time" in html and "Status must be one of" in html
    assert "from 1 to 500" in html and "page link is invalid" in html
    assert 'value="yesterday"' in html  # the form keeps what was typed


def test_trace_page_renders_the_span_tree(client, seeded):
    login(client, seeded)
    t = seeded.trace
    html = client.get(f"/traces/{t.hex}").text
    names = ["agent", "route", "llm", "fallback", "tool", "handoff", "billing_llm", "orphan"]
    assert span_order(html) == [t.spans[n].hex() for n in names]
    depths = [int(d) for d in re.findall(r'class="span-cell" style="padding-left: (\d+)px"', html)]
    assert depths == [8, 26, 44, 44, 26, 26, 44, 8]  # orphan back at top level
    assert "parent missing" in html and "✕ timeout" in html
    assert f'href="/api/traces/{t.hex}"' in html
    assert '<span class="rel">fallback_of</span>' in html  # lineage section
    assert "Select a span" in html
    # ?span= renders the detail server-side (works without htmx).
    selected = client.get(f"/traces/{t.hex}", params={"span": t.spans["llm"].hex()}).text
    assert "Request timed out after 2.0s" in selected and "openai.APITimeoutError" in selected
    assert f'class="span-row status-error selected" data-span="{t.spans["llm"].hex()}"' in selected


def test_span_fragment(client, seeded):
    login(client, seeded)
    t = seeded.trace
    url = f"/traces/{t.hex}/spans/{t.spans['tool'].hex()}"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "execute_tool lookup_order" in fragment.text and "lookup_order" in fragment.text
    assert '<span class="rel">data_from</span>' in fragment.text and "chat claude-sonnet-4" in fragment.text
    plain = client.get(url, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/traces/{t.hex}?span={t.spans['tool'].hex()}"
    missing = client.get(f"/traces/{t.hex}/spans/{'0' * 16}", headers={"HX-Request": "true"})
    assert missing.status_code == 404 and "was not found" in missing.text


def test_unknown_invalid_and_foreign_traces_are_404(client, session, seeded):
    other = seed_project(session, "other")
    foreign = seed_agent_trace(session, other.id)
    session.commit()
    login(client, seeded)
    for path in (f"/traces/{foreign.hex}", f"/traces/{'ab' * 16}", "/traces/not-a-trace"):
        response = client.get(path)
        assert response.status_code == 404 and "<html" in response.text
    assert client.get(f"/traces/{foreign.hex}/spans/{foreign.spans['llm'].hex()}",
                      headers={"HX-Request": "true"}).status_code == 404


def test_user_without_project_gets_a_clear_page(client, session, seeded):
    create_user(session, "new@example.com", "pw-123456")
    session.commit()
    response = client.post("/login", data={"email": "new@example.com", "password": "pw-123456"}, headers=ORIGIN)
    assert response.status_code == 403 and "not a member of any project" in response.text


def test_auth_disabled_needs_no_login(settings, engine, session):
    project = seed_project(session, "default")
    trace = seed_agent_trace(session, project.id)
    session.commit()
    app = create_app(settings.model_copy(update={"auth_disabled": True}), engine=engine, parts=("api", "web"))
    with TestClient(app) as client:
        assert trace.hex in client.get("/traces").text
        assert client.get("/login", follow_redirects=False).headers["location"] == "/overview"


def test_tree_survives_cycles_and_self_parents():
    trace = os.urandom(16)
    a, b, c, d = (os.urandom(8) for _ in range(4))
    spans = [
        make_span(1, trace, span_id=a, parent=b, name="a", start_ms=1, duration_ms=1),
        make_span(1, trace, span_id=b, parent=a, name="b", start_ms=2, duration_ms=1),
        make_span(1, trace, span_id=c, parent=c, name="c", start_ms=0, duration_ms=0),
        make_span(1, trace, span_id=d, name="d", start_ms=3, duration_ms=0),
    ]
    rows = build_tree(spans)
    assert [r.span.name for r in rows] == ["c", "d", "a", "b"]
    assert [r.orphan for r in rows] == ["parent cycle", None, "parent cycle", None]
    assert [r.depth for r in rows] == [0, 0, 0, 1]
    assert all(r.width_pct > 0 and 0 <= r.offset_pct <= 100 for r in rows)
    assert build_tree([]) == []

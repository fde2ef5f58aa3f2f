"""The permission matrix: every route of the assembled app, with every role and key scope,
against the one table (core/permissions.py). A route missing from ROUTES fails the test, so a
new route cannot ship without a decision about who may call it.

Also: cross-project isolation through every GET route, and viewers' masked content.
"""

from __future__ import annotations

import html
import os

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from collector.service import IngestService
from collector.writer import BatchWriter
from core.permissions import ROLE_PERMISSIONS, SCOPE_PERMISSIONS, Permission, Role
from core.settings import Settings
from db.engine import libpq_url
from db.queries.auth import add_membership, create_api_key, create_user, create_user_session
from server.app import create_app
from tests.api.seed import seed_agent_trace, seed_project

PUBLIC = "public"
ORIGIN = {"Origin": "http://testserver"}

# (method, path template) -> how to call it. Values filled from the seeded project.
ROUTES: dict[tuple[str, str], dict] = {
    ("GET", "/healthz"): {}, ("GET", "/readyz"): {},
    ("GET", "/metrics"): {},
    ("POST", "/v1/traces"): {"headers": {"content-type": "application/json"}, "content": "{}"},
    ("POST", "/v1/logs"): {"headers": {"content-type": "application/json"}, "content": "{}"},
    ("POST", "/v1/metrics"): {"headers": {"content-type": "application/json"}, "content": "{}"},
    ("GET", "/openapi.json"): {}, ("GET", "/docs"): {},
    ("GET", "/api/traces"): {}, ("GET", "/api/traces/{trace_id}"): {},
    ("GET", "/api/traces/{trace_id}/attribution"): {}, ("GET", "/api/traces/{trace_id}/lineage"): {},
    ("GET", "/api/traces/{trace_id}/costs"): {}, ("GET", "/api/failures"): {},
    ("GET", "/api/costs"): {}, ("GET", "/api/health/providers"): {}, ("GET", "/api/anomalies"): {},
    ("GET", "/api/settings"): {}, ("GET", "/api/audit"): {}, ("GET", "/api/audit/export"): {},
    ("GET", "/audit"): {},
    ("GET", "/api/overview"): {}, ("GET", "/api/providers"): {}, ("GET", "/api/routing"): {},
    ("POST", "/api/scores"): {"headers": {"content-type": "application/json"}, "content": "[]"},
    ("GET", "/api/scores"): {}, ("GET", "/api/scores/summary"): {},
    ("GET", "/api/evaluators"): {},
    ("PUT", "/api/evaluators/{name}"): {"headers": {"content-type": "application/json"},
                                        "content": '{"kind": "regex", "config": {"pattern": "x"}}'},
    ("DELETE", "/api/evaluators/{name}"): {},
    ("GET", "/api/export/finetune/preview"): {}, ("GET", "/api/export/finetune"): {},
    ("GET", "/export"): {"params": {"preview": "1"}},
    ("GET", "/costs"): {}, ("GET", "/failures"): {},
    ("GET", "/api/reports/incident/{trace_id}"): {}, ("GET", "/api/reports/period"): {},
    ("GET", "/reports"): {}, ("GET", "/reports/incident"): {"params": {"trace": "ab"}},
    ("GET", "/login"): {}, ("POST", "/login"): {"data": {}}, ("POST", "/logout"): {},
    ("GET", "/auth/oidc/start"): {}, ("GET", "/auth/oidc/callback"): {},
    ("GET", "/"): {}, ("GET", "/traces"): {}, ("GET", "/traces/rows"): {},
    ("GET", "/traces/{trace_id}"): {}, ("GET", "/traces/{trace_id}/spans/{span_id}"): {"hx": True},
    ("GET", "/overview"): {}, ("GET", "/providers"): {}, ("GET", "/routing"): {},
    ("GET", "/traces/{trace_id}/children/{span_id}"): {"hx": True},
    ("POST", "/traces/{trace_id}/spans/{span_id}/replay"): {"hx": True},
    ("GET", "/traces/{trace_id}/attribution"): {"hx": True}, ("GET", "/traces/{trace_id}/costs"): {"hx": True},
    ("GET", "/settings"): {}, ("GET", "/settings/prices/preview"): {"params": {"model": "gpt*"}},
    ("POST", "/settings/keys"): {"data": {"name": "m", "scopes": ["read"]}},
    ("POST", "/settings/keys/{key_id}/revoke"): {},
    ("POST", "/settings/prices"): {"data": {"model": "m", "input": "1", "output": "1"}},
    ("POST", "/settings/prices/{price_id}/remove"): {},
    ("POST", "/settings/members"): {"data": {"email": "new@example.com", "role": "viewer"}},
    ("POST", "/settings/members/role"): {"data": {"email": "nobody@example.com", "role": "viewer"}},
    ("POST", "/settings/members/remove"): {"data": {"email": "nobody@example.com"}},
    ("GET", "/api/alerts"): {},
    ("POST", "/api/alerts/rules"): {"headers": {"content-type": "application/json"},
                                    "content": '{"name": "r", "kind": "failed_runs", "threshold": 1}'},
    ("PUT", "/api/alerts/rules/{rule_id}"): {"headers": {"content-type": "application/json"},
                                             "content": '{"name": "r", "kind": "failed_runs", "threshold": 1}'},
    ("DELETE", "/api/alerts/rules/{rule_id}"): {},
    ("POST", "/api/alerts/channels"): {"headers": {"content-type": "application/json"},
                                       "content": '{"name": "c", "kind": "email", "target": "a@example.com"}'},
    ("DELETE", "/api/alerts/channels/{channel_id}"): {},
    ("POST", "/api/alerts/channels/{channel_id}/test"): {},
    ("GET", "/settings/alerts"): {},
    ("POST", "/settings/alerts/rules"): {"data": {"name": "r", "kind": "failed_runs", "threshold": "1"}},
    ("POST", "/settings/alerts/rules/{rule_id}/toggle"): {},
    ("POST", "/settings/alerts/rules/{rule_id}/remove"): {},
    ("POST", "/settings/alerts/channels"): {"data": {"name": "c", "kind": "email", "target": "a@example.com"}},
    ("POST", "/settings/alerts/channels/{channel_id}/remove"): {},
    ("POST", "/settings/alerts/channels/{channel_id}/test"): {},
    ("GET", "/settings/evaluation"): {},
    ("POST", "/settings/evaluation/rules"): {"data": {"name": "r", "kind": "llm_rubric", "rubric": "polite"}},
    ("POST", "/settings/evaluation/rules/{name}/remove"): {},
    ("POST", "/settings/retention"): {"data": {"days": "200"}},
    ("POST", "/settings/retention/hold"): {"data": {"reason": "matter 1"}},
    ("POST", "/settings/retention/release"): {},
}
# Routes open to anyone on purpose: probes, the login form, single sign-on, the site root (a redirect).
PUBLIC_ROUTES = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/login"), ("POST", "/login"),
                 ("POST", "/logout"), ("GET", "/"), ("GET", "/auth/oidc/start"), ("GET", "/auth/oidc/callback")}


def app_routes(app) -> dict[tuple[str, str], APIRoute]:
    """Every route: the app's own and those of each router create_app included (and recorded)."""
    found = {(m, r.path): r for r in app.routes if isinstance(r, APIRoute) for m in r.methods if m != "HEAD"}
    for prefix, router in app.state.routers:
        for r in router.routes:
            assert isinstance(r, APIRoute), f"a nested router in {prefix or '/'}: include it in create_app"
            found.update({(m, prefix + r.path): r for m in r.methods if m != "HEAD"})
    return found


def keys_only(route: APIRoute) -> bool:
    def walk(dependant):
        return any(getattr(d.call, "keys_only", False) or walk(d) for d in dependant.dependencies)
    return walk(route.dependant)


def permission_of(route: APIRoute) -> Permission | None:
    """The permission its dependencies check (the `.permission` that access/ puts on them)."""
    found = set()

    def walk(dependant):
        for dep in dependant.dependencies:
            if (p := getattr(dep.call, "permission", None)) is not None:
                found.add(p)
            walk(dep)
    walk(route.dependant)
    assert len(found) <= 1, f"{route.path} checks several permissions: {found}"
    return next(iter(found), None)


@pytest.fixture
def world(database_url, engine, sessionmaker):
    settings = Settings(database_url=database_url, demo="off")
    writer = BatchWriter.from_settings(libpq_url(database_url), settings)
    service = IngestService(settings, sessionmaker, writer)
    service.start()
    app = create_app(settings, engine=engine, ingest=service)
    with sessionmaker() as session:
        acme, other = seed_project(session, "acme"), seed_project(session, "other")
        trace, foreign = seed_agent_trace(session, acme.id), seed_agent_trace(session, other.id)
        principals: dict[str, dict] = {"anonymous": {}}
        for role in Role:
            user = create_user(session, f"{role}@example.com", "pw-" + role)
            add_membership(session, user.id, acme.id, role)
            principals[f"role:{role}"] = {"cookie": create_user_session(session, user.id, days=1)}
        for scope in SCOPE_PERMISSIONS:
            principals[f"scope:{scope}"] = {"key": create_api_key(session, acme.id, name=scope, scopes=[scope]).secret}
        session.commit()
    yield app, principals, trace, foreign
    service.stop()


def expected(principal: str, permission: Permission | None, only_keys: bool = False) -> bool:
    if permission is None:
        return True
    if principal == "anonymous" or (only_keys and not principal.startswith("scope:")):
        return False
    kind, _, name = principal.partition(":")
    held = ROLE_PERMISSIONS[Role(name)] if kind == "role" else SCOPE_PERMISSIONS[name]
    return permission in held


def call(client: TestClient, method: str, path: str, spec: dict, who: dict, trace, *, key_id=None):
    url = (path.replace("{trace_id}", trace.hex).replace("{span_id}", trace.spans["llm"].hex())
           .replace("{key_id}", str(key_id or 999999)).replace("{price_id}", "999999")
           .replace("{rule_id}", "999999").replace("{channel_id}", "999999").replace("{name}", "matrix-rule"))
    headers = {**ORIGIN, **spec.get("headers", {})}
    if spec.get("hx"):
        headers["hx-request"] = "true"
    if "key" in who:
        headers["authorization"] = f"Bearer {who['key']}"
    client.cookies.clear()
    if "cookie" in who:
        client.cookies.set("causeline_session", who["cookie"])
    return client.request(method, url, headers=headers, params=spec.get("params"), data=spec.get("data"),
                          content=spec.get("content"), follow_redirects=False)


def denied(response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code in (302, 303, 307) and response.headers["location"].startswith("/login")


def test_every_route_is_in_the_matrix_and_checks_one_permission(world):
    app = world[0]
    routes = app_routes(app)
    assert set(routes) == set(ROUTES), (
        f"routes missing from the matrix: {sorted(set(routes) - set(ROUTES))}; "
        f"stale entries: {sorted(set(ROUTES) - set(routes))}")
    for key, route in routes.items():
        permission = permission_of(route)
        if key in PUBLIC_ROUTES:
            assert permission is None, f"{key} is meant to be public but checks {permission}"
        else:
            assert permission is not None, f"{key} checks no permission: not reachable without a key or login"


@pytest.mark.parametrize("who", ["anonymous", *(f"role:{r}" for r in Role), *(f"scope:{s}" for s in SCOPE_PERMISSIONS)])
def test_each_principal_gets_exactly_what_the_table_grants(world, who):
    app, principals, trace, _ = world
    routes = app_routes(app)
    wrong = []
    with TestClient(app, base_url="http://testserver") as client:
        for (method, path), spec in sorted(ROUTES.items()):
            if (method, path) == ("POST", "/logout"):
                continue  # would end the session the next routes use; public anyway
            permission = permission_of(routes[(method, path)])
            response = call(client, method, path, spec, principals[who], trace)
            if (method, path) in PUBLIC_ROUTES:  # e.g. the login form refuses an empty password: 401
                assert response.status_code < 500, f"{method} {path}: {response.status_code}"
                continue
            if denied(response) == expected(who, permission, keys_only(routes[(method, path)])):
                wrong.append(f"{method} {path}: {response.status_code} (permission {permission})")
    assert not wrong, f"{who}: " + "; ".join(wrong)


def test_no_route_shows_another_project(world):
    app, principals, _, foreign = world
    all_routes = app_routes(app)
    routes = set(all_routes)
    with TestClient(app, base_url="http://testserver") as client:
        for who in ("role:admin", "scope:read"):
            for method, path in sorted(routes):
                if method != "GET" or "{" not in path:
                    continue
                response = call(client, method, path, ROUTES[(method, path)], principals[who], foreign)
                # 404 where the principal may call the route at all (e.g. keys never create reports: 403).
                want = 404 if expected(who, permission_of(all_routes[(method, path)])) else 403
                assert response.status_code == want, f"{who} {path}: {response.status_code}"
            listing = call(client, "GET", "/api/traces", {}, principals[who], foreign)
            assert foreign.hex not in listing.text
            other = call(client, "GET", "/api/traces", {"params": {"project": "other"}}, principals[who], foreign)
            assert other.status_code == 403


def test_viewers_see_content_masked_everywhere(world):
    app, principals, trace, _ = world
    secret_text = "Where is my order #1234?"
    with TestClient(app, base_url="http://testserver") as client:
        for who, visible in (("role:viewer", False), ("role:engineer", True), ("role:auditor", True),
                             ("scope:read", True)):
            for path, spec in ((f"/api/traces/{trace.hex}", {}),
                               (f"/traces/{trace.hex}/spans/{trace.spans['llm'].hex()}", {"hx": True}),
                               (f"/traces/{trace.hex}?span={trace.spans['llm'].hex()}", {})):
                body = html.unescape(call(client, "GET", path, spec, principals[who], trace).text)
                assert (secret_text in body) is visible, f"{who} {path}"
                if not visible:
                    assert "masked" in body

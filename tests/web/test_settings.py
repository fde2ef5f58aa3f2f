"""Settings: keys (secret once, capped by the creator's role, revoke), price overrides with a
preview, members — each action allowed by its own permission and CSRF-checked."""

from __future__ import annotations

import html

import pytest
from fastapi.testclient import TestClient

from core.permissions import Role
from db.queries.auth import add_membership, create_user, find_key
from tests.web.conftest import ORIGIN, PASSWORD, Seeded, login


def as_role(session, seeded: Seeded, role: Role, email: str) -> Seeded:
    user = create_user(session, email, PASSWORD)
    add_membership(session, user.id, seeded.project.id, role)
    session.commit()
    return Seeded(seeded.project, seeded.trace, email, PASSWORD)


def test_engineer_creates_a_key_sees_it_once_and_revokes_it(client: TestClient, session, seeded):
    login(client, as_role(session, seeded, Role.ENGINEER, "eng@example.com"))
    page = client.get("/settings")
    assert page.status_code == 200 and 'rel="alternate"' in page.headers["link"]
    assert 'value="metrics"' not in page.text  # an engineer cannot grant what they lack
    created = client.post("/settings/keys", data={"name": "bot", "scopes": ["ingest", "read"]}, headers=ORIGIN)
    assert created.status_code == 200 and "shown only this once" in created.text
    secret = created.text.split('aria-label="The new key\'s secret">')[1].split("</pre>")[0]
    record = find_key(session, secret)
    assert record.creator_role == "engineer" and record.scopes == {"ingest", "read"}
    again = client.get("/settings").text
    assert secret not in again and secret[:11] in again
    as_json = client.get("/api/settings").json()
    key = next(k for k in as_json["keys"] if k["prefix"] == secret[:11])
    assert key["created_by"] == "eng@example.com" and key["revoked_at"] is None
    revoked = client.post(f"/settings/keys/{key['id']}/revoke", headers=ORIGIN, follow_redirects=False)
    assert revoked.status_code == 303
    assert find_key(session, secret) is None


def test_a_key_cannot_carry_more_than_its_creator(client, session, seeded):
    login(client, as_role(session, seeded, Role.ENGINEER, "eng@example.com"))
    refused = client.post("/settings/keys", data={"name": "x", "scopes": ["metrics"]}, headers=ORIGIN)
    assert refused.status_code == 400 and "may grant only: ingest, read" in refused.text


@pytest.mark.parametrize("role, path, data", [
    (Role.VIEWER, "/settings/keys", {"name": "x", "scopes": ["read"]}),
    (Role.AUDITOR, "/settings/keys", {"name": "x", "scopes": ["read"]}),
    (Role.AUDITOR, "/settings/prices", {"model": "gpt-4o", "input": "1", "output": "2"}),
    (Role.ENGINEER, "/settings/members", {"email": "z@example.com", "role": "admin"}),
    (Role.VIEWER, "/settings/members/role", {"email": "ada@example.com", "role": "viewer"}),
])
def test_each_action_needs_its_permission(client, session, seeded, role, path, data):
    login(client, as_role(session, seeded, role, f"{role}@example.com"))
    refused = client.post(path, data=data, headers=ORIGIN)
    assert refused.status_code == 403 and f"role '{role}'" in html.unescape(refused.text)


def test_viewer_sees_no_keys(client, session, seeded):
    login(client, as_role(session, seeded, Role.VIEWER, "v@example.com"))
    page = client.get("/settings").text
    assert "does not manage keys" in page and "Create key" not in page
    assert client.get("/api/settings").json()["keys"] is None


def test_cross_site_posts_are_refused(client, seeded):
    login(client, seeded)
    refused = client.post("/settings/keys", data={"name": "x", "scopes": ["read"]},
                          headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "not submitted from this site" in refused.text


def test_price_override_with_preview(client, seeded):
    login(client, seeded)
    preview = client.get("/settings/prices/preview", params={"model": "gpt-4o*"})
    assert preview.status_code == 200 and "models seen in this project" in preview.text
    bad = client.post("/settings/prices", data={"model": "gpt-4o", "input": "two", "output": "8"}, headers=ORIGIN)
    assert bad.status_code == 400 and "Input must be a number" in bad.text and 'value="two"' in bad.text
    added = client.post("/settings/prices", data={"model": "gpt-4o", "input": "2.5", "output": "10"},
                        headers=ORIGIN)
    assert added.status_code == 200 and "Price override added" in added.text
    prices = client.get("/api/settings").json()["prices"]
    assert [(p["model_pattern"], p["input_per_mtok"], p["output_per_mtok"]) for p in prices] == [("gpt-4o", "2.5", "10")]
    removed = client.post(f"/settings/prices/{prices[0]['id']}/remove", headers=ORIGIN)
    assert "Price override removed" in removed.text and client.get("/api/settings").json()["prices"] == []


def test_admin_manages_members(client, seeded):
    login(client, seeded)  # ada is the project's admin
    added = client.post("/settings/members", data={"email": "New@Example.com", "role": "auditor"}, headers=ORIGIN)
    assert added.status_code == 200 and "new@example.com was added" in added.text
    roles = {m["email"]: m["role"] for m in client.get("/api/settings").json()["members"]}
    assert roles == {"ada@example.com": "admin", "new@example.com": "auditor"}
    assert "role-changed" in client.post("/settings/members/role", data={"email": "new@example.com", "role": "viewer"},
                                         headers=ORIGIN, follow_redirects=False).headers["location"]
    last = client.post("/settings/members/role", data={"email": "ada@example.com", "role": "viewer"}, headers=ORIGIN)
    assert last.status_code == 400 and "last admin" in last.text
    client.post("/settings/members/remove", data={"email": "new@example.com"}, headers=ORIGIN)
    assert [m["email"] for m in client.get("/api/settings").json()["members"]] == ["ada@example.com"]

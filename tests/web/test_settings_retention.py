"""Settings, Retention: an admin sets the days and places or releases a legal hold (each audited
in the same transaction); everyone else reads it; the hold's reason is escaped."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import text

from core.permissions import Role
from tests.web.conftest import ORIGIN, login
from tests.web.test_settings import as_role


def audit(session):
    return session.execute(text("SELECT action, actor, details FROM audit_events "
                                "WHERE action LIKE 'retention.%' ORDER BY id")).all()


def test_admin_sets_retention_and_holds(client, session, seeded):
    login(client, seeded)
    page = client.get("/settings").text
    assert "180 days (server default)" in page and "730 days (server default)" in page and "Place legal hold" in page

    saved = client.post("/settings/retention", data={"days": "90", "rollup_days": ""}, headers=ORIGIN,
                        follow_redirects=False)
    assert saved.status_code == 303
    page = client.get(saved.headers["location"]).text
    assert "Retention changed" in page and "90 days" in page and "Articles 19 and 26(6)" in page
    as_json = client.get("/api/settings").json()["retention"]
    assert as_json["days"] == 90 and as_json["own_days"] and not as_json["own_rollup_days"]
    assert as_json["below_floor"] and as_json["span_cutoff"] is not None

    for bad in ({"days": "ninety"}, {"days": "0"}, {"days": "400", "rollup_days": "300"}, {"days": "１８０"}):
        refused = client.post("/settings/retention", data=bad, headers=ORIGIN)
        assert refused.status_code == 400 and "Retention not changed" in refused.text

    assert client.post("/settings/retention/hold", data={"reason": " "}, headers=ORIGIN).status_code == 400
    held = client.post("/settings/retention/hold", data={"reason": "<script>alert(1)</script> matter 7"},
                       headers=ORIGIN, follow_redirects=False)
    assert held.status_code == 303
    page = client.get("/settings").text
    assert "<script>alert(1)" not in page and html.escape("<script>alert(1)</script> matter 7") in page
    assert "Release legal hold" in page
    assert client.get("/api/settings").json()["retention"]["span_cutoff"] is None
    assert client.post("/settings/retention/release", headers=ORIGIN, follow_redirects=False).status_code == 303
    assert client.post("/settings/retention/release", headers=ORIGIN).status_code == 409

    events = audit(session)
    assert [e.action for e in events] == ["retention.set", "retention.hold", "retention.release"]
    assert all(e.actor == "user:ada@example.com" for e in events)
    assert events[0].details == {"days": 90, "rollup_days": None, "previous_days": None, "previous_rollup_days": None}
    assert events[2].details["reason"] == "<script>alert(1)</script> matter 7"


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.AUDITOR, Role.VIEWER])
def test_only_admins_change_retention(client, session, seeded, role):
    login(client, as_role(session, seeded, role, f"{role}@example.com"))
    page = client.get("/settings").text
    assert "Retention" in page and "Save retention" not in page and "Place legal hold" not in page
    for path, data in (("/settings/retention", {"days": "30"}), ("/settings/retention/hold", {"reason": "x"}),
                       ("/settings/retention/release", {})):
        refused = client.post(path, data=data, headers=ORIGIN)
        assert refused.status_code == 403 and f"role '{role}'" in html.unescape(refused.text)
    assert audit(session) == []


def test_the_hold_reason_is_for_admins_and_auditors(client, session, seeded):
    login(client, seeded)
    client.post("/settings/retention/hold", data={"reason": "matter 7"}, headers=ORIGIN)
    client.post("/logout", headers=ORIGIN)
    login(client, as_role(session, seeded, Role.VIEWER, "v@example.com"))
    retention = client.get("/api/settings").json()["retention"]
    assert retention["legal_hold"] and retention["hold_reason"] is None
    assert "matter 7" not in client.get("/settings").text


def test_cross_site_retention_change_is_refused(client, seeded):
    login(client, seeded)
    refused = client.post("/settings/retention/hold", data={"reason": "x"}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403

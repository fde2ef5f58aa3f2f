"""Alerts over HTTP: the JSON API (CRUD, secrets once then masked, audited, CSRF for sessions)
and Settings > Alerts (forms, send test notification, deliveries shown), plus the evaluator's
place in create_app's lifespan."""

from __future__ import annotations

import time

import html

import pytest
from sqlalchemy import select, text

from core.alert_messages import SIGNATURE_HEADER, verify
from core.permissions import Role
from db.models import AuditEvent
from tests.alerts.receivers import HttpReceiver
from tests.web.conftest import ORIGIN, PASSWORD, Seeded, login


def as_role(session, seeded: Seeded, role: Role, email: str) -> Seeded:
    from db.queries.auth import add_membership, create_user

    user = create_user(session, email, PASSWORD)
    add_membership(session, user.id, seeded.project.id, role)
    session.commit()
    return Seeded(seeded.project, seeded.trace, email, PASSWORD)


@pytest.fixture
def receiver():
    r = HttpReceiver()
    yield r
    r.close()


def actions(session) -> list[str]:
    session.expire_all()
    return [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id)) if e.action.startswith("alert")]


def test_api_crud_secret_once_masked_audited(client, session, seeded, receiver):
    login(client, as_role(session, seeded, Role.ENGINEER, "eng@example.com"))
    made = client.post("/api/alerts/channels", json={"name": "hook", "kind": "webhook",
                                                     "target": receiver.url("/hook?token=tok_hidden")}, headers=ORIGIN)
    assert made.status_code == 201, made.text
    channel = made.json()
    secret = channel["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    listed = client.get("/api/alerts").json()
    assert listed["channels"][0]["secret"] == "••••" + secret[-4:] and secret not in client.get("/api/alerts").text
    assert channel["target"].endswith("/hook?token=tok_hidden")  # shown whole once, to its creator
    assert listed["channels"][0]["target"] == receiver.url("/hook") + "?••••"
    assert "tok_hidden" not in client.get("/settings/alerts").text
    # At rest the secret is encrypted: a dump of the database does not hold it.
    stored = session.execute(text("SELECT secret, secret_hint FROM alert_channels")).one()
    assert stored.secret.startswith("fernet:") and secret not in stored.secret and secret[-4:] == stored.secret_hint[-4:]

    bad = client.post("/api/alerts/rules", json={"name": "r", "kind": "failure_rate", "threshold": 5}, headers=ORIGIN)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "threshold"]
    unknown_channel = client.post("/api/alerts/rules", json={"name": "r", "kind": "failed_runs", "threshold": 1,
                                                             "channel_ids": [999]}, headers=ORIGIN)
    assert unknown_channel.status_code == 422
    rule = client.post("/api/alerts/rules", json={
        "name": "support failing", "kind": "failure_rate", "params": {"agent": "support"}, "threshold": 0.1,
        "window_s": 1800, "renotify_s": 0, "channel_ids": [channel["id"]]}, headers=ORIGIN)
    assert rule.status_code == 201, rule.text
    rid = rule.json()["id"]
    clash = client.post("/api/alerts/rules", json={"name": "support failing", "kind": "failed_runs", "threshold": 1},
                        headers=ORIGIN)
    assert clash.status_code == 422 and clash.json()["detail"][0]["loc"] == ["body", "name"]
    updated = client.put(f"/api/alerts/rules/{rid}", json={
        "name": "support failing", "kind": "failure_rate", "params": {"agent": "support"}, "threshold": 0.2,
        "enabled": False, "channel_ids": [channel["id"]]}, headers=ORIGIN)
    assert updated.status_code == 200 and updated.json()["threshold"] == 0.2 and not updated.json()["enabled"]

    cross_site = client.delete(f"/api/alerts/rules/{rid}", headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert client.delete(f"/api/alerts/rules/{rid}", headers=ORIGIN).status_code == 204
    assert client.delete(f"/api/alerts/rules/{rid}", headers=ORIGIN).status_code == 404

    tested = client.post(f"/api/alerts/channels/{channel['id']}/test", headers=ORIGIN)
    assert tested.status_code == 200 and tested.json()["status"] == "sent"
    [got] = receiver.received
    assert got.json["event"] == "test" and verify(secret, got.body, got.headers[SIGNATURE_HEADER.lower()],
                                                   now=time.time())
    again = client.post(f"/api/alerts/channels/{channel['id']}/test", headers=ORIGIN)
    assert again.status_code == 429 and 1 <= int(again.headers["retry-after"]) <= 10
    assert "tested less than 10 s ago" in again.json()["detail"] and len(receiver.received) == 1
    assert client.delete(f"/api/alerts/channels/{channel['id']}", headers=ORIGIN).status_code == 204
    assert actions(session) == ["alert_channel.create", "alert_rule.create", "alert_rule.update",
                                "alert_rule.delete", "alert_channel.test", "alert_channel.delete"]


def test_viewer_reads_alerts_but_changes_nothing(client, session, seeded):
    login(client, as_role(session, seeded, Role.VIEWER, "viewer@example.com"))
    assert client.get("/api/alerts").status_code == 200
    refused = client.post("/api/alerts/rules", json={"name": "r", "kind": "failed_runs", "threshold": 1},
                          headers=ORIGIN)
    assert refused.status_code == 403
    page = client.get("/settings/alerts")
    assert page.status_code == 200 and "Add rule" not in page.text
    assert client.post("/settings/alerts/channels", data={"name": "x", "kind": "email", "target": "a@b.c"},
                       headers=ORIGIN, follow_redirects=False).status_code in (302, 303, 403)
    assert actions(session) == []


def test_settings_page_forms_and_test_button(client, session, seeded, receiver):
    login(client, as_role(session, seeded, Role.ENGINEER, "eng@example.com"))
    page = client.get("/settings/alerts")
    assert page.status_code == 200 and '</api/alerts>; rel="alternate"' in page.headers["link"]
    made = client.post("/settings/alerts/channels", data={"name": "<b>hook</b>", "kind": "webhook",
                                                          "target": receiver.url()}, headers=ORIGIN)
    assert made.status_code == 200 and "shown only this once" in made.text
    assert "<b>hook</b>" not in made.text and "&lt;b&gt;hook&lt;/b&gt;" in made.text  # escaped
    secret = html.unescape(made.text.split('aria-label="The new channel\'s secret">')[1].split("</pre>")[0])
    assert secret not in client.get("/settings/alerts").text
    channel_id = client.get("/api/alerts").json()["channels"][0]["id"]

    bad = client.post("/settings/alerts/rules", data={"name": "r", "kind": "cost", "threshold": "x"}, headers=ORIGIN)
    assert bad.status_code == 400 and "threshold must be a number" in bad.text
    added = client.post("/settings/alerts/rules", data={
        "name": "monthly budget", "kind": "cost", "threshold": "500", "period": "month", "agent": "",
        "step": "ignored: not a cost parameter", "renotify_min": "60", "channels": [str(channel_id)]},
        headers=ORIGIN, follow_redirects=False)
    assert added.status_code == 303, added.text
    [rule] = client.get("/api/alerts").json()["rules"]
    assert (rule["kind"], rule["params"], rule["renotify_s"], rule["channel_ids"]) == (
        "cost", {"period": "month"}, 3600, [channel_id])
    toggled = client.post(f"/settings/alerts/rules/{rule['id']}/toggle", headers=ORIGIN, follow_redirects=False)
    assert toggled.status_code == 303 and not client.get("/api/alerts").json()["rules"][0]["enabled"]

    receiver.down = True
    tested = client.post(f"/settings/alerts/channels/{channel_id}/test", headers=ORIGIN)
    assert tested.status_code == 200 and "failed — HTTP 503" in tested.text
    receiver.down = False
    too_soon = client.post(f"/settings/alerts/channels/{channel_id}/test", headers=ORIGIN)
    assert too_soon.status_code == 429 and "Test not sent" in too_soon.text
    deliveries = client.get("/api/alerts").json()["deliveries"]
    assert [(d["event"], d["status"], d["attempts"]) for d in deliveries] == [("test", "failed", 1)]
    assert "HTTP 503" in client.get("/settings/alerts").text

    assert client.post("/settings/alerts/rules", data={"name": "r", "kind": "failed_runs", "threshold": "1"},
                       headers={"Origin": "https://evil.example"}).status_code == 403


def test_the_evaluator_runs_with_the_app(settings, engine):
    from fastapi.testclient import TestClient

    from server.app import create_app

    app = create_app(settings, engine=engine, parts=("api", "web"))
    with TestClient(app):
        assert app.state.alert_job.running
    assert not app.state.alert_job.running
    collector_only = create_app(settings.model_copy(update={"alerts_interval_s": 0}), engine=engine, parts=("api",))
    with TestClient(collector_only):
        assert not hasattr(collector_only.state, "alert_job")

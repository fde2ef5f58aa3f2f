"""The Audit page, its JSON twin and exports: what admins and auditors do is visible to them
(and only to them), filters work, exports are recorded and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

from core.permissions import Role
from tests.web.conftest import ORIGIN, login
from tests.web.test_settings import as_role


def test_actions_appear_in_the_trail_with_the_head_hash(client, session, seeded):
    login(client, seeded)
    client.post("/settings/keys", data={"name": "=HYPERLINK(\"http://evil\")", "scopes": ["read"]}, headers=ORIGIN)
    client.get(f"/traces/{seeded.trace.hex}?span={seeded.trace.spans['llm'].hex()}")
    page = client.get("/audit")
    assert page.status_code == 200 and 'rel="alternate"' in page.headers["link"]
    trail = client.get("/api/audit").json()
    actions = [e["action"] for e in trail["events"]]
    assert actions[:2] == ["span.view", "key.create"] and trail["head_seq"] == len(trail["events"])
    assert trail["head_hash"] == trail["events"][0]["hash"]
    assert all(e["actor"] == "user:ada@example.com" and e["client_addr"] for e in trail["events"])
    only_keys = client.get("/api/audit", params={"action": "key."}).json()["events"]
    assert [e["action"] for e in only_keys] == ["key.create"]
    assert "key.create" in client.get("/audit", params={"action": "key."}).text


def test_exports_are_recorded_and_spreadsheet_safe(client, session, seeded):
    login(client, seeded)
    client.post("/settings/prices", data={"model": "=cmd|' /C calc'!A0", "input": "1", "output": "1"}, headers=ORIGIN)
    exported = client.get("/api/audit/export", params={"format": "csv"})
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    target = next(r["target"] for r in rows if r["action"] == "price.add")
    assert target == "'=cmd|' /C calc'!A0"  # never a formula
    lines = client.get("/api/audit/export", params={"format": "jsonl"}).text.splitlines()
    assert [json.loads(line)["action"] for line in lines][:2] == ["audit.export", "audit.export"]


def test_only_admins_and_auditors_read_the_trail(client, session, seeded):
    for role, allowed in ((Role.AUDITOR, True), (Role.ENGINEER, False), (Role.VIEWER, False)):
        client.cookies.clear()
        login(client, as_role(session, seeded, role, f"{role}@example.com"))
        assert (client.get("/api/audit").status_code == 200) is allowed
        assert (client.get("/audit").status_code == 200) is allowed
        assert ('href="/audit"' in client.get("/settings").text) is allowed


def test_a_bad_filter_says_so(client, seeded):
    login(client, seeded)
    page = client.get("/audit", params={"since": "yesterday"})
    assert page.status_code == 200 and "is not a date/time" in page.text


def test_export_streams_page_by_page(client, session, seeded, monkeypatch):
    """More events than one page: every one exported, newest first, without gaps, and the
    export itself is the newest event."""
    import api.audit
    from db.queries.audit import append

    login(client, seeded)
    monkeypatch.setattr(api.audit, "PAGE", 3)
    for i in range(10):
        append(session, project_id=seeded.project.id, actor="user:ada@example.com", action="price.add",
               target=f"-1+{i}" if i % 2 else f"model-{i}")
    session.commit()
    lines = [json.loads(line) for line in client.get("/api/audit/export", params={"format": "jsonl"}).text.splitlines()]
    seqs = [e["seq"] for e in lines]
    assert seqs == list(range(seqs[0], 0, -1)) and len(seqs) >= 11
    assert lines[0]["action"] == "audit.export"
    rows = list(csv.DictReader(io.StringIO(client.get("/api/audit/export", params={"format": "csv"}).text)))
    assert len(rows) == len(lines) + 1
    assert {r["target"] for r in rows if r["action"] == "price.add"} >= {"'-1+1", "model-0"}

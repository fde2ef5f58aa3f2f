"""Reports built from seeded runs, in every format, sealed, verified, and caught when altered."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
from datetime import timedelta
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import select, text

from core.masking import MASK
from db.models import AuditEvent
from reports.service import ReportError, create
from server import cli_reports
from tests.api.seed import BASE_TIME, XSS, seed_project, seed_simple_traces


def _pdf_attachments(body: bytes, tmp_path) -> str | None:
    if shutil.which("pdfdetach") is None:
        return None
    path = tmp_path / "r.pdf"
    path.write_bytes(body)
    return subprocess.run(["pdfdetach", "-list", str(path)], capture_output=True, text=True, check=True).stdout


def _create(session, project, **kw):
    """create() into memory; the answer carries the rendered bytes as `.body`."""
    defaults = dict(project_id=project.id, project_slug=project.slug, actor="user:auditor@example.com",
                    sees_content=True, settings=SimpleNamespace(report_signing_key=None))
    out = io.BytesIO()
    created = create(session, out=out, **{**defaults, **kw})
    assert created.size == len(out.getvalue())
    return SimpleNamespace(**vars(created), body=out.getvalue(), seal_bytes=created.seal_bytes)


@pytest.mark.parametrize("fmt", ["json", "csv", "html", "pdf"])
def test_incident_report_in_every_format(session, seeded, fmt, tmp_path):
    project, trace = seeded
    created = _create(session, project, kind="incident", trace_id=trace.trace_id, fmt=fmt)
    session.commit()
    body = created.body
    assert created.report.manifest.count == 8  # every span of the run
    if fmt == "json":
        data = json.loads(body)
        assert data["manifest"]["merkle_root"] == created.report.manifest.root
        assert data["tables"]["routing"]["rows"][0]["chosen"] == "gpt-4o"
        assert {r["error class"] for r in data["tables"]["root_causes"]["rows"]} == {"timeout"}
        assert data["tables"]["root_causes"]["rows"][0]["recovered"] == "yes"
    elif fmt == "csv":
        assert b"routing,route model,\"gpt-4o, claude-sonnet-4\",gpt-4o,lowest latency" in body
    elif fmt == "html":
        assert XSS.encode() not in body and b"&lt;script&gt;" in body  # autoescaped
        assert b"Page \" counter(page)" in body
    else:
        assert body.startswith(b"%PDF")
        attachments = _pdf_attachments(body, tmp_path)
        if attachments is not None:  # pdfdetach (poppler-utils) present
            assert "manifest.json" in attachments and "manifest.bin" in attachments
        from reports.seal import pdf_attachment_json

        embedded = pdf_attachment_json(body)  # the packed entries, read back
        assert [e.digest for e in embedded["spans"]] == [e.digest for e in created.report.manifest.entries]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "report.create")).one()
    assert event.target == f"incident {trace.hex}" and event.details["format"] == fmt
    assert event.details["merkle_root"] == created.report.manifest.root


def test_period_report(session, seeded):
    project, trace = seeded
    created = _create(session, project, kind="period", fmt="json", since=BASE_TIME - timedelta(hours=1),
                      until=BASE_TIME + timedelta(days=1))
    data = json.loads(created.body)
    assert data["facts"]["Runs"] == "6"
    assert data["tables"]["periods_of_use"]["total"] == 6
    assert data["retention"].startswith("spans 180 days, rollups 730 days; spans before ")
    assert len(data["manifest"]["spans"]) == 8 + 5
    assert data["audit_trail_head"]["seq"] == 0


def test_viewer_incident_report_masks_content(session, seeded):
    project, trace = seeded
    created = _create(session, project, kind="incident", trace_id=trace.trace_id, fmt="json",
                      sees_content=False, include_content=True, actor="user:viewer@example.com")
    text_ = created.body.decode()
    assert "Where is my order" not in text_ and "shipped" not in text_
    assert MASK in text_ and "masked" in json.loads(text_)["content"]
    full = _create(session, project, kind="incident", trace_id=trace.trace_id, fmt="json", include_content=True)
    assert "Where is my order" in full.body.decode()
    omitted = _create(session, project, kind="incident", trace_id=trace.trace_id, fmt="json")
    assert "Where is my order" not in omitted.body.decode()


def test_unknown_run(session, seeded):
    project, _ = seeded
    with pytest.raises(ReportError, match="no run"):
        _create(session, project, kind="incident", trace_id=b"\x00" * 16, fmt="json")


def _cli(session, settings, *argv) -> int:
    parser = argparse.ArgumentParser()
    cli_reports.add_parsers(parser.add_subparsers(dest="command"))
    return cli_reports.run(session, settings, parser.parse_args(["reports", *argv]))


@pytest.mark.parametrize("fmt", ["pdf", "json", "html", "csv"])
def test_verify_fresh_then_altered_bytes_then_altered_span(session, seeded, tmp_path, capsys, fmt):
    project, trace = seeded
    settings = SimpleNamespace(report_signing_key=None, init_project="acme")
    out = tmp_path / f"r.{fmt}"
    assert _cli(session, settings, "create", "--kind", "incident", "--trace", trace.hex, "--format", fmt,
                "-o", str(out)) == 0
    session.commit()
    assert _cli(session, settings, "verify", str(out)) == 0
    assert "VERIFIED" in capsys.readouterr().out

    original = out.read_bytes()
    middle = len(original) // 2
    out.write_bytes(original[:middle] + bytes([original[middle] ^ 1]) + original[middle + 1:])
    assert _cli(session, settings, "verify", str(out)) == 3
    assert "the report was altered" in capsys.readouterr().out
    out.write_bytes(original)

    session.execute(text("UPDATE spans SET status_message = 'nothing happened' WHERE span_id = :s"),
                    {"s": trace.spans["llm"]})
    session.commit()
    assert _cli(session, settings, "verify", str(out)) == 3
    printed = capsys.readouterr().out
    assert "1 changed, 0 missing of 8" in printed and trace.spans["llm"].hex() in printed

    # Without its seal the report's own manifest (JSON key, PDF attachment, HTML script element, CSV
    # rows) still checks the records.
    (tmp_path / f"r.{fmt}.sig.json").unlink()
    assert _cli(session, settings, "verify", str(out)) == 3
    printed = capsys.readouterr().out
    assert "no seal file" in printed and "1 changed, 0 missing of 8" in printed


def test_signed_report_verifies_with_its_public_key_only(session, seeded, tmp_path, capsys):
    project, trace = seeded
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pem = tmp_path / "signing.pem"
    pem.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    pub, wrong = tmp_path / "pub.pem", tmp_path / "other.pem"
    pub.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    wrong.write_bytes(other.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    settings = SimpleNamespace(report_signing_key=str(pem), init_project="acme")
    out = tmp_path / "r.html"
    assert _cli(session, settings, "create", "--kind", "period", "--since", "2026-11-20T00:00",
                "--until", "2026-11-21T00:00", "--format", "html", "-o", str(out)) == 0
    session.commit()
    assert _cli(session, settings, "verify", "--public-key", str(pub), str(out)) == 0
    assert "signature: Ed25519, valid" in capsys.readouterr().out
    assert _cli(session, settings, "verify", "--public-key", str(wrong), str(out)) == 3
    # A forged seal (the digest replaced to match altered bytes) fails the signature.
    seal_file = tmp_path / "r.html.sig.json"
    seal = json.loads(seal_file.read_text())
    seal["file_sha256"] = "0" * 64
    seal_file.write_text(json.dumps(seal))
    capsys.readouterr()
    assert _cli(session, settings, "verify", "--public-key", str(pub), str(out)) == 3
    assert "does not match the given public key" in capsys.readouterr().out


def test_period_report_from_ingested_runs(database_url, sessionmaker):
    from tests.reports.samples import DAYS, START, attribute_all, ingest_demo_runs

    with sessionmaker.begin() as session:
        project = seed_project(session, "demo")
    runs = ingest_demo_runs(database_url, project.id)
    attribute_all(sessionmaker)
    with sessionmaker.begin() as session:
        created = _create(session, project, kind="period", fmt="json", since=START,
                          until=START + timedelta(days=DAYS))
    data = json.loads(created.body)
    t = data["tables"]
    assert data["facts"]["Runs"] == str(runs) == "90"
    assert {(r["provider"], r["requested model"]) for r in t["models"]["rows"]} == {
        ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5")}
    assert [(r["previously served"], r["now served"]) for r in t["model_changes"]["rows"]] == [
        ("gpt-4o-2024-08-06", "gpt-4o-2026-11-17")]
    classes = {r["error class"]: r for r in t["failures_by_class"]["rows"]}
    assert set(classes) == {"rate_limited", "guardrail_blocked"}
    assert sum(r["blocks"] for r in t["guardrail_blocks"]["rows"]) == classes["guardrail_blocked"]["root causes"]
    retries = sum(r["retries"] for r in t["models"]["rows"])
    assert retries == classes["rate_limited"]["root causes"] > 0
    assert data["manifest"]["count"] == int(data["facts"]["Spans"])
    # Every failure here was recovered (no run failed), and the share is still there: of the
    # window's root causes, not of its failed runs.
    assert all(r["failed runs"] == 0 for r in classes.values())
    causes = sum(r["root causes"] for r in classes.values())
    shares = t["failure_concentration"]["rows"]
    assert shares and all(r["share of root causes"] == round(r["root causes"] / causes, 3) for r in shares)


def test_digest_covers_every_field_and_not_the_session(session, seeded):
    """The leaf is computed by PostgreSQL: equal rows give equal digests whatever the session's
    settings, and a change to any covered field gives another."""
    from db.queries.reports import DIGEST_FIELDS, span_digests_by_key

    project, trace = seeded
    key = (trace.trace_id, trace.spans["llm"])
    before = span_digests_by_key(session, project.id, [key])
    assert len(before) == 1
    session.execute(text("SET LOCAL TimeZone = 'Asia/Kolkata'"))
    session.execute(text("SET LOCAL bytea_output = 'escape'"))
    assert span_digests_by_key(session, project.id, [key]) == before
    changes = {"name": "'x'", "start_time": "start_time + interval '1 microsecond'", "cost_usd": "0.5",
               "attributes": "attributes || '{\"k\": 1}'", "input": "coalesce(input, '') || '!'", "events": "'[]'",
               "ingested_at": "ingested_at + interval '1 second'", "parent_span_id": "'\\x01'::bytea"}
    for field, value in changes.items():
        assert field in DIGEST_FIELDS
        session.execute(text("SAVEPOINT s"))
        session.execute(text(f"UPDATE spans SET {field} = {value} WHERE project_id = :p AND trace_id = :t "
                             "AND span_id = :s"), {"p": project.id, "t": key[0], "s": key[1]})
        assert span_digests_by_key(session, project.id, [key]) != before, field
        session.execute(text("ROLLBACK TO SAVEPOINT s"))
    assert span_digests_by_key(session, project.id, [key]) == before


def test_period_manifest_streams_through_a_spool(session, seeded, monkeypatch, tmp_path, capsys):
    """More entries than one chunk of each writer: the spooled manifest renders and verifies in
    every format, and the spool file is gone afterwards."""
    import reports.render as render
    import reports.seal as seal
    import reports.spool as spool_module

    project, trace = seeded
    monkeypatch.setattr(seal, "CHECK_BATCH", 3)
    paths = []
    real = spool_module.EntrySpool.__init__

    def remember(self):
        real(self)
        paths.append(self.path)

    monkeypatch.setattr(spool_module.EntrySpool, "__init__", remember)
    chunked = render._entries_json
    monkeypatch.setattr(render, "_entries_json", lambda entries, write, chunk=4: chunked(entries, write, chunk))
    settings = SimpleNamespace(report_signing_key=None, init_project="acme")
    for fmt in ("json", "csv", "html", "pdf"):
        out = tmp_path / f"p.{fmt}"
        assert _cli(session, settings, "create", "--kind", "period", "--since", "2026-11-19T00:00",
                    "--until", "2026-11-22T00:00", "--format", fmt, "-o", str(out)) == 0
        assert "13 span records" in capsys.readouterr().out
        session.commit()
        assert _cli(session, settings, "verify", str(out)) == 0, fmt
        assert "all 13 still stored unchanged" in capsys.readouterr().out
    assert paths and not any(os.path.exists(p) for p in paths)


def test_a_pdf_manifest_beyond_pypdfs_default_limits_is_read(session, seeded, tmp_path, capsys):
    """pypdf refuses to inflate streams past 75 MB by default, less than a month of a busy
    project's manifest: verify raises the limit for the attachment (here the default is
    lowered instead, to stay small)."""
    from pypdf import apply_configuration

    project, trace = seeded
    settings = SimpleNamespace(report_signing_key=None, init_project="acme")
    out = tmp_path / "p.pdf"
    assert _cli(session, settings, "create", "--kind", "period", "--since", "2026-11-19T00:00",
                "--until", "2026-11-22T00:00", "--format", "pdf", "-o", str(out)) == 0
    session.commit()
    with apply_configuration(zlib_maximum_output_length=500, maximum_declared_stream_length=500):
        assert _cli(session, settings, "verify", str(out)) == 0
    assert "all 13 still stored unchanged" in capsys.readouterr().out


def test_a_version_2_report_still_verifies(session, seeded, tmp_path, capsys):
    """Reports made before the binary leaf (algorithm v2: the record's text form, entries as
    JSON) name their algorithm; verify recomputes that form, and still catches a changed span."""
    from core.report_manifest import ALGORITHM_V2, build_manifest
    from db.queries.reports import span_digests_by_key

    project, trace = seeded
    settings = SimpleNamespace(report_signing_key=None, init_project="acme")
    out = tmp_path / "old.json"
    assert _cli(session, settings, "create", "--kind", "incident", "--trace", trace.hex, "--format", "json",
                "-o", str(out)) == 0
    session.commit()
    data = json.loads(out.read_bytes())
    keys = [(bytes.fromhex(t), bytes.fromhex(s)) for t, s, _ in data["manifest"]["spans"]]
    v2 = span_digests_by_key(session, project.id, keys, ALGORITHM_V2)
    assert set(v2.values()).isdisjoint(d for _, _, d in data["manifest"]["spans"])  # another canonical form
    old = build_manifest([(t, s, d) for (t, s), d in v2.items()], algorithm=ALGORITHM_V2)
    data["manifest"] = {**data["manifest"], **old.to_dict()}
    out.write_text(json.dumps(data))
    (tmp_path / "old.json.sig.json").unlink()  # its seal bound the v3 bytes
    capsys.readouterr()
    assert _cli(session, settings, "verify", str(out)) == 0
    assert f"over {old.count} records" in capsys.readouterr().out
    session.execute(text("UPDATE spans SET status_message = 'nothing happened' WHERE span_id = :s"),
                    {"s": trace.spans["llm"]})
    session.commit()
    assert _cli(session, settings, "verify", str(out)) == 3
    assert "1 changed, 0 missing of 8" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["pdf", "json", "csv", "html"])
def test_period_verify_reads_the_window_back_in_order(session, seeded, tmp_path, capsys, monkeypatch, fmt):
    """A period report is checked beside its window's records read back in manifest order; a
    changed or deleted record fails, named; a record whose run left the window is looked up by
    key (still unchanged); a record stored in the window afterwards is a note, not a failure."""
    project, trace = seeded
    settings = SimpleNamespace(report_signing_key=None, init_project="acme")
    out = tmp_path / f"p.{fmt}"
    assert _cli(session, settings, "create", "--kind", "period", "--since", "2026-11-19T00:00",
                "--until", "2026-11-22T00:00", "--format", fmt, "-o", str(out)) == 0
    session.commit()
    capsys.readouterr()
    import reports.service as service

    windows, keys = [], []
    read_window, by_key = service.window_packed_entries, service.span_digests_by_key
    monkeypatch.setattr(service, "window_packed_entries", lambda *a: windows.append(a[2:4]) or read_window(*a))
    monkeypatch.setattr(service, "span_digests_by_key", lambda s, p, k, a: keys.extend(k) or by_key(s, p, k, a))
    assert _cli(session, settings, "verify", str(out)) == 0
    assert "all 13 still stored unchanged" in capsys.readouterr().out
    assert [(a.isoformat(), b.isoformat()) for a, b in windows] == [
        ("2026-11-19T00:00:00+00:00", "2026-11-22T00:00:00+00:00")] and keys == []

    # The agent run's start moves past the window: its spans are no longer read with the window.
    session.execute(text("UPDATE traces SET start_time = start_time + interval '30 days' WHERE trace_id = :t"),
                    {"t": trace.trace_id})
    extra = seed_simple_traces(session, project.id, 1, base=BASE_TIME + timedelta(hours=3))
    session.commit()
    assert _cli(session, settings, "verify", str(out)) == 0
    printed = capsys.readouterr().out
    assert "all 13 still stored unchanged" in printed and "NOTE     " in printed and "not in its manifest" in printed
    assert len(keys) == 8  # the agent run's, looked up by key

    session.execute(text("UPDATE spans SET status_message = 'nothing happened' WHERE span_id = :s"),
                    {"s": trace.spans["llm"]})
    session.execute(text("DELETE FROM spans WHERE span_id = :s"), {"s": trace.spans["tool"]})
    first = session.execute(text("SELECT s.span_id FROM spans s JOIN traces t USING (project_id, trace_id) "
                                 "WHERE t.project_id = :p AND t.trace_id <> ALL(:not) AND t.start_time < '2026-11-22' "
                                 "ORDER BY s.trace_id, s.span_id LIMIT 1"),
                            {"p": project.id, "not": [trace.trace_id, *extra]}).scalar_one()
    session.execute(text("UPDATE spans SET name = 'renamed' WHERE span_id = :s"), {"s": first})
    session.commit()
    assert _cli(session, settings, "verify", str(out)) == 3
    printed = capsys.readouterr().out
    assert "2 changed, 1 missing of 13" in printed
    for span_id in (trace.spans["llm"], trace.spans["tool"], first):
        assert span_id.hex() in printed

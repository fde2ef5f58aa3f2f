"""A JSON report's manifest streamed into a spool (reports/json_manifest.py), and `reports verify`
of a JSON report taking that path, not a parse of the whole file."""

from __future__ import annotations

import io
import json

import ijson
import pytest

from core.report_manifest import Entry, pack
from reports.json_manifest import Unpackable, read_json_manifest
from reports.spool import EntrySpool

E1 = Entry("0" * 31 + "1", "a" * 16, "b" * 64)
E2 = Entry("0" * 31 + "2", "c" * 16, "d" * 64)
HEADER = {"algorithm": "sha256-leaf00-node01-pg-record-send-v3", "count": 2, "merkle_root": "f" * 64}
REPORT = {"project": "acme", "kind": "period", "window": {"since": "2026-11-19T00:00:00+00:00",
                                                          "until": "2026-11-22T00:00:00+00:00"},
          "tables": {"x": {"rows": [{"a": 1.5, "b": None}]}}, "manifest": {**HEADER, "spans": [list(E1), list(E2)]}}


def _read(doc) -> tuple[dict, bytes]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with EntrySpool() as spool:
        data = read_json_manifest(io.BytesIO(body), spool)
        assert data["spans"] is spool
        with spool.open() as packed:
            return {k: v for k, v in data.items() if k != "spans"}, packed.read()


@pytest.mark.parametrize("body", [
    json.dumps(REPORT).encode(),
    json.dumps(REPORT, indent=1).encode(),  # the renderer's layout
    json.dumps(REPORT, indent=None, separators=(",", ":")).encode(),  # re-indented by hand: read the same
])
def test_the_header_and_the_packed_entries(body):
    header, packed = _read(body)
    assert header == {"project": "acme", "kind": "period", "window": REPORT["window"], **HEADER}
    assert packed == pack([E1, E2])


@pytest.mark.parametrize("spans, error", [
    ([["zz" * 16, E1.span_id, E1.digest]], Unpackable),  # not hex
    ([[E1.trace_id, E1.span_id]], Unpackable),  # two fields
    ([[E1.trace_id + "00", E1.span_id, E1.digest]], Unpackable),  # an id of another size
    ([[E1.trace_id, E1.span_id, 7]], Unpackable),  # not a string
    (["x"], Unpackable),  # not a list
])
def test_an_entry_the_packed_form_cannot_hold(spans, error):
    with pytest.raises(error):
        _read({**REPORT, "manifest": {**HEADER, "spans": spans}})


@pytest.mark.parametrize("body, error", [
    (b'{"manifest": {"algorithm": "a", "spans": [', ijson.JSONError),  # cut short
    (b"not json", ijson.JSONError),
    (json.dumps({"project": "acme"}).encode(), KeyError),  # no manifest
])
def test_not_a_report(body, error):
    with pytest.raises(error):
        _read(body)


def test_verify_streams_a_json_report(session, seeded, tmp_path, capsys, monkeypatch):
    """verify never parses a JSON report whole (an entry it cannot pack would make it)."""
    import reports.seal as seal
    import reports.service as service
    from tests.reports.test_reports import _cli

    project, trace = seeded
    settings = type("S", (), {"report_signing_key": None, "init_project": "acme"})()
    out = tmp_path / "p.json"
    assert _cli(session, settings, "create", "--kind", "period", "--since", "2026-11-19T00:00",
                "--until", "2026-11-22T00:00", "--format", "json", "-o", str(out)) == 0
    session.commit()
    capsys.readouterr()
    whole = seal.embedded_data
    monkeypatch.setattr(service, "embedded_data", lambda body, fmt: pytest.fail("parsed whole") if fmt == "json"
                        else whole(body, fmt))
    assert _cli(session, settings, "verify", str(out)) == 0
    assert "all 13 still stored unchanged" in capsys.readouterr().out

    # An entry edited into something that is not hex: the whole-file parse gives the old verdict.
    monkeypatch.setattr(service, "embedded_data", whole)
    data = json.loads(out.read_bytes())
    data["manifest"]["spans"][0][2] = "not a digest"
    out.write_text(json.dumps(data))
    assert _cli(session, settings, "verify", str(out)) == 3
    printed = capsys.readouterr().out
    assert "the report was altered" in printed and "manifest edited" in printed

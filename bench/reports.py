"""Time and peak memory to generate (and verify) a period report, against a plain COUNT/SUM over
the same span rows measured in the same run.

    .venv/bin/python bench/reports.py [--traces 100000] [--formats pdf,json] [--days 3,30]

Loads ~10 spans per trace spread over 30 days (bench/queries.py's data: >= 1M spans for 100k
traces, through the real write path, failing traces attributed). Then, per window (the last N
days) and format, a fresh child process generates the period report with reports.service.create
into a file (what `causeline reports create --kind period` does) and another verifies it
(`causeline reports verify`): peak RSS is the child's own, so it is the report's, not the
loader's. The baselines, in the same child before the report: `SELECT count(*), sum(cost_usd)` over the
spans of the runs in the window, and the same rows each turned into text once (`s::text`), the
floor of anything that digests every record. Target: the PDF for 30 days of 1M spans under 10 s,
memory not growing with the window. Uses DATABASE_URL's server or an embedded PostgreSQL.
Last line (JSON): per window and format, seconds, ratio to the baseline, peak RSS (MiB), size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_COVERED = ("FROM spans s WHERE s.project_id = %s AND s.trace_id IN "
            "(SELECT trace_id FROM traces WHERE project_id = %s AND start_time >= %s AND start_time < %s)")
BASELINE = "SELECT count(*), sum(s.cost_usd) " + _COVERED
# A second floor: every covered record turned into text once, which a digest of each needs.
READ_ALL = "SELECT count(*), sum(length(s::text)) " + _COVERED


def _rss_mib() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the
    parent across fork and exec, and the parent holds the loaded data."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """This process's CPU time (all threads): on a shared machine, steadier than the wall clock."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(url: str, since: datetime, until: datetime, fmt: str, out: Path, verify: bool,
          computed: bool = False) -> None:
    """One generation (or verification) in this fresh process; prints one JSON line. computed:
    digest every record at report time, as before schema 0023 (spans.digest), for an A/B."""
    import psycopg
    from sqlalchemy.orm import Session

    if computed:
        import reports.build as build

        stored_path = build.window_packed_entries
        build.window_packed_entries = lambda *a, stored=False, **k: stored_path(*a, stored=False, **k)

    from db.engine import libpq_url, make_engine
    from db.queries.auth import get_project_by_slug
    from reports.service import create, verify_file

    engine = make_engine(url, pool_size=2)  # the report reads on two connections beside the session
    with psycopg.connect(libpq_url(url)) as conn, Session(engine) as session:
        project = get_project_by_slug(session, "bench")
        started = time.perf_counter()
        count, _ = conn.execute(BASELINE, (project.id, project.id, since, until)).fetchone()
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(READ_ALL, (project.id, project.id, since, until)).fetchone()
        read_all = time.perf_counter() - started
        session.rollback()
        rss_before = _rss_mib()
        cpu_before = _cpu_s()
        started = time.perf_counter()
        if verify:
            verdict = verify_file(session, out, project_id_of=lambda slug: project.id if slug == "bench" else None)
            assert verdict.ok, verdict.lines
            result = {"verified": True}
        else:
            with out.open("wb") as file:
                created = create(session, out=file, project_id=project.id, project_slug="bench", actor="cli:bench",
                                 sees_content=True, kind="period", fmt=fmt, since=since, until=until,
                                 settings=SimpleNamespace(report_signing_key=None))
            session.commit()
            out.with_name(out.name + ".sig.json").write_bytes(created.seal_bytes)
            assert created.report.manifest.count == count, (created.report.manifest.count, count)
            result = {"bytes": created.size}
        seconds = time.perf_counter() - started
        cpu = _cpu_s() - cpu_before
    engine.dispose()
    print(json.dumps({"spans": count, "seconds": round(seconds, 2), "baseline_s": round(baseline, 3),
                      "ratio": round(seconds / baseline, 1), "read_all_s": round(read_all, 2),
                      "ratio_read_all": round(seconds / read_all, 1), "rss_before_mib": round(rss_before),
                      "peak_rss_mib": round(_rss_mib()), "cpu_s": round(cpu, 2), **result}), flush=True)


def _run_child(url: str, since: datetime, until: datetime, fmt: str, out: Path, verify: bool) -> dict:
    argv = [sys.executable, __file__, "--child", url, "--since", since.isoformat(), "--until", until.isoformat(),
            "--formats", fmt, "--out", str(out), *(["--verify"] if verify else [])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--formats", default="pdf,json")
    parser.add_argument("--days", default="3,30", help="windows to report on, in days back from the end")
    parser.add_argument("--child")
    parser.add_argument("--since")
    parser.add_argument("--until")
    parser.add_argument("--out")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--computed-digests", action="store_true",
                        help="with --child: digest the records at report time (before schema 0023), for an A/B")
    args = parser.parse_args()
    if args.child:
        child(args.child, datetime.fromisoformat(args.since), datetime.fromisoformat(args.until), args.formats,
              Path(args.out), args.verify, args.computed_digests)
        return

    import tempfile

    import psycopg

    from bench.benchdb import bench_database
    from bench.queries import attribute_failing, load
    from db.engine import libpq_url, make_engine, make_sessionmaker
    from db.queries.auth import create_project

    results: dict = {}
    with bench_database("causeline_bench_reports") as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url, pool_size=1)
        with make_sessionmaker(engine).begin() as session:
            project_id = create_project(session, "bench").id
        engine.dispose()
        until = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        started = time.perf_counter()
        spans, _ = load(url, project_id, args.traces, until)
        loaded = time.perf_counter() - started
        attribute_failing(url)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"loaded {spans:,} spans in {loaded:.0f} s", flush=True)
        for days in (int(d) for d in args.days.split(",")):
            since = until - timedelta(days=days)
            for fmt in args.formats.split(","):
                out = Path(tmp) / f"period-{days}d.{fmt}"
                made = _run_child(url, since, until, fmt, out, verify=False)
                checked = _run_child(url, since, until, fmt, out, verify=True)
                results[f"{days}d.{fmt}"] = {"create": made, "verify": checked}
                print(f"{days:3d} days {fmt:4s} {made['spans']:>9,} spans: create {made['seconds']:6.2f} s "
                      f"(ratio {made['ratio']:6.1f} to count/sum {made['baseline_s']:.3f} s, "
                      f"{made['ratio_read_all']:5.1f} to reading every record's text {made['read_all_s']:.2f} s), "
                      f"peak RSS {made['peak_rss_mib']} MiB (after imports {made['rss_before_mib']}), "
                      f"{made['bytes'] / 2**20:.1f} MiB, CPU here {made['cpu_s']:.1f} s; "
                      f"verify {checked['seconds']:6.2f} s, peak RSS {checked['peak_rss_mib']} MiB, "
                      f"CPU here {checked['cpu_s']:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
                out.unlink()
    print(json.dumps({"spans": spans, **results}))


if __name__ == "__main__":
    main()

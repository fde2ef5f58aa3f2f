"""Causeline against Arize Phoenix on one load and one PostgreSQL server: the DURABLE ingest rate.

    .venv/bin/python bench/vs_phoenix.py [--traces 2000] [--clients 4] \
        [--phoenix-python /tmp/phoenix-venv/bin/python]

The load: `--traces` agent runs of bench/ingest.py's generator (root agent, a routing decision, 3-6
model calls with their prompt, 2-4 tool calls) with the model calls' answers and the tools' results
added (~9.5 spans of ~1.5 KB of protobuf each), one OTLP/HTTP
protobuf request per trace (as an agent's exporter sends it when the run ends), from `--clients`
concurrent clients; the payloads are encoded before any clock starts, and both servers get the same
bytes in the same order.

Both servers run as separate processes, one after the other, against the same PostgreSQL server
(DATABASE_URL's, or an embedded one in a temporary directory), each in a database of its own that is
created for the run and dropped after it:

* Causeline: `causeline serve --only collector` with every ingest setting at its default (as
  bench/ingest.py starts it);
* Phoenix: `python -m phoenix.server.main serve` of the `arize-phoenix` installed in another
  virtualenv (`--phoenix-python`; not a dependency of this project: `python3 -m venv
  /tmp/phoenix-venv && /tmp/phoenix-venv/bin/pip install arize-phoenix`), with
  PHOENIX_SQL_DATABASE_URL pointing at its database. Skipped, with the reason printed, when that
  Python or its `phoenix` package is absent.

What is measured is the time from the first request until every span is a row in the server's
`spans` table (counted every 50 ms over a separate connection), not until the requests are
acknowledged: Causeline acknowledges after commit, while Phoenix queues spans in memory and inserts
them in batches later, so its acknowledgement says little about what a crash would keep. Both times
are printed, with the load average beside them (the machine may be shared). Last line JSON:
{"spans", "causeline_spans_per_s", "phoenix_spans_per_s", "ratio", "causeline_ack_spans_per_s",
"phoenix_ack_spans_per_s", "load"}; `ratio` is Causeline's durable rate over Phoenix's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.benchdb import admin, bench_database  # noqa: E402
from bench.ingest import agent_trace, free_port, send_all, start_collector, wait_healthy  # noqa: E402
from db.engine import libpq_url  # noqa: E402
from tests import otlp_payloads as P  # noqa: E402

PHOENIX_DATABASE = "phoenix_vs_causeline"
POLL_S = 0.05


WORDS = ["your", "order", "refund", "was", "shipped", "late", "item", "broken", "we", "will", "help", "today"]


def with_outputs(rng: random.Random, trace: list) -> list:
    """bench/ingest.py's trace, plus what its model and tool calls returned (the model's answer, the
    tool's result), which brings a span to ~1.5 KB of protobuf on average, as in the comparison."""
    for span in trace:
        if span.name.startswith("chat "):
            answer = " ".join(rng.choice(WORDS) for _ in range(250))
            span.attributes.extend(P.attrs({"gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}])}))
        elif span.name.startswith("execute_tool "):
            span.attributes.extend(P.attrs({"gen_ai.tool.call.result": json.dumps(
                {"status": "ok", "notes": " ".join(rng.choice(WORDS) for _ in range(125))})}))
    return trace


def build_payloads(traces: int, seed: int = 42) -> tuple[list[bytes], int]:
    """One protobuf request per trace; returns the payloads and the span count."""
    rng = random.Random(seed)
    payloads, spans = [], 0
    for trace_no in range(1, traces + 1):
        trace = with_outputs(rng, agent_trace(rng, trace_no))
        spans += len(trace)
        payloads.append(P.request(trace, service="bench-agent").SerializeToString())
    return payloads, spans


@dataclass
class Run:
    ack_s: float
    durable_s: float | None  # None: not every span stored within the timeout
    stored: int


def _count(url: str) -> int:
    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM spans").fetchone()[0]


def measure(url: str, base: str, payloads: list[bytes], total: int, clients: int, timeout: float) -> Run:
    """Sends every payload to `base`, and counts the rows of `spans` in `url` until all are there."""
    stored_at: list[float] = []
    stop = threading.Event()
    started = time.perf_counter()

    def poll() -> None:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            while not stop.is_set():
                if conn.execute("SELECT count(*) FROM spans").fetchone()[0] >= total:
                    stored_at.append(time.perf_counter() - started)
                    return
                stop.wait(POLL_S)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    ack_s, refusals = send_all(base, payloads, clients)
    if refusals:
        print(f"  refused requests (sent again): {refusals}", flush=True)
    poller.join(max(0.0, timeout - (time.perf_counter() - started)))
    stop.set()
    poller.join()
    return Run(ack_s, stored_at[0] if stored_at else None, _count(url))


def phoenix_missing(python: str) -> str | None:
    if not Path(python).is_file():
        return f"no Phoenix Python at {python} (install: python3 -m venv /tmp/phoenix-venv && " \
               f"/tmp/phoenix-venv/bin/pip install arize-phoenix)"
    found = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('arize-phoenix'))"],
                           capture_output=True, text=True, timeout=120)
    if found.returncode != 0:
        return f"arize-phoenix is not installed for {python}"
    return None


def phoenix_version(python: str) -> str:
    return subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('arize-phoenix'))"],
                          capture_output=True, text=True, timeout=120).stdout.strip()


def start_phoenix(python: str, url: str, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    database_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    env = {**os.environ, "PHOENIX_SQL_DATABASE_URL": database_url, "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(free_port()), "PHOENIX_WORKING_DIR": str(home),
           "PHOENIX_TELEMETRY_ENABLED": "false"}
    env.pop("DATABASE_URL", None)
    log = open(home / "phoenix.log", "wb")
    process = subprocess.Popen([python, "-m", "phoenix.server.main", "serve"], env=env, cwd=home,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    # Its migrations and imports take a while on a loaded machine.
    if wait_healthy(process, base, seconds=600):
        return process, base
    process.kill()
    raise SystemExit(f"Phoenix did not start:\n{(home / 'phoenix.log').read_text(errors='replace')[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _report(name: str, run: Run, total: int) -> float | None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    durable = f"{run.durable_s:.2f} s, {total / run.durable_s:,.0f} spans/s" if run.durable_s else \
        f"NOT all stored within the timeout ({run.stored} of {total})"
    print(f"{name}: acknowledged in {run.ack_s:.2f} s ({total / run.ack_s:,.0f} spans/s); "
          f"durable: {durable}  [load average {load}]", flush=True)
    return total / run.durable_s if run.durable_s else None


def _measured(name: str, process: subprocess.Popen, base: str, url: str, payloads: list[bytes], total: int,
              args) -> tuple[float | None, int]:
    """One server's run, then the server stopped: its durable and acknowledged rates (printed)."""
    try:
        run = measure(url, base, payloads, total, args.clients, args.timeout)
    finally:
        stop(process)
    return _report(name, run, total), round(total / run.ack_s)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--phoenix-python", default="/tmp/phoenix-venv/bin/python")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for each server's rows")
    args = parser.parse_args()

    payloads, total = build_payloads(args.traces)
    size = sum(map(len, payloads))
    print(f"workload: {args.traces} traces, {total} spans ({total / args.traces:.1f} per trace, "
          f"{size / total:,.0f} bytes of protobuf per span), one request per trace, {args.clients} clients",
          flush=True)
    missing = phoenix_missing(args.phoenix_python)
    result: dict = {"spans": total}
    with bench_database("causeline_vs_phoenix") as url:
        with psycopg.connect(libpq_url(url)) as conn:
            print(f"PostgreSQL: {conn.execute('SHOW server_version').fetchone()[0]}", flush=True)
        result["causeline_spans_per_s"], result["causeline_ack_spans_per_s"] = _measured(
            "Causeline (defaults)", *start_collector(url), url, payloads, total, args)

        if missing:
            print(f"Phoenix skipped: {missing}", flush=True)
            result.update(phoenix_spans_per_s=None, phoenix_ack_spans_per_s=None)
        else:
            phoenix_url = make_url(url).set(database=PHOENIX_DATABASE).render_as_string(hide_password=False)
            home = Path(tempfile.mkdtemp(prefix="phoenix-bench-"))
            admin(url, f'DROP DATABASE IF EXISTS "{PHOENIX_DATABASE}" WITH (FORCE)')
            admin(url, f'CREATE DATABASE "{PHOENIX_DATABASE}"')
            try:
                process, base = start_phoenix(args.phoenix_python, phoenix_url, home)
                print(f"Phoenix {phoenix_version(args.phoenix_python)} started", flush=True)
                result["phoenix_spans_per_s"], result["phoenix_ack_spans_per_s"] = _measured(
                    "Phoenix", process, base, phoenix_url, payloads, total, args)
            finally:
                admin(url, f'DROP DATABASE IF EXISTS "{PHOENIX_DATABASE}" WITH (FORCE)')
                shutil.rmtree(home, ignore_errors=True)

    ours_rate, their_rate = result["causeline_spans_per_s"], result.get("phoenix_spans_per_s")
    result["ratio"] = round(ours_rate / their_rate, 1) if ours_rate and their_rate else None
    for key in ("causeline_spans_per_s", "phoenix_spans_per_s"):
        if result.get(key) is not None:
            result[key] = round(result[key])
    result["load"] = round(os.getloadavg()[0], 2)
    if result["ratio"] is not None:
        print(f"Causeline's durable rate is {result['ratio']}x Phoenix's", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

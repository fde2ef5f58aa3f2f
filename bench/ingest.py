"""Ingest throughput against raw PostgreSQL COPY, measured in the same run on the same server.

    .venv/bin/python bench/ingest.py [--spans 200000] [--clients 4] [--batch 512]

Starts `causeline serve --only collector` as a separate process (against DATABASE_URL, or an
embedded PostgreSQL in a temporary directory), sends a realistic agent workload as protobuf OTLP requests
(payloads encoded before the clock starts) from several concurrent clients, and stops the clock
when every request is acknowledged — acknowledgement happens after commit, and the script then
checks that every span is queryable. The baseline is a binary COPY, over one connection, of the
same spans as rows into a table with the same columns and indexes as `spans`.
Also prints the CPU time per span of each part (collector main process, decoder workers,
PostgreSQL backends, the clients) and the peak resident memory of the collector and its workers.
Last line: {"spans_per_s": ..., "peak_rss_mb": ..., "copy_rows_per_s": ..., "ratio": ...}.

    .venv/bin/python bench/ingest.py --database-url URL [--collectors 2]

runs against that database as it is (already migrated, e.g. a Citus coordinator after `causeline
migrate --citus`; not created, emptied or dropped: spans are counted before and after), with
`--collectors` collector processes sharing the clients (docs/scaling.md).

    .venv/bin/python bench/ingest.py --overload

sends the same spans from 256 clients at once, each retrying a refused request after 100 ms
(ignoring Retry-After, to keep the pressure on): the collector must refuse with 503 + Retry-After
rather than grow; prints its peak RSS and the refusals (no baseline).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from core.normalize import normalize  # noqa: E402
from core.otlp import decode_protobuf  # noqa: E402
from core.pricing import price_span  # noqa: E402
from db.engine import libpq_url  # noqa: E402
from db.ingest import span_row  # noqa: E402
from bench.benchdb import bench_database  # noqa: E402
from tests import otlp_payloads as P  # noqa: E402

KEY = "cl_bench-key-000000000000000000000000"
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"),
          ("anthropic", "claude-3-5-haiku-latest")]
OVERLOAD_CLIENTS = 256
TOOLS = ["search_docs", "get_order", "refund", "send_email", "lookup_customer"]


def agent_trace(rng: random.Random, trace_no: int, id_offset: int = 0) -> list:
    """One agent run: root agent, a routing decision, 3-6 model calls, 2-4 tool calls, sometimes a failure."""
    tid = (trace_no + id_offset).to_bytes(16, "big")
    ids = iter(range(trace_no * 64 + 1, trace_no * 64 + 64))
    sid = lambda: next(ids).to_bytes(8, "big")  # noqa: E731
    t = P.BASE_NS + trace_no * 1_000_000_000
    agent = rng.choice(["support", "billing", "triage"])
    root = P.span(tid, sid(), name=f"invoke_agent {agent}", start=t, duration=8_000_000_000,
                  attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
                              "gen_ai.conversation.id": f"conv-{trace_no % 5000}", "user.id": f"user-{trace_no % 900}"})
    provider, model = rng.choice(MODELS)
    spans = [root, P.span(tid, sid(), parent=root.span_id, name="route", start=t + 1000, attributes={
        "gen_ai.operation.name": "route", "causeline.route.candidates": [m for _, m in MODELS],
        "causeline.route.chosen": model, "causeline.route.reason": "cost", "causeline.route.policy": "cheapest-capable"})]
    for i in range(rng.randint(3, 6)):
        failed = rng.random() < 0.03
        prompt = "You are a helpful support agent. " + " ".join(rng.choice(["order", "refund", "late", "item",
                                                                               "broken", "help"]) for _ in range(60))
        spans.append(P.span(
            tid, sid(), parent=root.span_id, name=f"chat {model}", start=t + 10_000 * (i + 1),
            duration=rng.randint(200, 3000) * 1_000_000, status=2 if failed else 0,
            message="rate limit exceeded" if failed else "",
            attributes={**P.llm_attrs(model, rng.randint(200, 4000), rng.randint(20, 800)),
                        "gen_ai.provider.name": provider, "gen_ai.usage.cache_read.input_tokens": rng.randint(0, 150),
                        "gen_ai.response.finish_reasons": ["stop"], "gen_ai.request.temperature": 0.2,
                        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
                        **({"error.type": "429"} if failed else {})}))
    for i in range(rng.randint(2, 4)):
        tool = rng.choice(TOOLS)
        spans.append(P.span(tid, sid(), parent=root.span_id, name=f"execute_tool {tool}", start=t + 50_000 * (i + 1),
                            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                                        "gen_ai.tool.call.id": f"call_{rng.getrandbits(48):x}",
                                        "gen_ai.tool.call.arguments": json.dumps({"id": rng.randint(1, 10**6)})}))
    return spans


def build_payloads(total_spans: int, batch: int, seed: int = 42, id_offset: int = 0) -> tuple[list[bytes], int]:
    rng = random.Random(seed)
    payloads, pending, count, trace_no = [], [], 0, 0
    while count < total_spans:
        trace_no += 1
        for pb in agent_trace(rng, trace_no, id_offset):
            pending.append(pb)
            count += 1
            if len(pending) == batch:
                payloads.append(P.request(pending, service="bench-agent").SerializeToString())
                pending = []
    if pending:
        payloads.append(P.request(pending, service="bench-agent").SerializeToString())
    return payloads, count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_collector(url: str) -> tuple[subprocess.Popen, str]:
    port, otlp_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": url, "CAUSELINE_PORT": str(port), "CAUSELINE_OTLP_PORT": str(otlp_port),
           # Every ingest setting at its default (what a user gets), unless set in this environment.
           "CAUSELINE_INIT_API_KEY": KEY, "CAUSELINE_INIT_ADMIN_PASSWORD": "bench", "CAUSELINE_DEMO": "off",
           "CAUSELINE_GRPC_PORT": "0"}
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--only", "collector"], env=env,
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{otlp_port}"
    if wait_healthy(process, base, seconds=60):
        return process, base
    process.kill()
    raise SystemExit(f"collector did not start: {process.stderr.read().decode()[-2000:]}")


def wait_healthy(process: subprocess.Popen, base: str, *, seconds: float) -> bool:
    """Whether `base`/healthz answered 200 within `seconds`; False at once if the process exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def cpu_seconds(pid: int, url: str) -> dict[str, float]:
    """CPU time so far of the collector's main process, its decoder workers, the PostgreSQL
    backends serving the bench database, and this process (the clients)."""
    def total(proc: psutil.Process) -> float:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    main = psutil.Process(pid)
    database = make_url(url).database
    backends = [proc for proc in psutil.process_iter(["cmdline"])
                if proc.info["cmdline"] and proc.info["cmdline"][0].startswith("postgres: ")
                and f" {database} " in proc.info["cmdline"][0]]
    return {"main": total(main), "workers": sum(total(child) for child in main.children(recursive=True)),
            "postgres": sum(map(total, backends)), "clients": total(psutil.Process())}


class PeakRss(threading.Thread):
    """Samples the resident memory of the collector and its children (decoder workers) every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop_event = threading.Event()

    def sample(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            self.peak = max(self.peak, self.sample())

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def send_all(bases: str | list[str], payloads: list[bytes], clients: int, pause: float = 0.05) -> tuple[float, dict]:
    """Every payload until acknowledged; a refused one is retried after `pause` (not Retry-After, so
    that an overload keeps pressing). Client i sends to collector i mod len(bases). Returns the
    elapsed time and the count of each refusal."""
    bases = [bases] if isinstance(bases, str) else bases
    queue = list(enumerate(payloads))
    lock = threading.Lock()
    refusals: dict = {}

    def worker(base: str) -> None:
        headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {KEY}"}
        with httpx.Client(timeout=600) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop()
                while (response := client.post(f"{base}/v1/traces", content=body, headers=headers)).status_code != 200:
                    key = (response.status_code, "Retry-After" if response.headers.get("retry-after") else "no Retry-After")
                    with lock:
                        refusals[key] = refusals.get(key, 0) + 1
                    time.sleep(pause)

    threads = [threading.Thread(target=worker, args=(bases[i % len(bases)],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, refusals


def _ensure_key(url: str) -> None:
    from sqlalchemy import select

    from db.engine import make_engine, make_sessionmaker
    from db.models import ApiKey
    from db.queries.auth import create_api_key, create_project
    from core.security import hash_key

    engine = make_engine(url, pool_size=1)
    try:
        with make_sessionmaker(engine).begin() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(KEY))) is None:
                project = create_project(session, f"bench-{int(time.time())}")
                create_api_key(session, project.id, name="bench", scopes=["ingest", "read"], secret=KEY)
    finally:
        engine.dispose()


def _stored(url: str) -> tuple[int, int]:
    with psycopg.connect(libpq_url(url)) as conn:
        return (conn.execute("SELECT count(*) FROM spans").fetchone()[0],
                conn.execute("SELECT COALESCE(sum(span_count), 0) FROM traces").fetchone()[0])


def copy_baseline(url: str, payloads: list[bytes]) -> float:
    """Binary COPY of the same spans, already turned into rows, into a copy of `spans`: its columns,
    indexes (the GIN search indexes too) and daily partitions, so the rows are routed as they are
    in `spans`."""
    rows = []
    for body in payloads:
        for raw in decode_protobuf(body).spans:
            rows.append(span_row(1, price_span(normalize(raw))))
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute("CREATE TABLE bench_copy (LIKE spans INCLUDING ALL) PARTITION BY RANGE (start_time)")
        for n, (bound,) in enumerate(conn.execute(
                "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'spans'::regclass").fetchall()):
            conn.execute(f"CREATE TABLE bench_copy_{n} PARTITION OF bench_copy {bound}")
        conn.commit()
        # Every column but the generated ones (spans.digest), which COPY cannot write: the
        # table computes them as `spans` does, so the baseline pays for them too.
        columns = [name for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'bench_copy'::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum")]
        types = {r[0]: r[1] for r in conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'bench_copy'::regclass AND attnum > 0 AND NOT attisdropped")}
        table_rows = [_as_table_row(row) for row in rows]
        statement = sql.SQL("COPY bench_copy ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types([types[c].split("(")[0] for c in columns])
            for row in table_rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")  # and its partitions
        conn.commit()
    return len(rows) / elapsed


def _as_table_row(row: tuple) -> tuple:
    """A staging row → the column order and types of `spans` (timestamps computed, JSON parsed)."""
    from datetime import datetime, timezone

    from psycopg.types.json import Jsonb

    (project_id, trace_id, span_id, parent, name, kind, category, operation, start_ns, end_ns, *rest) = row
    (status, status_message, error_type, error_class, service, agent, tool, provider, req_model, resp_model,
     t_in, t_out, t_cr, t_cw, t_r, cost, cost_source, reported, session_id, user_id, inp, out,
     attributes, events, links, resource, scope, retry_kind, response_id) = rest
    to_dt = lambda ns: datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)  # noqa: E731
    return (project_id, trace_id, span_id, parent, name, kind, category, operation, to_dt(start_ns), to_dt(end_ns),
            start_ns, end_ns - start_ns, status, status_message, error_type, error_class, service, agent, tool,
            provider, req_model, resp_model, t_in, t_out, t_cr, t_cw, t_r, cost, cost_source, reported, session_id,
            user_id, inp, out, Jsonb(json.loads(attributes)), Jsonb(json.loads(events)), Jsonb(json.loads(links)),
            Jsonb(json.loads(resource)), scope, datetime.now(timezone.utc), retry_kind,
            response_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--database-url", help="an existing, migrated database to use as is (e.g. Citus)")
    parser.add_argument("--collectors", type=int, default=1, help="collector processes sharing the clients")
    parser.add_argument("--overload", action="store_true",
                        help=f"{OVERLOAD_CLIENTS} clients retrying at once: peak memory and refusals, no baseline")
    args = parser.parse_args()
    clients = OVERLOAD_CLIENTS if args.overload else args.clients

    given = contextlib.nullcontext(args.database_url) if args.database_url else None
    with given or bench_database("causeline_bench_overload" if args.overload else "causeline_bench") as url:
        # In a database used as is, runs of earlier benchmarks must not make these duplicates.
        payloads, total = build_payloads(args.spans, args.batch,
                                         id_offset=time.time_ns() << 32 if args.database_url else 0)
        print(f"workload: {total} spans in {len(payloads)} requests of <= {args.batch} spans, "
              f"{sum(map(len, payloads)) / 1e6:.1f} MB protobuf, {clients} clients, "
              f"{args.collectors} collector process(es)", flush=True)
        if args.database_url:
            _ensure_key(url)  # the collector creates it only in an empty database
        stored_before, rolled_before = _stored(url)
        started = [start_collector(url) for _ in range(args.collectors)]
        process = started[0][0]  # CPU and memory: of the first collector
        rss = PeakRss(process.pid)
        try:
            idle_mb = rss.sample() / 2**20
            rss.start()
            before = cpu_seconds(process.pid, url)
            elapsed, refusals = send_all([base for _, base in started], payloads, clients,
                                         pause=0.1 if args.overload else 0.05)
            used = {part: seconds - before.get(part, 0.0) for part, seconds in cpu_seconds(process.pid, url).items()}
        finally:
            peak_mb = rss.stop() / 2**20
            for other, _ in started:
                other.terminate()
            for other, _ in started:
                try:
                    other.wait(60)
                except subprocess.TimeoutExpired:
                    other.kill()
        print("cpu us/span: " + ", ".join(f"{part} {seconds / total * 1e6:.1f}" for part, seconds in used.items()),
              flush=True)
        print(f"collector RSS (with its worker processes): {idle_mb:.0f} MB idle, {peak_mb:.0f} MB peak", flush=True)
        stored, rolled = (after - earlier for after, earlier in zip(_stored(url), (stored_before, rolled_before)))
        if stored != total or rolled != total:
            raise SystemExit(f"expected {total} spans, stored {stored}, rolled up {rolled}")
        spans_per_s = total / elapsed
        shown = ", ".join(f"{n} x {status} with {header}" for (status, header), n in sorted(refusals.items())) or "none"
        print(f"collector: {elapsed:.2f} s, {spans_per_s:,.0f} spans/s, refused requests (retried): {shown}", flush=True)
        result = {"spans_per_s": round(spans_per_s), "peak_rss_mb": round(peak_mb)}
        if args.overload:
            result["refused"] = sum(refusals.values())
            result["refused_without_retry_after"] = sum(
                n for (_, header), n in refusals.items() if header != "Retry-After")
        else:
            copy_rows_per_s = copy_baseline(url, payloads)
            print(f"raw binary COPY baseline: {copy_rows_per_s:,.0f} rows/s", flush=True)
            result.update(copy_rows_per_s=round(copy_rows_per_s), ratio=round(spans_per_s / copy_rows_per_s, 3))
        print(json.dumps(result))


if __name__ == "__main__":
    main()

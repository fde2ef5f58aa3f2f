"""The in-flight budget bounds a real collector's memory: OTLP/JSON bodies cost about 13x their size
to decode, four of them sent at once (with four decoder processes free to take them) must not
raise the resident memory of the server and its workers by more than the budget; a body that could
never be decoded within the budget is refused with 413, the others are acknowledged in turn.

Decoded all at once, the four would take ~500 MB. One at a time they take ~100 MB, plus what each
process keeps after its first large body (~25-30 MB: a fragmented heap, allowed for below)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, text

from db.engine import sqlalchemy_url

KEY = "cl_memory-test-key-0123456789abcdef"
BUDGET = 256 * 1024 * 1024
WORKERS = 4
KEPT_PER_PROCESS = 32 * 1024 * 1024  # heap a process keeps after decoding a large body
SPANS_PER_BODY = 280  # x 512 attributes: a ~7.7 MB JSON body (~100 MB to decode), charged 24x = ~185 MB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def json_body(batch: int, spans: int) -> bytes:
    attributes = [{"key": f"attribute.{j}", "value": {"stringValue": f"v{j}"}} for j in range(512)]
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": f"{batch + 1:032x}", "spanId": f"{i + 1:016x}", "name": "wide",
         "startTimeUnixNano": "1763800000000000000", "endTimeUnixNano": "1763800001000000000",
         "attributes": attributes}
        for i in range(spans)]}]}]}, separators=(",", ":")).encode()


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def sample(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, self.sample())


@pytest.mark.slow
def test_four_large_json_bodies_at_once_stay_within_the_budget(pg, tmp_path):
    database_url = pg.fresh_database()
    otlp_port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "CAUSELINE_PORT": str(free_port()),
           "CAUSELINE_OTLP_PORT": str(otlp_port), "CAUSELINE_INIT_API_KEY": KEY,
           "CAUSELINE_INIT_ADMIN_PASSWORD": "memory-admin", "CAUSELINE_DEMO": "off",
           "CAUSELINE_MAX_INFLIGHT_BYTES": str(BUDGET), "CAUSELINE_INGEST_PROCESSES": str(WORKERS)}
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--only", "collector"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{otlp_port}/v1/traces"
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{otlp_port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "collector did not start"
            time.sleep(0.1)
        bodies = [json_body(i, SPANS_PER_BODY) for i in range(4)]
        too_large = json_body(99, 2 * SPANS_PER_BODY)  # ~15 MB: charged ~370 MB, more than the budget
        time.sleep(1)  # let the workers settle after warm-up
        rss = PeakRss(server.pid)
        idle = rss.sample()
        rss.start()

        answers: list[tuple[int, int]] = []  # (status, refusals before it)

        def send(body: bytes) -> None:
            refusals = 0
            while (response := httpx.post(url, content=body, headers=headers, timeout=300)).status_code == 503:
                assert response.headers.get("retry-after")
                refusals += 1
                time.sleep(0.2)
            answers.append((response.status_code, refusals))

        clients = [threading.Thread(target=send, args=(body,)) for body in bodies]
        for client in clients:
            client.start()
        for client in clients:
            client.join(600)
        refused = httpx.post(url, content=too_large, headers=headers, timeout=300)
        rss.done.set()
        rss.join()

        assert [status for status, _ in answers] == [200] * 4
        assert sum(refusals for _, refusals in answers) > 0, "the bodies were never in flight together"
        assert refused.status_code == 413 and "retry-after" not in refused.headers
        growth = rss.peak - idle
        print(f"idle {idle >> 20} MiB, peak growth {growth >> 20} MiB, refusals {[r for _, r in answers]}")
        bound = BUDGET + (WORKERS + 1) * KEPT_PER_PROCESS
        assert growth < bound, f"resident memory grew by {growth >> 20} MiB, bound {bound >> 20} MiB"
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from spans")).scalar_one() == 4 * SPANS_PER_BODY
    except AssertionError as exc:
        log.flush()
        raise AssertionError(f"{exc}\n--- server log ---\n{(tmp_path / 'server.log').read_text()[-3000:]}") from exc
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        engine.dispose()
        log.close()
        pg.drop(database_url)

"""Delivery accounting and the exit wait, against real HTTP collectors on loopback.

* ``stats()`` adds up at every moment: ended = exported + failed + dropped +
  queued, sampled concurrently while spans are produced and exported to a
  dead, refusing, stalling and flapping collector.
* Exit: with the collector down, shutdown gives up after
  ``shutdown_timeout_unreachable`` however long ``shutdown_timeout`` is.
* The OTLP exporter's retry lines are rerouted (a logging.Filter on its public
  logger names), only for Causeline's own exports.
"""

from __future__ import annotations

import ast
import logging
import os
import subprocess
import sys
import textwrap
import threading

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sdk_helpers import StubCollector, free_port

import causeline
from causeline._state import STATE
from causeline.config import resolve
from causeline.export import Reachability
from causeline.pipeline import Pipeline
from causeline.redaction import ContentPolicy
from causeline.stats import Stats

ENV_CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("CAUSELINE_", "OTEL_"))}
STATES = ("spans_exported", "spans_failed", "spans_dropped", "spans_queued")


def _adds_up(snapshot: dict) -> bool:
    return snapshot["spans_ended"] == sum(snapshot[k] for k in STATES)


class Sampler:
    """Calls stats() in a loop from its own thread and keeps every snapshot that does not add up."""

    def __init__(self) -> None:
        self.bad: list[dict] = []
        self.samples = 0
        self.saw_queued = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            snap = causeline.stats()
            self.samples += 1
            self.saw_queued |= snap["spans_queued"] > 0
            if not _adds_up(snap):
                self.bad.append(snap)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _produce(threads: int, spans_each: int) -> None:
    def work(n: int) -> None:
        for i in range(n):
            with causeline.step_run("unit", attributes={"i": i}):
                pass

    workers = [threading.Thread(target=work, args=(spans_each,)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)


COLLECTORS = {
    "dead": lambda: None,  # nothing listens: connection refused
    "refusing": lambda: StubCollector(status=503),
    "stalling": lambda: StubCollector(delay=30),  # answers long after export_timeout
    "flapping": lambda: StubCollector(statuses=(200, 503)),
}


@pytest.mark.parametrize("kind", sorted(COLLECTORS))
def test_stats_add_up_at_every_moment(start_causeline, kind):
    stub = COLLECTORS[kind]()
    endpoint = stub.endpoint if stub is not None else f"http://127.0.0.1:{free_port()}"
    try:
        start_causeline(
            exporter=None,
            endpoint=endpoint,
            export_timeout=0.3,
            schedule_delay_millis=5,
            max_queue_size=40,
            max_export_batch_size=8,
        )
        before = causeline.stats()
        sampler = Sampler()
        try:
            _produce(threads=3, spans_each=150)
            causeline.flush(timeout=30)
            causeline.shutdown()
        finally:
            sampler.stop()
        after = causeline.stats()
    finally:
        if stub is not None:
            stub.close()

    assert sampler.samples > 0
    assert sampler.saw_queued  # the sampler did look while spans were in flight
    assert not sampler.bad, f"{len(sampler.bad)} of {sampler.samples} snapshots do not add up: {sampler.bad[:3]}"
    assert _adds_up(after)
    delta = {k: after[k] - before[k] for k in ("spans_ended", *STATES)}
    assert delta["spans_ended"] == 450
    assert delta["spans_queued"] == 0  # shutdown settled every span one way or the other
    if kind in ("dead", "refusing", "stalling"):
        assert delta["spans_exported"] == 0
        assert delta["spans_failed"] > 0
    else:  # flapping: every other batch gets through
        assert delta["spans_exported"] > 0 and delta["spans_failed"] > 0
        assert delta["spans_exported"] == len(stub.spans)


class Hanging(SpanExporter):
    """A collector that never answers until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans):
        self.entered.set()
        self.release.wait(60)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.release.set()


def _pipeline(exporter, reachability, **config):
    stats = Stats()
    config = resolve(service_name="t", **config)
    return Pipeline(exporter, config, stats, ContentPolicy(enabled=False), reachability), stats


def _ended_span(name: str = "s"):
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("t")
    span = tracer.start_span(name)
    span.end()
    return span


def test_exit_wait_is_cut_short_when_the_collector_is_down():
    exporter = Hanging()
    reachability = Reachability()
    pipeline, stats = _pipeline(
        exporter, reachability, max_export_batch_size=2, shutdown_timeout=3600, shutdown_timeout_unreachable=0
    )
    for _ in range(5):
        pipeline.on_end(_ended_span())
    assert exporter.entered.wait(30)  # one batch of 2 is in flight, 3 wait in the queue
    reachability.report(False)  # what the OTLP session reports after a refused connection
    pipeline.shutdown()  # would wait up to an hour if the collector were thought healthy
    snap = stats.snapshot()
    assert _adds_up(snap)
    assert snap["spans_dropped"] == 3  # the queued ones, counted when the wait was given up
    assert snap["spans_exported"] + snap["spans_queued"] == 2  # the batch in flight (released by exporter.shutdown)


def test_exit_wait_is_the_full_timeout_while_the_collector_answers():
    exporter = Hanging()
    pipeline, stats = _pipeline(exporter, Reachability(), shutdown_timeout=3600, shutdown_timeout_unreachable=0)
    pipeline.on_end(_ended_span())
    assert exporter.entered.wait(30)
    done = threading.Event()
    threading.Thread(target=lambda: (pipeline.shutdown(), done.set()), daemon=True).start()
    assert not done.wait(0.5)  # still waiting for the collector, not cut short
    exporter.release.set()
    assert done.wait(30)
    assert stats.snapshot()["spans_exported"] == 1


EXIT_SCRIPT = """
import causeline

causeline.init(service_name="exit-down", auto_instrument=False)
with causeline.agent_run("a"):
    for i in range(20):
        with causeline.tool_call("t"):
            pass
causeline.shutdown()
print(causeline.stats())
"""


def test_collector_down_at_exit_no_long_wait_and_one_warning():
    # With export and shutdown timeouts of an hour, only the short wait for an
    # unreachable collector lets this process end before the subprocess timeout.
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **ENV_CLEAN,
            "CAUSELINE_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "CAUSELINE_EXPORT_TIMEOUT": "3600",
            "CAUSELINE_SHUTDOWN_TIMEOUT": "3600",
        },
    )
    assert proc.returncode == 0, proc.stderr
    stats = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert stats["spans_ended"] == 21
    assert _adds_up(stats)
    assert stats["spans_exported"] == 0
    # OpenTelemetry's retry lines are not printed; our one summary line is.
    assert "Transient error" not in proc.stderr and "retry" not in proc.stderr.lower(), proc.stderr
    assert proc.stderr.count("causeline: could not export") == 1, proc.stderr


def test_exporter_log_lines_are_rerouted_only_for_our_exports(start_causeline, caplog):
    caplog.set_level(logging.DEBUG, logger="causeline.export")
    dead = f"http://127.0.0.1:{free_port()}/v1/traces"
    start_causeline(exporter=None, endpoint=dead, export_timeout=1.5)
    with causeline.step_run("s"):
        pass
    causeline.flush(timeout=30)
    ours = [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]
    assert not ours, [r.getMessage() for r in ours]
    rerouted = [r for r in caplog.records if r.name == "causeline.export" and r.levelno == logging.DEBUG]
    assert rerouted, "the exporter logged nothing through the filter: are its logger names still ours to filter?"
    assert any("opentelemetry.exporter" in r.getMessage() for r in rerouted)

    # The application's own exporter (not inside Causeline's export) logs as usual.
    caplog.clear()
    OTLPSpanExporter(endpoint=dead, timeout=1.5).export([_ended_span()])
    assert any(r.name.startswith("opentelemetry.exporter") for r in caplog.records)


def test_reachability_follows_each_http_attempt(start_causeline):
    stub = StubCollector(statuses=(503, 200))
    try:
        start_causeline(exporter=None, endpoint=stub.endpoint, export_timeout=0.3, max_export_batch_size=1)
        pipeline = STATE.slot.pipeline
        with causeline.step_run("first"):
            pass
        causeline.flush(timeout=30)
        assert pipeline.reachability.down  # 503, no time left to retry
        with causeline.step_run("second"):
            pass
        causeline.flush(timeout=30)
        assert not pipeline.reachability.down
        assert pipeline.reachability.attempts >= 2
    finally:
        stub.close()


"""Cost of one instrumented call versus a bare OpenTelemetry span, in the same run.

Instrumented: a ``@causeline.tool`` function called inside a
``causeline.agent_run`` span, through Causeline's real pipeline
(BatchSpanProcessor + guarded exporter). Bare: the same function called inside
``tracer.start_as_current_span`` (inside a parent span), with a plain
BatchSpanProcessor. Both export to a no-op exporter, with queues large enough
that no span is dropped, and the two are measured alternately.

Needs only the SDK installed (``pip install ./sdk``). The last line printed is
JSON: {"instrumented_us": ..., "bare_us": ..., "ratio": ...}. Target: ratio <= 1.5.

    python bench/sdk_overhead.py [--calls 20000] [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import causeline


class NoopExporter(SpanExporter):
    def export(self, spans):  # noqa: ANN001
        return SpanExportResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000, help="calls per measurement")
    parser.add_argument("--repeats", type=int, default=9, help="alternating measurements of each")
    args = parser.parse_args()
    queue = max(args.calls * 2 + 10, 512)  # at least one export batch (BatchSpanProcessor insists)

    # Bare OpenTelemetry.
    bare_provider = TracerProvider()
    bare_provider.add_span_processor(BatchSpanProcessor(NoopExporter(), max_queue_size=queue))
    bare_tracer = bare_provider.get_tracer("bench")

    # Causeline, on its own provider, with the real pipeline.
    ours_provider = TracerProvider()
    causeline.init(
        service_name="bench",
        exporter=NoopExporter(),
        tracer_provider=ours_provider,
        auto_instrument=False,
        max_queue_size=queue,
    )

    def work(i: int) -> int:
        return i

    lookup = causeline.tool("lookup")(work)

    def run_instrumented(n: int) -> float:
        with causeline.agent_run("bench-agent"):
            start = time.perf_counter_ns()
            for i in range(n):
                lookup(i)
            elapsed = time.perf_counter_ns() - start
        return elapsed / n / 1000

    def run_bare(n: int) -> float:
        with bare_tracer.start_as_current_span("invoke_agent bench-agent"):
            start = time.perf_counter_ns()
            for i in range(n):
                with bare_tracer.start_as_current_span("execute_tool lookup"):
                    work(i)
            elapsed = time.perf_counter_ns() - start
        return elapsed / n / 1000

    def settle() -> None:
        causeline.flush(timeout=30)
        bare_provider.force_flush()

    run_bare(args.calls // 4)  # warm up both paths
    run_instrumented(args.calls // 4)
    settle()
    bare: list[float] = []
    ours: list[float] = []
    for _ in range(args.repeats):
        bare.append(run_bare(args.calls))
        settle()
        ours.append(run_instrumented(args.calls))
        settle()

    stats = causeline.stats()
    causeline.shutdown()
    bare_provider.shutdown()
    bare_us = statistics.median(bare)
    ours_us = statistics.median(ours)
    print(f"python {platform.python_version()}, causeline {causeline.__version__}")
    print(f"calls per run {args.calls}, runs {args.repeats}, medians below")
    print(f"fastest runs: bare {min(bare):.2f} us, causeline {min(ours):.2f} us")
    print(f"bare OpenTelemetry span:        {bare_us:.2f} us/call")
    print(f"causeline tool in agent span:   {ours_us:.2f} us/call")
    print(f"spans dropped: {stats['spans_dropped']}, exported: {stats['spans_exported']}")
    print(
        json.dumps(
            {"instrumented_us": round(ours_us, 3), "bare_us": round(bare_us, 3), "ratio": round(ours_us / bare_us, 3)}
        )
    )


if __name__ == "__main__":
    main()

"""Failure scenarios written with the real SDK; each top-level agent run is one trace.

Run as a program: python agent_scenarios.py <collector url> <api key>.
"""

import sys
import threading

import causeline


class RateLimitError(Exception):
    pass


@causeline.agent("s1-fallback")
def s1_fallback():
    """Provider timeout recovered by a fallback to another provider."""
    try:
        with causeline.model_call("openai", "gpt-4o", attempt=1) as first:
            first.record_usage(input_tokens=500, output_tokens=0)
            raise TimeoutError("upstream timed out after 30s")
    except TimeoutError:
        pass
    with causeline.model_call("anthropic", "claude-sonnet-4-5", fallback_of=first) as second:
        second.record_usage(input_tokens=520, output_tokens=80)
        second.record_response(model="claude-sonnet-4-5-20250929", finish_reasons=["stop"])
    return "ok"


@causeline.agent("s2-retries")
def s2_retries():
    """A rate limit that exhausts three attempts; the step and the run fail."""
    with causeline.step_run("answer"):
        previous = None
        for attempt in range(1, 4):
            call = causeline.model_call("openai", "gpt-4o", attempt=attempt, retry_of=previous)
            try:
                with call:
                    call.record_usage(input_tokens=100, output_tokens=0)
                    raise RateLimitError("Error code: 429 - rate limit reached for gpt-4o")
            except RateLimitError as exc:
                previous, last = call, exc
        raise last


@causeline.agent("s3-guardrail")
def s3_guardrail():
    """Malformed model output caught by a validation guardrail; a retry of the call succeeds."""
    with causeline.model_call("openai", "gpt-4o-mini") as call:
        call.record_usage(input_tokens=300, output_tokens=40)
        call.record_response(model="gpt-4o-mini-2024-07-18", finish_reasons=["stop"])
    with causeline.guardrail("order-json-schema", uses_output_of=call) as check:
        check.blocked("output is not valid JSON", action="retry")
    with causeline.model_call("openai", "gpt-4o-mini", retry_of=call) as again:
        again.record_usage(input_tokens=320, output_tokens=45)
        again.record_response(model="gpt-4o-mini-2024-07-18", finish_reasons=["stop"])
    return "ok"


@causeline.agent("s4-data-from")
def s4_data_from():
    """A tool exception the agent caught, whose (missing) output a later step consumed."""
    try:
        with causeline.tool_call("fetch_invoice") as fetch:
            raise KeyError("invoice INV-7 not found")
    except KeyError:
        pass
    with causeline.step_run("summarize", uses_output_of=fetch):
        raise ValueError("cannot summarize an empty invoice")


@causeline.agent("s5-triage")
def s5_triage():
    """A failure inside a handed-off second agent propagates back to the first."""
    with causeline.handoff("s5-billing"):
        s5_billing()


@causeline.agent("s5-billing")
def s5_billing():
    with causeline.tool_call("issue_refund"):
        raise ConnectionError("billing backend: connection refused")


@causeline.agent("s6-swallowed")
def s6_swallowed():
    """A tool error swallowed by its parent, which still succeeds."""
    try:
        with causeline.tool_call("lookup_cache"):
            raise TimeoutError("cache lookup timed out")
    except TimeoutError:
        pass
    return "answered without the cache"


@causeline.agent("s7-first")
def s7_first():
    """A run spread over two traces: the second agent runs in a thread without the context
    (a new trace, linked by handoff_from); the first consumes its output and fails."""
    box = []
    with causeline.handoff("s7-second", mode="return_to_caller") as handoff:
        pass
    worker = threading.Thread(target=s7_second, args=(handoff, box))
    worker.start()
    worker.join()
    with causeline.step_run("merge", uses_output_of=box[0]):
        raise RuntimeError("second agent returned nothing to merge")


def s7_second(handoff, box):
    try:
        with causeline.agent_run("s7-second", handoff_from=handoff) as run:
            box.append(run)
            with causeline.tool_call("crm_lookup"):
                raise TimeoutError("crm lookup timed out")
    except TimeoutError:
        pass


def main():
    assert causeline.init(service_name="forensics-agent", endpoint=sys.argv[1], api_key=sys.argv[2],
                          auto_instrument=False)
    for scenario in (s1_fallback, s2_retries, s3_guardrail, s4_data_from, s5_triage, s6_swallowed, s7_first):
        try:
            scenario()
        except Exception:
            pass
    causeline.shutdown()
    stats = causeline.stats()
    assert stats.get("spans_dropped", 0) == 0, stats


if __name__ == "__main__":
    main()

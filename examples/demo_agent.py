"""A customer-support agent pair instrumented with the Causeline SDK, over a week.

No real model is called: a seeded simulator stands in for the providers, with
plausible token counts, latencies and the failures real agents meet:

* a rate limit (HTTP 429) on the classifier model, retried (``retry_of``);
* a provider timeout on gpt-4o, recovered by a fallback to Claude (``fallback_of``),
  and now and then both providers timing out (an unrecovered failure);
* an order lookup that fails, recovered by a knowledge-base search;
* malformed JSON from the model, blocked by a guardrail and retried;
* an A/B trial on the answer step: every other answer is routed to the cheaper claude-haiku-4-5
  instead of claude-sonnet-4-5, with as few failures and as helpful answers (the Routing page
  suggests it, with the numbers);
* a handoff from the triage agent to the billing agent (``handoff_from``), which
  queues the refund for a ``refund-worker`` agent that runs later in its own trace,
  linked to the handoff and to the model call that drafted the refund (``data_from``);
  its payment gateway sometimes answers HTTP 502, failing that trace.

Runs are spread over the last ``--days`` days (busier in working hours), in virtual
time: nothing sleeps, the spans carry the times the runs would have had (see
demo_clock.py), so a week loads in seconds and a 30-second timeout lasts 30 seconds.
Over the week, three incidents (times relative to now):

* 4 days ago, 2 hours of gpt-4o timeouts: the fallback to Claude carries the refunds;
* from 2 days ago, OpenAI silently serves gpt-4o-2024-11-20 for gpt-4o, and the refund
  JSON breaks the guardrail more often;
* 20 hours ago, a burst of tickets (twelve times the usual) meets a rate-limit storm on gpt-4o-mini: retries pile
  up and some runs give up.

It uses only the public SDK API (and a standard OpenTelemetry exporter). Run it against a collector:

    python examples/demo_agent.py --endpoint http://127.0.0.1:4318 --api-key <key> --runs 20
    python examples/demo_agent.py --endpoint http://127.0.0.1:4318 --api-key <key> --history  # 8 days
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from demo_clock import VirtualClock, VirtualTimeExporter

import causeline

HOUR = 3600.0

# -- a deterministic stand-in for the model providers ---------------------------------


class RateLimitError(Exception):
    status_code = 429


class ProviderTimeout(TimeoutError):
    pass


class OrderNotFound(LookupError):
    pass


class PaymentGatewayError(RuntimeError):
    status_code = 502


@dataclass
class Completion:
    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    finish_reason: str = "stop"


SERVED_MODEL = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
}
# Seconds a successful request takes, per model (low, high).
LATENCY = {"gpt-4o-mini": (0.4, 1.6), "gpt-4o": (1.2, 4.5), "claude-sonnet-4-5": (1.5, 5.5),
           "claude-haiku-4-5": (0.6, 2.2)}
TIMEOUT_S = 30
STORM_TRAFFIC = 12.0  # tickets per hour during the storm, relative to the usual

TICKETS = [
    ("refund", "Order {order} arrived broken, I want my money back."),
    ("refund", "Please refund order {order}; I was charged twice on card 4111 1111 1111 1111."),
    ("refund", "Cancel {order} and refund me. Reach me at {email}."),
    ("status", "Where is my order {order}? It was due on Monday."),
    ("status", "Has {order} shipped yet?"),
    ("question", "Can I change the delivery address for {order}?"),
]


@dataclass(frozen=True)
class Story:
    """The week's incidents, as epoch seconds. `anchor` is the start of the current hour."""

    anchor: float

    @property
    def outage(self) -> tuple[float, float]:  # gpt-4o times out
        return self.anchor - 100 * HOUR, self.anchor - 98 * HOUR

    @property
    def model_change(self) -> float:  # gpt-4o silently served as a newer snapshot
        return self.anchor - 50 * HOUR

    @property
    def storm(self) -> tuple[float, float]:  # a burst of tickets and a rate-limit storm on gpt-4o-mini
        return self.anchor - 20 * HOUR, self.anchor - 19 * HOUR

    def in_outage(self, t: float) -> bool:
        return self.outage[0] <= t < self.outage[1]

    def in_storm(self, t: float) -> bool:
        return self.storm[0] <= t < self.storm[1]


class Simulator:
    """All randomness of one demo session, from one seed, and its (virtual) time."""

    def __init__(self, seed: int, clock: VirtualClock | None = None, story: Story | None = None,
                 time_scale: float = 0.001) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self.time_scale = time_scale  # real seconds per simulated second, without a virtual clock
        self.story = story or Story(anchor=math.floor(time.time() / HOUR) * HOUR)
        # The first refund ticket meets each kind of failure once, whatever the seed and the
        # hour: every session, however short, shows them all.
        self.forced = {"rate_limit", "order_missing", "timeout", "malformed", "gateway"}
        self.answers = 0  # answer-step calls so far (the A/B trial alternates models)

    def now(self) -> float:
        return self.clock.now() if self.clock is not None else time.time()

    def wait(self, seconds: float) -> None:
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds * self.time_scale)

    def sleep(self, low: float, high: float) -> None:
        self.wait(self.rng.uniform(low, high))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def fails(self, kind: str, p: float) -> bool:
        """A failure of this kind: forced the first time, then with probability p."""
        if kind in self.forced:
            self.forced.discard(kind)
            return True
        return self.chance(p)

    def served_model(self, model: str) -> str:
        if model == "gpt-4o" and self.now() >= self.story.model_change:
            return "gpt-4o-2024-11-20"
        return SERVED_MODEL.get(model, model)

    def malformed_p(self, model: str) -> float:
        # The prompt was tuned on the old snapshot: the new one wraps the JSON in prose more often.
        return 0.55 if self.served_model(model) == "gpt-4o-2024-11-20" else 0.25

    def rate_limited(self, model: str, base_p: float) -> bool:
        if model == "gpt-4o-mini" and self.story.in_storm(self.now()):
            return self.fails("rate_limit", 0.8)
        return self.fails("rate_limit", base_p) if base_p else False

    def complete(
        self, provider: str, model: str, prompt: str, *, fail: str | None = None, kind: str = "text"
    ) -> Completion:
        if fail == "timeout" or (model == "gpt-4o" and self.story.in_outage(self.now()) and self.chance(0.9)):
            self.wait(TIMEOUT_S + self.rng.uniform(0, 0.05))
            raise ProviderTimeout(f"{provider} request for {model} timed out after {TIMEOUT_S}s")
        if fail == "rate_limit":
            self.sleep(0.08, 0.25)
            raise RateLimitError(f"Rate limit reached for {model} in organization org-demo on tokens per min (TPM)")
        self.sleep(*LATENCY.get(model, (0.5, 3.0)))
        input_tokens = len(prompt) // 4 + self.rng.randint(250, 1800)
        output_tokens = self.rng.randint(40, 420)
        cache_read = (
            self.rng.choice([0, 0, 1024, 2048]) if provider == "anthropic" else self.rng.choice([0, 0, 0, 1152])
        )
        cache_read = min(cache_read, input_tokens)
        if kind == "intent":
            text = prompt.split("|", 1)[0]
        elif kind == "refund":
            amount = round(self.rng.uniform(12, 240), 2)
            text = json.dumps({"action": "refund", "amount": amount, "currency": "EUR"})
            if fail == "malformed":
                text = "Sure! Here is the refund decision: " + text[: len(text) // 2] + " ... I hope this helps!"
        else:
            text = "Thanks for reaching out! " + self.rng.choice(
                [
                    "Your parcel left our warehouse yesterday.",
                    "The address can be changed until dispatch.",
                    "It is on its way.",
                ]
            )
        return Completion(text, self.served_model(model), input_tokens, output_tokens, cache_read)


SIM: Simulator = Simulator(0)


@dataclass
class Ticket:
    id: str
    intent: str
    text: str
    order_id: str
    user: str


def make_ticket(rng: random.Random, i: int) -> Ticket:
    intent, template = rng.choice(TICKETS[:3] if i == 0 else TICKETS)  # the first is a refund
    order = f"A-{rng.randint(10000, 99999)}"
    user = f"user-{rng.randint(1, 40):03d}"
    text = template.format(order=order, email=f"{user}@example.com")
    return Ticket(f"T-{i:04d}", intent, text, order, user)


# -- model calls with retries and fallbacks ------------------------------------------------


def messages_for(prompt: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a careful support assistant for an online shop."},
        {"role": "user", "content": prompt.split("|", 1)[-1]},
    ]


def run_model_call(call: causeline.ModelCall, prompt: str, *, kind: str, fail: str | None = None) -> Completion:
    """Execute one (simulated) provider request inside the span ``call``."""
    with call:
        result = SIM.complete(call.provider, call.model, prompt, fail=fail, kind=kind)
        call.record_usage(
            input_tokens=result.input_tokens, output_tokens=result.output_tokens, cache_read=result.cache_read
        )
        call.record_response(model=result.model, finish_reasons=[result.finish_reason], output=result.text)
        if kind == "text":  # a reviewer's score, sent as an OpenTelemetry GenAI evaluation event (docs/evaluation.md)
            helpful = round(min(1.0, len(result.text) / 160), 2)
            call.span.add_event("gen_ai.evaluation.result", {
                "gen_ai.evaluation.name": "helpfulness", "gen_ai.evaluation.score.value": helpful,
                "gen_ai.evaluation.score.label": "helpful" if helpful >= 0.5 else "terse"})
    return result


def call_with_retry(
    provider: str, model: str, prompt: str, *, kind: str, rate_limit_p: float, retry_of: Any = None, attempts: int = 3,
    fail: str | None = None,
) -> tuple[Completion, causeline.ModelCall]:
    """Retry the same model on rate limits, backing off; each retry links to the attempt it repeats.
    The last attempt's rate limit is the caller's failure."""
    previous = retry_of
    for attempt in range(1, attempts + 1):
        this_fail = "rate_limit" if SIM.rate_limited(model, rate_limit_p) else fail
        # model_call() returns the handle before the span starts, so it stays
        # available as a link target after a failure.
        if previous is None:
            call = causeline.model_call(provider, model, input=messages_for(prompt), temperature=0.2, attempt=attempt)
        else:
            call = causeline.model_call(provider, model, input=messages_for(prompt), temperature=0.2, retry_of=previous)
        try:
            return run_model_call(call, prompt, kind=kind, fail=this_fail), call
        except RateLimitError:
            if attempt == attempts:
                raise
            previous = call
            SIM.sleep(2 ** attempt * 0.5, 2 ** attempt)  # exponential back-off
    raise AssertionError("unreachable")


def call_with_fallback(
    candidates: list[tuple[str, str]], prompt: str, *, kind: str, fail_first: bool, fail_all: bool, fail: str | None
) -> tuple[Completion, causeline.ModelCall]:
    """Try each provider in turn; a fallback links to the attempt that failed."""
    failed: causeline.ModelCall | None = None
    for index, (provider, model) in enumerate(candidates):
        this_fail = "timeout" if fail_all or (index == 0 and fail_first) else fail
        links = [causeline.fallback(of=failed)] if failed is not None else []
        call = causeline.model_call(
            provider,
            model,
            input=messages_for(prompt),
            temperature=0.2,
            max_tokens=800,
            attempt=None if failed is not None else 1,
            links=links,
        )
        try:
            return run_model_call(call, prompt, kind=kind, fail=this_fail), call
        except ProviderTimeout:
            failed = call
    raise ProviderTimeout("all model providers timed out")


# -- tools ------------------------------------------------------------------------------------


@causeline.tool("lookup_order")
def lookup_order(order_id: str) -> dict[str, Any]:
    """Fetch an order from the shop's order service."""
    SIM.sleep(0.04, 0.18)
    if SIM.fails("order_missing", 0.15):
        raise OrderNotFound(f"order {order_id} not found in region eu-west")
    return {"order_id": order_id, "status": SIM.rng.choice(["shipped", "processing", "delivered"]), "total_eur": 129.9}


@causeline.tool("search_knowledge_base")
def search_knowledge_base(query: str) -> list[str]:
    """Search help-center articles."""
    SIM.sleep(0.08, 0.3)
    return ["How refunds work", "Tracking your parcel"]


def issue_refund(order_id: str, amount: float, source_call: Any) -> str:
    with causeline.tool_call(
        "issue_refund",
        arguments={"order_id": order_id, "amount": amount},
        uses_output_of=source_call,
        description="Refund an order through the payment gateway.",
    ) as tool:
        SIM.sleep(0.3, 1.2)
        if SIM.fails("gateway", 0.12):
            raise PaymentGatewayError("payment gateway returned 502 Bad Gateway")
        refund_id = f"re_{SIM.rng.randint(100000, 999999)}"
        tool.set_result({"refund_id": refund_id, "status": "succeeded"})
        return refund_id


# -- agents -------------------------------------------------------------------------------------


@dataclass
class QueuedRefund:
    """Work the billing agent leaves for the refund worker, which runs later in its own trace."""

    ticket: Ticket
    amount: float
    handoff: causeline.SpanHandle
    draft: causeline.ModelCall


@causeline.step("classify-intent")
def classify(ticket: Ticket) -> str:
    candidates = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"]
    with causeline.routing_decision("model-router", candidates=candidates, policy="cost-first") as route:
        long_ticket = len(ticket.text) > 70
        model = "gpt-4o" if long_ticket and SIM.chance(0.3) else "gpt-4o-mini"
        route.choose(
            model,
            reason="long ticket needs the stronger model" if model == "gpt-4o" else "cheapest model that meets the SLA",
        )
        result, _ = call_with_retry("openai", model, f"{ticket.intent}|{ticket.text}", kind="intent", rate_limit_p=0.12)
    return result.text


@causeline.agent("billing")
def billing_agent(ticket: Ticket, order: dict[str, Any] | None) -> QueuedRefund:
    prompt = f"refund|Create a refund decision as JSON for: {ticket.text}"
    with causeline.step("draft-refund"):
        shows_all = "malformed" in SIM.forced  # the first refund: its draft must reach the guardrail
        roll = SIM.rng.random()
        result, call = call_with_fallback(
            [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5")],
            prompt,
            kind="refund",
            fail_first=SIM.fails("timeout", 0.3),
            fail_all=roll < 0.04 and not shows_all,
            fail="malformed" if SIM.fails("malformed", SIM.malformed_p("gpt-4o")) else None,
        )
        for _ in range(2):
            with causeline.guardrail("refund-json-schema", uses_output_of=call) as check:
                try:
                    decision = json.loads(result.text)
                except ValueError:
                    decision = None
                if decision is not None and isinstance(decision.get("amount"), (int, float)):
                    check.passed()
                    break
                check.blocked("model output is not valid refund JSON", action="retry")
            retry_fail = "malformed" if SIM.chance(SIM.malformed_p(call.model) / 2) else None
            result, call = call_with_retry(
                call.provider, call.model, prompt, kind="refund", rate_limit_p=0.0, retry_of=call, fail=retry_fail
            )
        else:
            raise ValueError("refund decision still malformed after retry")
    with causeline.handoff("refund-worker", mode="pass_control") as queued:
        pass  # the refund is queued; the worker picks it up later in its own trace
    return QueuedRefund(ticket, float(decision["amount"]), queued, call)


def refund_worker(job: QueuedRefund) -> str:
    with causeline.agent_run("refund-worker", handoff_from=job.handoff, user_id=job.ticket.user):
        with causeline.step("execute-refund"):
            refund_id = issue_refund(job.ticket.order_id, job.amount, job.draft)
    return f"Refund {refund_id} of {job.amount} EUR issued."


def triage_agent(ticket: Ticket, conversation_id: str) -> str | QueuedRefund:
    # The context-manager form: per-call attributes such as the conversation id.
    with causeline.agent_run("support-triage", conversation_id=conversation_id, user_id=ticket.user):
        intent = classify(ticket)
        with causeline.step("gather-context"):
            try:
                order = lookup_order(ticket.order_id)
            except OrderNotFound:
                order = None
                search_knowledge_base(re.sub(r"A-\d+", "", ticket.text)[:60])
        if intent == "refund":
            with causeline.handoff("billing", mode="pass_control"):
                return billing_agent(ticket, order)
        with causeline.step("answer"):
            # The trial alternates (no random draw: the rest of the week's story is unchanged).
            SIM.answers += 1
            model = "claude-haiku-4-5" if SIM.answers % 2 == 0 else "claude-sonnet-4-5"
            with causeline.routing_decision("answer-router", candidates=["claude-sonnet-4-5", "claude-haiku-4-5"],
                                            policy="a/b trial") as route:
                route.choose(model, reason="trial: half the answers on the cheaper model" if model == "claude-haiku-4-5"
                             else "default answer model")
                result, _ = call_with_retry("anthropic", model, f"answer|{ticket.text}", kind="text", rate_limit_p=0.0)
        return result.text


# -- when tickets arrive ----------------------------------------------------------------------------


def arrivals(runs: int, days: float, story: Story, rng: random.Random) -> list[float]:
    """`runs` start times over the `days` before the story's anchor, busier in working hours
    (UTC) and twelve times busier in the storm's hour (a newsletter went out); sorted."""
    start = story.anchor - days * HOUR * 24

    def weight(t: float) -> float:
        hour = time.gmtime(t).tm_hour
        w = 0.15 + math.exp(-(((hour - 14) / 4.0) ** 2))  # quiet nights, a peak mid-afternoon UTC
        return w * (STORM_TRAFFIC if story.in_storm(t) else 1.0)

    times = []
    while len(times) < runs:  # rejection sampling against the busiest weight
        t = rng.uniform(start, story.anchor - 300)
        if rng.random() * 1.15 * STORM_TRAFFIC < weight(t):
            times.append(t)
    return sorted(times)


# -- entry points ------------------------------------------------------------------------------------


def simulate(runs: int = 20, seed: int = 7, days: float = 1.0, clock: VirtualClock | None = None) -> dict[str, int]:
    """Run the agents on ``runs`` tickets; returns counts of ok/failed runs (refund worker runs included).

    With a ``clock`` the runs happen in its virtual time, spread over the last ``days``
    days; without one they happen now, with latencies shortened a thousandfold.
    Assumes causeline.init() was called (or not: then nothing is exported).
    """
    global SIM
    SIM = Simulator(seed, clock)
    starts = arrivals(runs, days, SIM.story, SIM.rng) if clock is not None else [None] * runs
    ok = failed = 0
    for i, start in enumerate(starts):
        if start is not None:
            clock.jump_to(start)
        ticket = make_ticket(SIM.rng, i)
        try:
            outcome = triage_agent(ticket, conversation_id=f"conv-{seed}-{i:04d}")
            ok += 1
        except Exception:  # the application logs the failure and serves the next ticket
            failed += 1
            continue
        if isinstance(outcome, QueuedRefund):
            SIM.sleep(5, 90)  # time in the queue
            try:
                refund_worker(outcome)
                ok += 1
            except Exception:
                failed += 1
    return {"ok": ok, "failed": failed}


def run_demo(endpoint: str, api_key: str, runs: int = 20, seed: int = 7, days: float = 1.0) -> int:
    """Send ``runs`` simulated support sessions over the last ``days`` days to the collector
    at ``endpoint``.

    Calls causeline.init() and causeline.shutdown() (so every span is flushed);
    returns the number of spans created.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    story_start = Story(anchor=math.floor(time.time() / HOUR) * HOUR).anchor - days * 24 * HOUR
    clock = VirtualClock(int(story_start * 1e9))
    otlp = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces",
                            headers={"Authorization": f"Bearer {api_key}"})
    causeline.init(
        service_name="causeline-demo",
        endpoint=endpoint,
        api_key=api_key,
        environment="demo",
        capture_content=True,
        auto_instrument=False,
        exporter=VirtualTimeExporter(otlp, clock),
        max_queue_size=100_000,
    )
    before = causeline.stats()["spans_ended"]
    simulate(runs, seed, days, clock)
    causeline.flush(timeout=30)
    created = causeline.stats()["spans_ended"] - before
    causeline.shutdown()
    return created


def main() -> None:
    parser = argparse.ArgumentParser(description="Send demo agent traces to Causeline.")
    parser.add_argument("--endpoint", default=os.environ.get("CAUSELINE_ENDPOINT", "http://127.0.0.1:4318"))
    parser.add_argument("--api-key", default=os.environ.get("CAUSELINE_API_KEY", ""))
    parser.add_argument("--runs", type=int, help="tickets to serve (default: 20, or 260 with --history)")
    parser.add_argument("--days", type=float, default=1.0, help="spread the runs over the last DAYS days")
    parser.add_argument("--history", action="store_true",
                        help="the history `causeline serve` loads: --days 8 and, unless given, --runs 260")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.history:
        args.days = 8.0  # a week before yesterday: enough days for yesterday's anomalies to be judged
    if args.runs is None:
        args.runs = 260 if args.history else 20
    started = time.monotonic()
    spans = run_demo(args.endpoint, args.api_key, args.runs, args.seed, args.days)
    stats = causeline.stats()
    print(
        f"demo: {args.runs} runs over {args.days:g} days, {spans} spans created, {stats['spans_exported']} exported, "
        f"{stats['spans_failed'] + stats['spans_dropped']} not delivered, in {time.monotonic() - started:.1f}s"
    )


if __name__ == "__main__":
    main()

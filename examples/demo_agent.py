"""A customer-support agent pair instrumented with the Causeline SDK.

No real model is called: a seeded simulator stands in for the providers, with
plausible token counts, latencies and the failures real agents meet:

* a rate limit (HTTP 429) on the classifier model, retried (``retry_of``);
* a provider timeout on gpt-4o, recovered by a fallback to Claude (``fallback_of``),
  and now and then both providers timing out (an unrecovered failure);
* an order lookup that fails, recovered by a knowledge-base search;
* malformed JSON from the model, blocked by a guardrail and retried;
* a payment gateway error (HTTP 502) that fails the run;
* a handoff from the triage agent to the billing agent (``handoff_from``),
  and data lineage from the model output to the refund tool (``data_from``).

It uses only the public SDK API. Run it against a collector:

    python examples/demo_agent.py --endpoint http://127.0.0.1:4318 --api-key <key> --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import causeline

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
}

TICKETS = [
    ("refund", "Order {order} arrived broken, I want my money back."),
    ("refund", "Please refund order {order}; I was charged twice on card 4111 1111 1111 1111."),
    ("refund", "Cancel {order} and refund me. Reach me at {email}."),
    ("status", "Where is my order {order}? It was due on Monday."),
    ("status", "Has {order} shipped yet?"),
    ("question", "Can I change the delivery address for {order}?"),
]


class Simulator:
    """All randomness of one demo session, from one seed."""

    def __init__(self, seed: int, time_scale: float = 1.0) -> None:
        self.rng = random.Random(seed)
        self.time_scale = time_scale

    def sleep(self, low: float, high: float) -> None:
        time.sleep(self.rng.uniform(low, high) * self.time_scale)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def complete(
        self, provider: str, model: str, prompt: str, *, fail: str | None = None, kind: str = "text"
    ) -> Completion:
        if fail == "timeout":
            self.sleep(0.03, 0.05)
            raise ProviderTimeout(f"{provider} request for {model} timed out after 30s")
        if fail == "rate_limit":
            self.sleep(0.002, 0.005)
            raise RateLimitError(f"Rate limit reached for {model} in organization org-demo on tokens per min (TPM)")
        self.sleep(0.008, 0.03)
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
                text = text[: len(text) // 2] + " ... I hope this helps!"
        else:
            text = "Thanks for reaching out! " + self.rng.choice(
                [
                    "Your parcel left our warehouse yesterday.",
                    "The address can be changed until dispatch.",
                    "It is on its way.",
                ]
            )
        return Completion(text, SERVED_MODEL.get(model, model), input_tokens, output_tokens, cache_read)


SIM: Simulator = Simulator(0)


@dataclass
class Ticket:
    id: str
    intent: str
    text: str
    order_id: str
    user: str


def make_ticket(rng: random.Random, i: int) -> Ticket:
    intent, template = rng.choice(TICKETS)
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
    return result


def call_with_retry(
    provider: str, model: str, prompt: str, *, kind: str, rate_limit_p: float, retry_of: Any = None, attempts: int = 3
) -> tuple[Completion, causeline.ModelCall]:
    """Retry the same model on rate limits; each retry links to the attempt it repeats."""
    previous = retry_of
    for attempt in range(1, attempts + 1):
        fail = "rate_limit" if attempt < attempts and SIM.chance(rate_limit_p) else None
        # model_call() returns the handle before the span starts, so it stays
        # available as a link target after a failure.
        if previous is None:
            call = causeline.model_call(provider, model, input=messages_for(prompt), temperature=0.2, attempt=attempt)
        else:
            call = causeline.model_call(provider, model, input=messages_for(prompt), temperature=0.2, retry_of=previous)
        try:
            return run_model_call(call, prompt, kind=kind, fail=fail), call
        except RateLimitError:
            previous = call
            SIM.sleep(0.005, 0.01)  # back off
    raise AssertionError("unreachable: the last attempt never fails with a rate limit")


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
    SIM.sleep(0.002, 0.006)
    if SIM.chance(0.15):
        raise OrderNotFound(f"order {order_id} not found in region eu-west")
    return {"order_id": order_id, "status": SIM.rng.choice(["shipped", "processing", "delivered"]), "total_eur": 129.9}


@causeline.tool("search_knowledge_base")
def search_knowledge_base(query: str) -> list[str]:
    """Search help-center articles."""
    SIM.sleep(0.002, 0.004)
    return ["How refunds work", "Tracking your parcel"]


def issue_refund(order_id: str, amount: float, source_call: Any) -> str:
    with causeline.tool_call(
        "issue_refund",
        arguments={"order_id": order_id, "amount": amount},
        uses_output_of=source_call,
        description="Refund an order through the payment gateway.",
    ) as tool:
        SIM.sleep(0.003, 0.008)
        if SIM.chance(0.08):
            raise PaymentGatewayError("payment gateway returned 502 Bad Gateway")
        refund_id = f"re_{SIM.rng.randint(100000, 999999)}"
        tool.set_result({"refund_id": refund_id, "status": "succeeded"})
        return refund_id


# -- agents -------------------------------------------------------------------------------------


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
        result, _ = call_with_retry("openai", model, f"{ticket.intent}|{ticket.text}", kind="intent", rate_limit_p=0.25)
    return result.text


@causeline.agent("billing")
def billing_agent(ticket: Ticket, order: dict[str, Any] | None) -> str:
    prompt = f"refund|Create a refund decision as JSON for: {ticket.text}"
    with causeline.step("draft-refund"):
        roll = SIM.rng.random()
        result, call = call_with_fallback(
            [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5")],
            prompt,
            kind="refund",
            fail_first=roll < 0.35,
            fail_all=roll < 0.05,
            fail="malformed" if SIM.chance(0.3) else None,
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
            result, call = call_with_retry(
                call.provider, call.model, prompt, kind="refund", rate_limit_p=0.0, retry_of=call
            )
        else:
            raise ValueError("refund decision still malformed after retry")
    with causeline.step("execute-refund"):
        refund_id = issue_refund(ticket.order_id, float(decision["amount"]), call)
    return f"Refund {refund_id} of {decision['amount']} EUR issued."


def triage_agent(ticket: Ticket, conversation_id: str) -> str:
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
            result, _ = call_with_retry(
                "anthropic", "claude-sonnet-4-5", f"answer|{ticket.text}", kind="text", rate_limit_p=0.1
            )
        return result.text


# -- entry points ------------------------------------------------------------------------------------


def simulate(runs: int = 20, seed: int = 7, time_scale: float = 1.0) -> dict[str, int]:
    """Run the agents on ``runs`` tickets; returns counts of ok/failed runs.

    Assumes causeline.init() was called (or not: then nothing is exported).
    """
    global SIM
    SIM = Simulator(seed, time_scale)
    ok = failed = 0
    for i in range(runs):
        ticket = make_ticket(SIM.rng, i)
        try:
            triage_agent(ticket, conversation_id=f"conv-{seed}-{i:04d}")
            ok += 1
        except Exception:  # the application logs the failure and serves the next ticket
            failed += 1
    return {"ok": ok, "failed": failed}


def run_demo(endpoint: str, api_key: str, runs: int = 20, seed: int = 7) -> int:
    """Send ``runs`` simulated support sessions to the collector at ``endpoint``.

    Calls causeline.init() and causeline.shutdown() (so every span is flushed);
    returns the number of spans created.
    """
    causeline.init(
        service_name="causeline-demo",
        endpoint=endpoint,
        api_key=api_key,
        environment="demo",
        capture_content=True,
        auto_instrument=False,
    )
    before = causeline.stats()["spans_ended"]
    simulate(runs, seed)
    causeline.flush(timeout=10)
    created = causeline.stats()["spans_ended"] - before
    causeline.shutdown()
    return created


def main() -> None:
    parser = argparse.ArgumentParser(description="Send demo agent traces to Causeline.")
    parser.add_argument("--endpoint", default=os.environ.get("CAUSELINE_ENDPOINT", "http://127.0.0.1:4318"))
    parser.add_argument("--api-key", default=os.environ.get("CAUSELINE_API_KEY", ""))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.monotonic()
    spans = run_demo(args.endpoint, args.api_key, args.runs, args.seed)
    stats = causeline.stats()
    print(
        f"demo: {args.runs} runs, {spans} spans created, {stats['spans_exported']} exported, "
        f"{stats['spans_failed'] + stats['spans_dropped']} not delivered, in {time.monotonic() - started:.1f}s"
    )


if __name__ == "__main__":
    main()

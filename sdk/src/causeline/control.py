"""Decisions in an agent's control flow: routing, guardrails and handoffs
(ARCHITECTURE.md section 6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context

from . import _internal
from . import attributes as A
from .handle import _INTERNAL, HANDOFF_KEY, SpanHandle, _clean_str_list, _is_error, _links_and_attempt, _with_user_attrs
from .links import LinkSpec
from .links import handoff_from as _handoff_link

# -- routing ------------------------------------------------------------------------------


class RoutingDecision(SpanHandle):
    """A ``route`` span: which candidate a router chose, why, under which policy."""

    __slots__ = ("chosen",)

    _before_start = SpanHandle._add_current_agent

    def choose(self, chosen: str, reason: str | None = None) -> RoutingDecision:
        """Record the decision (may be called once the choice is known)."""
        try:
            self.chosen = chosen
            self.span.set_attribute(A.ROUTE_CHOSEN, str(chosen))
            if reason is not None:
                self.span.set_attribute(A.ROUTE_REASON, str(reason))
        except Exception as exc:
            _internal.handle(exc, "choose")
        return self


def routing_decision(
    router: str,
    candidates: Sequence[str] | None = None,
    chosen: str | None = None,
    reason: str | None = None,
    policy: str | None = None,
    *,
    links: Sequence[Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> RoutingDecision:
    """Context manager for a routing decision (ARCHITECTURE.md section 6).

    Model calls made inside the block are its children; a call made later can
    link to it with ``links=[causeline.caused_by(decision)]``.
    """
    try:
        attrs: dict[str, Any] = {A.OPERATION_NAME: A.OP_ROUTE, A.ROUTE_ROUTER: router}
        if candidates is not None:
            attrs[A.ROUTE_CANDIDATES] = _clean_str_list(candidates)
        if chosen is not None:
            attrs[A.ROUTE_CHOSEN] = str(chosen)
        if reason is not None:
            attrs[A.ROUTE_REASON] = str(reason)
        if policy is not None:
            attrs[A.ROUTE_POLICY] = str(policy)
        lk, _ = _links_and_attempt(links, None, None, None, None, None)
        decision = RoutingDecision(f"{A.OP_ROUTE} {router}", _INTERNAL, _with_user_attrs(attrs, attributes), lk)
    except Exception as exc:
        _internal.handle(exc, "routing_decision")
        decision = RoutingDecision(f"route {router}")
    decision.chosen = chosen
    return decision


# -- guardrails -------------------------------------------------------------------------


class Guardrail(SpanHandle):
    """An ``apply_guardrail`` span with its verdict."""

    __slots__ = ("verdict",)

    _before_start = SpanHandle._add_current_agent

    def passed(self, action: str = "allow") -> Guardrail:
        """The checked content passed."""
        try:
            self.verdict = True
            self.span.set_attribute(A.GUARDRAIL_PASSED, True)
            self.span.set_attribute(A.GUARDRAIL_ACTION, action)
        except Exception as exc:
            _internal.handle(exc, "guardrail passed")
        return self

    def blocked(self, reason: str | None = None, action: str = "block") -> Guardrail:
        """The checked content was rejected; ``action`` says what happens next
        (``block``, ``retry`` or ``fallback``). Marks the span as an error
        (``error.type=guardrail_blocked``) without raising."""
        try:
            self.verdict = False
            self.span.set_attribute(A.GUARDRAIL_PASSED, False)
            self.span.set_attribute(A.GUARDRAIL_ACTION, action)
        except Exception as exc:
            _internal.handle(exc, "guardrail blocked")
        self.set_error("guardrail_blocked", reason or "guardrail blocked")
        return self

    def _finish(self, exc: BaseException | None) -> None:
        if not self._ended and self.verdict is None:
            if exc is not None and _is_error(exc):
                self.span.set_attribute(A.GUARDRAIL_PASSED, False)
                self.span.set_attribute(A.GUARDRAIL_ACTION, "block")
                self.verdict = False
            elif exc is None:
                self.passed()
        super()._finish(exc)


def guardrail(
    name: str,
    *,
    links: Sequence[Any] | None = None,
    uses_output_of: Any = None,
    attributes: Mapping[str, Any] | None = None,
) -> Guardrail:
    """Context manager for a guardrail/validation check.

    Call ``.passed()`` or ``.blocked(reason)`` inside the block. Leaving the
    block without a verdict counts as passed; an exception counts as blocked.
    """
    try:
        attrs: dict[str, Any] = {A.OPERATION_NAME: A.OP_APPLY_GUARDRAIL, A.GUARDRAIL_NAME: name}
        lk, _ = _links_and_attempt(links, None, None, uses_output_of, None, None)
        g = Guardrail(f"{A.OP_APPLY_GUARDRAIL} {name}", _INTERNAL, _with_user_attrs(attrs, attributes), lk)
    except Exception as exc:
        _internal.handle(exc, "guardrail")
        g = Guardrail(f"apply_guardrail {name}")
    g.verdict = None
    return g


# -- handoffs --------------------------------------------------------------------------------


class Handoff(SpanHandle):
    """An ``execute_tool`` span carrying ``gen_ai.transfer.*``: control passes to another agent."""

    __slots__ = ("to_agent",)

    _before_start = SpanHandle._add_current_agent

    def _context_values(self, ctx: Any) -> Any:
        # A list, emptied by the first agent run started inside the block (see AgentRun).
        return otel_context.set_value(HANDOFF_KEY, [self.span.get_span_context()], ctx)

    def link(self) -> LinkSpec:
        """A ``handoff_from`` link to this handoff, for an agent run started elsewhere."""
        return _handoff_link(self)


def handoff(
    to_agent: str,
    *,
    mode: str = "pass_control",
    target_type: str = "agent",
    links: Sequence[Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Handoff:
    """Context manager for a handoff to ``to_agent``.

    The first agent run started inside the block links back to it with
    ``handoff_from``; an agent started after the block ends can pass
    ``handoff_from=the_handoff``. ``mode`` is ``pass_control`` or ``return_to_caller``.
    """
    try:
        attrs: dict[str, Any] = {
            A.OPERATION_NAME: A.OP_EXECUTE_TOOL,
            A.TOOL_NAME: f"transfer_to_{to_agent}",
            A.TOOL_TYPE: "function",
            A.TRANSFER_MODE: mode,
            A.TRANSFER_TARGET_NAME: to_agent,
            A.TRANSFER_TARGET_TYPE: target_type,
        }
        lk, _ = _links_and_attempt(links, None, None, None, None, None)
        h = Handoff(f"{A.OP_EXECUTE_TOOL} transfer_to_{to_agent}", _INTERNAL, _with_user_attrs(attrs, attributes), lk)
    except Exception as exc:
        _internal.handle(exc, "handoff")
        h = Handoff(f"execute_tool transfer_to_{to_agent}")
    h.to_agent = to_agent
    return h

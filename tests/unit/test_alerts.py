"""core.alerts and core.alert_messages: rule checks, breaches, the state machine, backoff, renderings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.alert_messages import (
    email_parts, notification, pagerduty_event, signature, slack_message, trace_url, verify,
)
from core.alerts import (
    FIRING, OK, AlertState, Measurement, RuleError, breaches, dedup_key, evaluate, mask_secret, mask_target, next_attempt,
    parse_rule, period_start, rule_window, transition,
)

T0 = datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)
H = timedelta(hours=1)


RULE_CASES = [
    # (kind, params, threshold, window_s, renotify_s, error field or None)
    ("failure_rate", {"agent": "planner"}, 0.1, 3600, 3600, None),
    ("failure_rate", {}, 1.5, 3600, 3600, "threshold"),
    ("failure_rate", {"agent": "a", "step": "s"}, 0.1, 3600, 3600, "step"),
    ("failed_runs", {"step": "search"}, 3, 900, 0, None),
    ("error_rate", {"provider": "openai", "error_class": "rate_limit"}, 0.05, 600, None, None),
    ("error_rate", {"region": "eu"}, 0.05, 600, None, "region"),
    ("latency_p95", {"model": "gpt-4o"}, 2000, 3600, None, None),
    ("latency_p95", {}, None, 3600, None, "threshold"),
    ("latency_p95", {}, float("nan"), 3600, None, "threshold"),
    ("latency_p95", {}, -1, 3600, None, "threshold"),
    ("latency_p95", {}, 100, 60, None, "window_s"),
    ("latency_p95", {}, 100, 30 * 86400, None, "window_s"),
    ("latency_p95", {}, 100, 3600, 60, "renotify_s"),
    ("latency_p95", {"model": "a\nb"}, 100, 3600, None, "model"),
    ("cost", {"period": "month", "agent": "writer"}, 500, None, None, None),
    ("cost", {"period": "week"}, 5, None, None, "period"),
    ("cost", {"agent": "a", "user": "u"}, 5, None, None, "user"),
    ("new_root_cause", {}, None, 3600, None, None),
    ("new_root_cause", {"dimension": "colour"}, None, 3600, None, "dimension"),
    ("anomaly", {"metric": "latency_p95_ms"}, None, 7200, None, None),
    ("anomaly", {"metric": "vibes"}, None, 7200, None, "metric"),
    ("served_model_change", {"provider": "openai"}, None, 86400, None, None),
    ("mood", {}, 1, 3600, None, "kind"),
]


@pytest.mark.parametrize("kind,params,threshold,window_s,renotify_s,error", RULE_CASES)
def test_parse_rule_table(kind, params, threshold, window_s, renotify_s, error):
    if error:
        with pytest.raises(RuleError) as refused:
            parse_rule(kind, params, threshold, window_s, renotify_s)
        assert refused.value.field == error
    else:
        rule = parse_rule(kind, params, threshold, window_s, renotify_s)
        assert rule.kind == kind
        assert rule.is_event == (kind in ("new_root_cause", "anomaly", "served_model_change"))


def test_defaults():
    cost = parse_rule("cost", {}, 10, None, None)
    assert cost.params == {"period": "day"} and cost.renotify == timedelta(hours=4)
    assert parse_rule("new_root_cause", {}, 99, 3600, 0).threshold == 0.0  # events have no threshold
    assert parse_rule("new_root_cause", {}, None, 3600, 0).params == {"dimension": "error_class"}


@pytest.mark.parametrize("period,start", [
    ("hour", datetime(2026, 3, 14, 15, tzinfo=timezone.utc)),
    ("day", datetime(2026, 3, 14, tzinfo=timezone.utc)),
    ("month", datetime(2026, 3, 1, tzinfo=timezone.utc)),
])
def test_budget_periods(period, start):
    assert period_start(period, T0) == start
    assert rule_window(parse_rule("cost", {"period": period}, 1, None, None), T0) == (start, T0)


def test_windows_of_other_rules_trail_now():
    assert rule_window(parse_rule("failed_runs", {}, 1, 900, 0), T0) == (T0 - timedelta(minutes=15), T0)


BREACH_CASES = [
    # (kind, threshold, min_volume, value, volume, breaches)
    ("failure_rate", 0.1, 0, 0.2, 10, True),
    ("failure_rate", 0.1, 0, 0.1, 10, False),  # strictly above
    ("failure_rate", 0.1, 20, 0.5, 10, False),  # too few runs to judge
    ("failure_rate", 0.1, 0, None, 0, False),  # nothing to measure
    ("failed_runs", 0, 0, 1, 1, True),
    ("cost", 100, 0, 100.01, 0, True),
    ("latency_p95", 2000, 0, 1999.9, 100, False),
    ("anomaly", 0, 0, 1.0, 0, True),
]


@pytest.mark.parametrize("kind,threshold,min_volume,value,volume,expected", BREACH_CASES)
def test_breaches_table(kind, threshold, min_volume, value, volume, expected):
    rule = parse_rule(kind, {}, threshold, 3600, 0, min_volume)
    assert breaches(rule, Measurement("", value, volume)) is expected


FIRE = AlertState(FIRING, T0, T0)
OK_STATE = AlertState(OK, T0, T0)
TRANSITION_CASES = [
    # (name, prev, breaching, now, renotify, expected status, expected action)
    ("first breach fires", None, True, T0, H, FIRING, "firing"),
    ("breach after ok fires", OK_STATE, True, T0 + H, H, FIRING, "firing"),
    ("still breaching, before the interval: nothing (de-dup)", FIRE, True, T0 + 59 * timedelta(minutes=1), H,
     FIRING, None),
    ("still breaching at the interval: re-notify", FIRE, True, T0 + H, H, FIRING, "renotify"),
    ("renotify 0 never re-notifies", FIRE, True, T0 + 100 * H, timedelta(0), FIRING, None),
    ("stops breaching: resolve", FIRE, False, T0 + H, H, OK, "resolved"),
    ("ok and quiet: nothing", OK_STATE, False, T0 + H, H, OK, None),
    ("never seen and quiet: nothing", None, False, T0, H, OK, None),
]


@pytest.mark.parametrize("name,prev,breaching,now,renotify,status,action", TRANSITION_CASES,
                         ids=[c[0] for c in TRANSITION_CASES])
def test_transition_table(name, prev, breaching, now, renotify, status, action):
    state, got = transition(prev, breaching, now, renotify)
    assert (state.status, got) == (status, action)


def test_renotify_counts_from_the_last_notification():
    state, _ = transition(None, True, T0, H)
    state, action = transition(state, True, T0 + H, H)
    assert action == "renotify" and state.since == T0 and state.last_notified == T0 + H
    assert transition(state, True, T0 + H + timedelta(minutes=30), H)[1] is None
    assert transition(state, True, T0 + 2 * H, H)[1] == "renotify"


def test_fire_renotify_resolve_sequence():
    """A rule over time: fires once, re-notifies on schedule, resolves once."""
    rule = parse_rule("failed_runs", {}, 2, 900, 3600)
    values = [1, 3, 4, 5, 5, 5, 0, 0, 3]
    states: dict = {}
    actions = []
    for i, v in enumerate(values):
        now = T0 + i * timedelta(minutes=30)
        for t in evaluate(rule, states, [Measurement("", v, 1)], now):
            states[t.subject] = t.state
            actions.append((i, t.action))
    assert [a for a in actions if a[1]] == [(1, "firing"), (3, "renotify"), (5, "renotify"), (6, "resolved"),
                                           (8, "firing")]


def test_event_findings_resolve_when_they_leave_the_window():
    rule = parse_rule("anomaly", {}, None, 3600, 0)
    first = evaluate(rule, {}, [Measurement("openai/gpt-4o/error_rate@t1", 1.0)], T0)
    assert [(t.subject, t.action) for t in first] == [("openai/gpt-4o/error_rate@t1", "firing")]
    prev = {t.subject: t.state for t in first}
    later = evaluate(rule, prev, [Measurement("openai/gpt-4o/latency@t2", 1.0)], T0 + H)
    assert [(t.subject, t.action) for t in later] == [
        ("openai/gpt-4o/error_rate@t1", "resolved"), ("openai/gpt-4o/latency@t2", "firing")]


@pytest.mark.parametrize("attempts,delay", [
    (1, timedelta(seconds=10)), (2, timedelta(seconds=20)), (5, timedelta(seconds=160)),
    (9, timedelta(minutes=30)), (11, timedelta(minutes=30)), (12, None),
])
def test_backoff_table(attempts, delay):
    got = next_attempt(attempts, T0)
    assert (got - T0 if got else None) == delay


@pytest.mark.parametrize("secret,shown", [(None, None), ("", None), ("short", "••••"),
                                          ("whsec_0123456789abcdef", "••••cdef")])
def test_mask_secret(secret, shown):
    assert mask_secret(secret) == shown


@pytest.mark.parametrize(("kind", "target", "shown"), [
    ("webhook", "https://hooks.example.com/in/abc", "https://hooks.example.com/in/abc"),
    ("webhook", "https://hooks.example.com/in?token=s3cr3t&x=1", "https://hooks.example.com/in?••••"),
    ("webhook", "https://bot:s3cr3t@hooks.example.com:8443/in", "https://hooks.example.com:8443/in"),
    ("pagerduty", "https://events.pagerduty.com/v2/enqueue", "https://events.pagerduty.com/v2/enqueue"),
    ("email", "oncall@example.com", "oncall@example.com"),
    ("webhook", "not a url", "••••"),
])
def test_mask_target(kind, target, shown):
    assert mask_target(kind, target) == shown


def test_dedup_keys():
    assert dedup_key(7, "") == "causeline-rule-7"
    assert dedup_key(7, "openai") == "causeline-rule-7-openai"


def sample(event="firing", base="https://causeline.example.com"):
    return notification(
        idempotency_key="k-1", event=event, dedup_key="causeline-rule-1", project_slug="acme",
        rule={"id": 1, "name": "Planner <failing>", "kind": "failure_rate", "params": {"agent": "planner"},
              "threshold": 0.1},
        subject="", value=0.25, volume=40, since="2026-03-14T14:00:00+00:00", until="2026-03-14T15:00:00+00:00",
        evidence={"runs": 40, "failed_runs": 10, "example_traces": ["ab" * 16, "cd" * 16]},
        base_url=base, created_at="2026-03-14T15:00:00+00:00")


def test_notification_carries_the_evidence():
    n = sample()
    assert n["summary"] == "[FIRING] Planner <failing>: failure rate (agent=planner) 25.0% > 10.0%"
    assert n["evidence"] == {"runs": 40, "failed_runs": 10}
    assert n["examples"][0]["url"] == "https://causeline.example.com/traces/" + "ab" * 16 + "?project=acme"
    assert sample(base="")["examples"][0]["url"] is None


@pytest.mark.parametrize("kind,value,resolved,line", [
    ("failure_rate", 0.25, False, "failure rate (agent=a) 25.0% > 10.0%"),
    ("failure_rate", None, True, "failure rate (agent=a) no data ≤ 10.0%"),
    ("cost", 12.5, False, "cost (agent=a) $12.5 > budget $0.1"),
    ("latency_p95", 2500.0, True, "p95 latency (agent=a) 2500 ms ≤ 0.1 ms"),
    ("failed_runs", 3, False, "failed runs (agent=a) 3 > 0.1"),
    ("anomaly", 1.0, True, "anomaly (agent=a): openai/*/error_rate (no longer seen in the window)"),
])
def test_describe_table(kind, value, resolved, line):
    from core.alert_messages import describe

    assert describe(kind, {"agent": "a"}, 0.1, value, "openai/*/error_rate", resolved=resolved) == line


def test_signature_round_trip():
    body, t = b'{"a":1}', 1_764_600_000
    header = signature("s3cret", body, t)
    assert header.startswith(f"t={t},v1=") and len(header.split("v1=")[1]) == 64
    assert verify("s3cret", body, header, now=t + 10)
    assert not verify("s3cret", body + b" ", header, now=t)
    assert not verify("other", body, header, now=t)
    # replayed later than the tolerance, or with its time edited (the MAC covers it)
    assert not verify("s3cret", body, header, now=t + 301)
    assert not verify("s3cret", body, header.replace(f"t={t}", f"t={t + 200}"), now=t + 200)
    assert not verify("s3cret", body, "sha256=" + "0" * 64, now=t)
    assert not verify("s3cret", body, "", now=t)


def test_slack_escapes_and_links():
    message = slack_message(sample())
    text = message["blocks"][0]["text"]["text"]
    assert "&lt;failing&gt;" in text and "<failing>" not in text
    assert "|run abababab" in text


@pytest.mark.parametrize("event,action", [("firing", "trigger"), ("renotify", "trigger"), ("resolved", "resolve")])
def test_pagerduty_actions(event, action):
    e = pagerduty_event(sample(event), "rk")
    assert (e["event_action"], e["dedup_key"], e["routing_key"]) == (action, "causeline-rule-1", "rk")


def test_email_parts():
    subject, body = email_parts(sample())
    assert subject.startswith("[FIRING]") and "Idempotency key: k-1" in body and "failed_runs: 10" in body


def test_trace_url_quotes():
    assert trace_url("http://h/", "a b", "x/y") == "http://h/traces/x%2Fy?project=a+b"

"""Alert rules: what a rule is, when it breaches, and the firing/resolved state machine.

Pure (docs/alerts.md): `now` is always passed in. The evaluator (alerts/evaluator.py) measures
each rule with the read side's own queries, then asks `transition` what to do for every
subject of the rule (a threshold rule has one subject, ""; an event rule — new root cause,
anomaly, served-model change — one per finding). Each subject's state is kept in the
database, so de-duplication and the re-notify schedule survive restarts and are shared by
every server process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

# kind -> the parameters it accepts (all optional strings); the threshold's unit.
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "failure_rate": (("agent", "step"), "share of runs that failed (0..1)"),
    "failed_runs": (("agent", "step"), "failed runs"),
    "error_rate": (("provider", "model", "error_class"), "share of model calls that failed (0..1)"),
    "latency_p95": (("provider", "model"), "p95 latency of model calls, ms"),
    "cost": (("period", "agent", "user"), "USD spent in the current hour/day/month"),
    "new_root_cause": (("dimension",), "(none: any new root cause fires)"),
    "anomaly": (("metric", "provider", "model"), "(none: any anomaly fires)"),
    "served_model_change": (("provider", "model"), "(none: any change fires)"),
}
EVENT_KINDS = frozenset({"new_root_cause", "anomaly", "served_model_change"})
PERIODS = ("hour", "day", "month")
ROOT_CAUSE_DIMENSIONS = ("error_class", "step", "agent", "tool", "model", "provider")
ANOMALY_METRICS = ("error_rate", "latency_p95_ms", "cost_per_call_usd")
MIN_WINDOW = timedelta(minutes=5)
MAX_WINDOW = timedelta(days=7)
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_RENOTIFY = timedelta(hours=4)
CHANNEL_KINDS = ("webhook", "slack", "pagerduty", "email")
_TEXT = re.compile(r"^[^\x00-\x1f]{1,200}$")


class RuleError(ValueError):
    """A rule definition refused, with a message for a person; `field` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Rule:
    kind: str
    params: dict[str, str]
    threshold: float
    window: timedelta
    renotify: timedelta  # zero: never re-notify while firing
    min_volume: int = 0  # runs (failure rules) or calls (error rate, latency) below which no judgement

    @property
    def is_event(self) -> bool:
        return self.kind in EVENT_KINDS


def parse_rule(kind: str, params: dict, threshold: float | None, window_s: float | None,
               renotify_s: float | None, min_volume: int | None = None) -> Rule:
    """A rule from its definition (API or form), every field checked; raises RuleError."""
    if kind not in KINDS:
        raise RuleError("kind", f"kind must be one of {', '.join(KINDS)}")
    allowed, _ = KINDS[kind]
    clean: dict[str, str] = {}
    for name, value in (params or {}).items():
        if name not in allowed:
            raise RuleError(name, f"{kind} rules take {', '.join(allowed)}; not {name!r}")
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not _TEXT.match(value):
            raise RuleError(name, f"{name} must be text of 1 to 200 printable characters")
        clean[name] = value
    if kind in ("failure_rate", "failed_runs") and "step" in clean and "agent" in clean:
        raise RuleError("step", "name an agent or a step, not both")
    if kind == "cost":
        clean.setdefault("period", "day")
        if clean["period"] not in PERIODS:
            raise RuleError("period", f"period must be one of {', '.join(PERIODS)}")
        if "agent" in clean and "user" in clean:
            raise RuleError("user", "a budget is per agent or per user, not both")
    if kind == "new_root_cause":
        clean.setdefault("dimension", "error_class")
        if clean["dimension"] not in ROOT_CAUSE_DIMENSIONS:
            raise RuleError("dimension", f"dimension must be one of {', '.join(ROOT_CAUSE_DIMENSIONS)}")
    if kind == "anomaly" and clean.get("metric", ANOMALY_METRICS[0]) not in ANOMALY_METRICS:
        raise RuleError("metric", f"metric must be one of {', '.join(ANOMALY_METRICS)}")
    if kind in EVENT_KINDS:
        threshold = 0.0
    elif threshold is None:
        raise RuleError("threshold", "a threshold is required")
    elif not threshold >= 0 or threshold == float("inf"):  # also refuses NaN
        raise RuleError("threshold", "the threshold must be a finite number >= 0")
    elif kind in ("failure_rate", "error_rate") and threshold >= 1:
        raise RuleError("threshold", "a rate threshold is a share between 0 and 1 (0.1 = 10%)")
    window = DEFAULT_WINDOW if window_s is None else timedelta(seconds=window_s)
    if kind == "cost":
        window = DEFAULT_WINDOW  # the budget's period is the window
    elif not MIN_WINDOW <= window <= MAX_WINDOW:
        raise RuleError("window_s", f"the window must be between {MIN_WINDOW} and {MAX_WINDOW.days} days")
    renotify = DEFAULT_RENOTIFY if renotify_s is None else timedelta(seconds=renotify_s)
    if renotify and renotify < MIN_WINDOW:
        raise RuleError("renotify_s", "re-notify at most every 5 minutes (0: never)")
    if min_volume is not None and min_volume < 0:
        raise RuleError("min_volume", "the minimum volume must be >= 0")
    return Rule(kind, clean, float(threshold), window, renotify, min_volume or 0)


def period_start(period: str, now: datetime) -> datetime:
    """Start (UTC) of the budget period holding `now`: the current hour, day or month."""
    now = now.astimezone(timezone.utc)
    if period == "hour":
        return now.replace(minute=0, second=0, microsecond=0)
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"period must be one of {', '.join(PERIODS)}")


def rule_window(rule: Rule, now: datetime) -> tuple[datetime, datetime]:
    """[since, until) a rule judges at `now`."""
    if rule.kind == "cost":
        return period_start(rule.params["period"], now), now
    return now - rule.window, now


@dataclass(frozen=True)
class Measurement:
    """One subject's numbers for one evaluation: `value` None means not measurable (no
    volume), which never fires and resolves a firing alert."""

    subject: str
    value: float | None
    volume: int = 0
    evidence: dict = field(default_factory=dict)  # numbers, example trace ids, labels


def breaches(rule: Rule, m: Measurement) -> bool:
    """Above the threshold (strictly), with enough volume; an event finding always breaches."""
    if m.value is None:
        return False
    if rule.is_event:
        return True
    if rule.min_volume and m.volume < rule.min_volume:
        return False
    return m.value > rule.threshold


# --- the state machine ------------------------------------------------------------------

FIRING, OK = "firing", "ok"


@dataclass(frozen=True)
class AlertState:
    status: str  # FIRING or OK
    since: datetime  # when it entered this status
    last_notified: datetime | None


@dataclass(frozen=True)
class Transition:
    subject: str
    state: AlertState
    action: str | None  # "firing", "renotify", "resolved" or None (nothing to send)
    measurement: Measurement | None


def transition(prev: AlertState | None, breaching: bool, now: datetime, renotify: timedelta) -> tuple[AlertState, str | None]:
    """The next state of one subject and what to send: fire once on entering, re-notify every
    `renotify` while it lasts (never when zero), resolve once when it stops."""
    firing = prev is not None and prev.status == FIRING
    if breaching and not firing:
        return AlertState(FIRING, now, now), "firing"
    if breaching and firing:
        due = renotify > timedelta(0) and (prev.last_notified is None or now - prev.last_notified >= renotify)
        if due:
            return AlertState(FIRING, prev.since, now), "renotify"
        return prev, None
    if firing:
        return AlertState(OK, now, now), "resolved"
    return prev or AlertState(OK, now, None), None


def evaluate(rule: Rule, prev: dict[str, AlertState], measured: list[Measurement], now: datetime) -> list[Transition]:
    """Every subject measured now or firing before: its transition. A firing subject not
    measured any more (the finding left the window) resolves."""
    by_subject = {m.subject: m for m in measured}
    out = []
    for subject in sorted(set(by_subject) | {s for s, st in prev.items() if st.status == FIRING}):
        m = by_subject.get(subject)
        state, action = transition(prev.get(subject), m is not None and breaches(rule, m), now, rule.renotify)
        out.append(Transition(subject, state, action, m))
    return out


def dedup_key(rule_id: int, subject: str) -> str:
    """One alert = one rule and subject; receivers (PagerDuty) group trigger and resolve by it."""
    return f"causeline-rule-{rule_id}" + (f"-{subject}" if subject else "")


# --- delivery -----------------------------------------------------------------------------

BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_CAP = timedelta(minutes=30)
MAX_ATTEMPTS = 12  # ~2.5 hours of retries in all before a delivery is given up


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to retry after `attempts` failed tries (exponential, capped), or None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + min(BACKOFF_BASE * (2 ** (attempts - 1)), BACKOFF_CAP)


def mask_target(kind: str, target: str) -> str:
    """What the UI and API show of a channel's URL after creation: scheme, host and path only. A
    receiver's URL often carries its credential in the query or the user part (`?token=...`,
    `https://user:key@...`), and readers of the alert page are not all managers of its channels."""
    if kind not in ("webhook", "pagerduty"):
        return target
    parts = urlsplit(target)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    shown = f"{parts.scheme}://{host}{parts.path}"
    return shown + ("?••••" if parts.query else "") if parts.scheme else "••••"


def mask_secret(secret: str | None) -> str | None:
    """What the UI and API show of a stored secret after creation."""
    if not secret:
        return None
    return "••••" + secret[-4:] if len(secret) >= 12 else "••••"

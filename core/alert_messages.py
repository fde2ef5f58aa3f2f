"""What an alert notification says, and its shape for each channel (pure).

One notification (a dict, stored with its delivery before anything is sent) carries the
evidence: the numbers, the window, example runs with links. Each channel kind renders it:
a generic JSON webhook (the notification itself, HMAC-SHA256 signed with a timestamp), a Slack incoming
webhook message, a PagerDuty Events API v2 event, an e-mail. Every rendering carries the
delivery's idempotency key, so a receiver can drop the rare repeat after a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote, urlencode

SIGNATURE_HEADER = "X-Causeline-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_EXAMPLES = 3


def trace_url(base_url: str, project_slug: str, trace_id: str) -> str | None:
    """A link to a run on the configured public base URL (None when none is configured)."""
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/traces/{quote(trace_id, safe='')}?{urlencode({'project': project_slug})}"


def alerts_url(base_url: str, project_slug: str) -> str | None:
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/settings/alerts?{urlencode({'project': project_slug})}"


def _number(value) -> str:
    if value is None:
        return "no data"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return str(int(value)) if isinstance(value, float) else str(value)


def describe(kind: str, params: dict, threshold: float, value, subject: str, *, resolved: bool = False) -> str:
    """One line for a person: what was measured against what (`resolved`: back under it)."""
    scope = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    scope = f" ({scope})" if scope else ""
    op = "≤" if resolved else ">"
    if kind in ("failure_rate", "error_rate"):
        shown = "no data" if value is None else f"{value:.1%}"
        return f"{kind.replace('_', ' ')}{scope} {shown} {op} {threshold:.1%}"
    if kind == "cost":
        return f"cost{scope} ${_number(value)} {op} budget ${_number(threshold)}"
    if kind == "latency_p95":
        return f"p95 latency{scope} {_number(value)} ms {op} {_number(threshold)} ms"
    if kind == "failed_runs":
        return f"failed runs{scope} {_number(value)} {op} {_number(threshold)}"
    if kind == "test":
        return "this channel works"
    return f"{kind.replace('_', ' ')}{scope}: {subject}" + (" (no longer seen in the window)" if resolved else "")


def notification(*, idempotency_key: str, event: str, dedup_key: str, project_slug: str, rule: dict,
                 subject: str, value, volume: int, since: str, until: str, evidence: dict,
                 base_url: str, created_at: str) -> dict:
    """The notification of one delivery. `rule` holds id, name, kind, params, threshold; times are
    ISO strings; `evidence` may name example runs (`example_traces`: hex trace ids)."""
    status = "resolved" if event == "resolved" else "firing"
    examples = [{"trace_id": t, "url": trace_url(base_url, project_slug, t)}
                for t in evidence.get("example_traces", [])[:MAX_EXAMPLES]]
    line = describe(rule["kind"], rule.get("params", {}), rule["threshold"], value, subject,
                    resolved=event == "resolved")
    label = {"firing": "FIRING", "renotify": "STILL FIRING", "resolved": "RESOLVED", "test": "TEST"}[event]
    return {
        "idempotency_key": idempotency_key, "event": event, "status": status, "dedup_key": dedup_key,
        "project": project_slug, "rule": rule, "subject": subject or None, "value": value, "volume": volume,
        "window": {"since": since, "until": until},
        "evidence": {k: v for k, v in evidence.items() if k != "example_traces"},
        "examples": examples, "url": alerts_url(base_url, project_slug), "created_at": created_at,
        "summary": f"[{label}] {rule['name']}: {line}",
    }


def body_bytes(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


SIGNATURE_TOLERANCE_S = 300  # a receiver refuses a signature older than this (replayed requests)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a generic-webhook receiver checks: `t=<unix seconds>,v1=<hex>`, the
    HMAC-SHA256 of `<t>.` followed by the exact body. The signed time lets a receiver refuse a
    captured request replayed later; a retry is signed afresh when it is sent."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does: the MAC matches and the signed time is within `tolerance_s` of `now`."""
    fields = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, body, timestamp), header)


def slack_message(n: dict) -> dict:
    """Slack incoming-webhook format: plain `text` (fallback) and mrkdwn blocks. Data is put in
    as text only (Slack escapes &, <, > itself only when we do)."""
    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    lines = [f"*{esc(n['summary'])}*",
             f"Window: {n['window']['since']} – {n['window']['until']}"]
    lines += [f"{esc(k)}: {esc(str(v))}" for k, v in sorted(n["evidence"].items())]
    for ex in n["examples"]:
        lines.append(f"<{ex['url']}|run {ex['trace_id'][:16]}>" if ex["url"] else f"run {ex['trace_id']}")
    # Only fields incoming webhooks accept; the idempotency key travels in the request's header.
    return {"text": n["summary"], "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]}


def pagerduty_event(n: dict, routing_key: str) -> dict:
    """PagerDuty Events API v2: trigger while firing, resolve when resolved, one incident per
    dedup_key (re-notifications re-trigger the same incident)."""
    if n["event"] == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": n["dedup_key"]}
    event = {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": n["dedup_key"],
        "payload": {"summary": n["summary"][:1024], "source": f"causeline/{n['project']}",
                    "severity": "error" if n["event"] != "test" else "info",
                    "custom_details": {"value": n["value"], "window": n["window"], "evidence": n["evidence"],
                                       "idempotency_key": n["idempotency_key"]}},
    }
    links = [{"href": ex["url"], "text": f"run {ex['trace_id'][:16]}"} for ex in n["examples"] if ex["url"]]
    if links:
        event["links"] = links
    return event


def email_parts(n: dict) -> tuple[str, str]:
    """(subject, plain-text body)."""
    lines = [n["summary"], "", f"Project: {n['project']}",
             f"Window: {n['window']['since']} – {n['window']['until']}", f"Value: {n['value']}"]
    lines += [f"{k}: {v}" for k, v in sorted(n["evidence"].items())]
    if n["examples"]:
        lines += ["", "Example runs:"] + [f"  {ex['url'] or ex['trace_id']}" for ex in n["examples"]]
    if n["url"]:
        lines += ["", f"Alert rules: {n['url']}"]
    lines += ["", f"Idempotency key: {n['idempotency_key']}"]
    return n["summary"][:200], "\n".join(lines) + "\n"

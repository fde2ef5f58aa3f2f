"""The demo's alert rule: gpt-4o timeouts, which fires on the demo week's outage
(examples/demo_agent.py: gpt-4o times out 100 to 98 hours before the demo is loaded).

The demo's history is written in seconds, so the rule is evaluated over it afterwards as the
evaluator would have run (hourly, `replay`): it fires in the outage's hour and resolves the
hour after, which is what its state then shows. It has no channel: nothing leaves the machine.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from alerts.evaluator import replay, utcnow
from core.alerts import parse_rule
from db.queries.alerts import rule_by_name, save_rule
from db.queries.fleet import floor_hour

log = logging.getLogger("causeline.alerts")
NAME = "gpt-4o timeouts (demo)"
# More than half of gpt-4o's calls in an hour timed out, over at least 3 calls: outside the
# outage the demo's timeouts are single (a first attempt that falls back), so only the outage fires.
RULE = parse_rule("error_rate", {"provider": "openai", "model": "gpt-4o", "error_class": "timeout"},
                  threshold=0.5, window_s=3600, renotify_s=0, min_volume=3)
DEMO_DAYS = 8


def add_demo_rule(session, project_id: int) -> None:
    if rule_by_name(session, project_id, NAME) is None:
        save_rule(session, project_id, NAME, RULE, enabled=True, channel_ids=[])


def replay_demo_week(engine, sessions, settings, stop=None) -> None:
    """Evaluate hourly over the demo's days (run in the background: a few seconds of queries),
    until done or `stop` (a threading.Event) is set."""
    now = utcnow()
    try:
        replay(engine, sessions, settings, floor_hour(now - timedelta(days=DEMO_DAYS)), now, timedelta(hours=1),
               stop=stop)
    except Exception:  # noqa: BLE001 - the demo works without its alert history
        log.exception("replaying the demo week's alerts failed")

"""Retention and time partitions: the pure rules (no I/O).

`spans` is range-partitioned by UTC day of start_time (docs/scaling.md). A span lives until
its project's cutoff passes it; the cutoff is a UTC midnight, so with daily partitions a
uniform retention deletes nothing row by row: whole days are dropped. A project on legal
hold has no cutoff at all. Rollups have their own (longer) retention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

# The six-month floor of EU AI Act Articles 19 and 26(6) (logs kept at least six months).
DEFAULT_DAYS = 180
DEFAULT_ROLLUP_DAYS = 730
AHEAD_DAYS = 7  # partitions made ahead: a week of server downtime never sends spans to the default
MAX_DAYS = 36_600  # a century: beyond it timestamps leave what anyone means by retention

PARTITIONED = "spans"
DEFAULT_PARTITION = f"{PARTITIONED}_default"
_NAME = re.compile(rf"^{PARTITIONED}_p(\d{{8}})$")


@dataclass(frozen=True)
class Policy:
    """A project's retention; None fields take the server's defaults."""
    project_id: int
    days: int | None = None
    rollup_days: int | None = None
    legal_hold: bool = False
    hold_reason: str | None = None


@dataclass(frozen=True)
class Effective:
    project_id: int
    days: int
    rollup_days: int
    legal_hold: bool
    span_cutoff: datetime | None  # rows that started before it are past retention; None: on hold
    rollup_cutoff: datetime | None


def validate(days: int | None, rollup_days: int | None) -> None:
    """Raises ValueError with a message for a person."""
    for label, value in (("retention", days), ("rollup retention", rollup_days)):
        if value is not None and not 1 <= value <= MAX_DAYS:
            raise ValueError(f"{label} must be between 1 and {MAX_DAYS} days")
    if days is not None and rollup_days is not None and rollup_days < days:
        raise ValueError("rollups must be kept at least as long as spans (year-over-year cost views read them)")


def below_floor(days: int) -> bool:
    """Shorter than the six months deployers of high-risk systems must keep logs (Art. 19, 26(6))."""
    return days < DEFAULT_DAYS


def midnight(moment: datetime) -> datetime:
    moment = moment.astimezone(timezone.utc)
    return datetime.combine(moment.date(), time(), tzinfo=timezone.utc)


def effective(policy: Policy, now: datetime, *, default_days: int = DEFAULT_DAYS,
              default_rollup_days: int = DEFAULT_ROLLUP_DAYS) -> Effective:
    days = policy.days or default_days
    rollup_days = max(policy.rollup_days or default_rollup_days, days)
    today = midnight(now)
    hold = policy.legal_hold
    return Effective(policy.project_id, days, rollup_days, hold,
                     None if hold else today - timedelta(days=days),
                     None if hold else today - timedelta(days=rollup_days))


def partition_name(day: date) -> str:
    return f"{PARTITIONED}_p{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day a daily partition holds, from its name; None for any other table."""
    match = _NAME.match(name)
    return datetime.strptime(match.group(1), "%Y%m%d").date() if match else None


def is_partition(name: str) -> bool:
    return name == DEFAULT_PARTITION or partition_day(name) is not None


def bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def days_ahead(today: date, ahead: int) -> list[date]:
    """The days that must have a partition: today and the next `ahead` days."""
    return [today + timedelta(days=n) for n in range(ahead + 1)]


def blocking(upper: datetime, policies: list[Effective]) -> list[int]:
    """Projects whose rows, if any, keep a partition ending at `upper` from being dropped:
    those on hold and those whose cutoff has not yet passed the partition's end."""
    return sorted(p.project_id for p in policies if p.span_cutoff is None or p.span_cutoff < upper)



def describe(rule: Effective) -> str:
    """The retention in force, in one line (audit reports' cover)."""
    text = f"spans {rule.days} days, rollups {rule.rollup_days} days"
    if rule.legal_hold:
        return text + "; legal hold in force: nothing is deleted"
    return text + f"; spans before {rule.span_cutoff:%Y-%m-%d} are deleted"

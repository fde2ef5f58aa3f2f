"""The daily partitions of `spans`: created ahead of time, dropped when retention allows.

A new day is made as a plain table and then attached (ATTACH PARTITION takes only a SHARE
UPDATE EXCLUSIVE lock on `spans`, so ingest goes on; CREATE TABLE ... PARTITION OF would take
an exclusive one). Rows that reached spans_default before their day had a partition (a clock
far ahead) are moved into it first, or the attach would refuse. Every step runs under a short
lock_timeout: behind a long reader it gives up and the next round retries, instead of queueing
ingest behind itself. Functions take a connection and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from core.retention import DEFAULT_PARTITION, PARTITIONED, bounds, days_ahead, partition_day, partition_name

LOCK_TIMEOUT = "2s"
SHORT_LOCK_TIMEOUT = "200ms"
LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class Partition:
    name: str
    day: date | None  # None: the default partition

    @property
    def upper(self) -> datetime | None:
        return None if self.day is None else bounds(self.day)[1]


def is_partitioned(conn: Connection) -> bool:
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.oid = to_regclass(:t))"), {"t": PARTITIONED}).scalar())


def partitions(conn: Connection) -> list[Partition]:
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"), {"t": PARTITIONED}).scalars()
    return [Partition(name, partition_day(name)) for name in names
            if name == DEFAULT_PARTITION or partition_day(name) is not None]


def _literal(moment: datetime) -> str:
    return moment.isoformat(sep=" ")  # from a date we made: safe in DDL, which takes no parameters


def _columns(conn: Connection) -> str:
    return conn.execute(text(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
        # Generated columns (spans.digest) cannot be written: the new day computes its own.
        "WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"),
        {"t": PARTITIONED}).scalar_one()


def create_partition(conn: Connection, day: date) -> None:
    name = partition_name(day)
    lower, upper = bounds(day)
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(text(
        f"CREATE TABLE {name} (LIKE {PARTITIONED} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)"))
    columns = _columns(conn)
    if conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": DEFAULT_PARTITION}).scalar():
        conn.execute(text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE start_time >= :lo AND start_time < :hi "
            f"RETURNING {columns}) INSERT INTO {name} ({columns}) SELECT {columns} FROM moved"),
            {"lo": lower, "hi": upper})
    conn.execute(text(f"ALTER TABLE {PARTITIONED} ATTACH PARTITION {name} "
                      f"FOR VALUES FROM ('{_literal(lower)}') TO ('{_literal(upper)}')"))


def ensure_partitions(conn: Connection, today: date, ahead: int) -> list[date]:
    """Create the missing partitions for today and the next `ahead` days (and the default one);
    returns the days created. Does nothing on a schema whose spans is not partitioned."""
    if not is_partitioned(conn):
        return []
    present = partitions(conn)
    if not any(p.day is None for p in present):
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        conn.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {PARTITIONED} DEFAULT"))
    have = {p.day for p in present}
    created = [day for day in days_ahead(today, ahead) if day not in have]
    for day in created:
        create_partition(conn, day)
    return created


def _try(conn: Connection, statements: list[str], timeout: str) -> bool:
    """Run DDL that must never make others queue long: False (rolled back to a savepoint) when a
    lock was not granted within `timeout`."""
    conn.execute(text(f"SET LOCAL lock_timeout = '{timeout}'"))
    try:
        with conn.begin_nested():
            for statement in statements:
                conn.execute(text(statement))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        return False
    return True


def hold_still(conn: Connection, partition: Partition) -> bool:
    """Lock a day against new rows until the transaction ends (SHARE: readers go on, writers wait),
    so that what a check finds in it stays true until TRUNCATE or DETACH in the same transaction: a
    late span of a project on hold cannot slip in between. False when not had within the short
    timeout (the day is left for the next round)."""
    return _try(conn, [f"LOCK TABLE {partition.name} IN SHARE MODE"], SHORT_LOCK_TIMEOUT)


def empty_partition(conn: Connection, partition: Partition) -> bool:
    """Free an expired day's space at once: TRUNCATE locks this partition only, never `spans`
    (ingest does not write there; a reader scanning every partition may hold it: then False, and
    the batched deletes remove its rows instead). Commit before detach_partition."""
    if partition.day is None:
        raise ValueError("the default partition is never emptied")
    return _try(conn, [f"TRUNCATE {partition.name}"], SHORT_LOCK_TIMEOUT)


def detach_partition(conn: Connection, partition: Partition) -> bool:
    """Detach and drop an (emptied) day. DETACH needs an exclusive lock on `spans` (CONCURRENTLY
    is not allowed beside a default partition), so it waits at most SHORT_LOCK_TIMEOUT: ingest
    queues behind it no longer than that. False when `spans` was busy (the next round retries;
    an empty partition costs nothing meanwhile)."""
    if partition.day is None:
        raise ValueError("the default partition is never dropped")
    return _try(conn, [f"ALTER TABLE {PARTITIONED} DETACH PARTITION {partition.name}",
                       f"DROP TABLE {partition.name}"], SHORT_LOCK_TIMEOUT)


def has_rows_of(conn: Connection, partition: Partition, project_ids: list[int]) -> bool:
    if not project_ids:
        return False
    return bool(conn.execute(text(
        f"SELECT EXISTS (SELECT 1 FROM {partition.name} WHERE project_id = ANY(:ids))"), {"ids": project_ids}).scalar())


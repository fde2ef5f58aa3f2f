"""What audit reports read: span rows as stored, the digests of span records (for their
manifests), runs in a window, and guardrail spans. Query functions take a session and never
commit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Iterable, Iterator

from sqlalchemy import BigInteger, LargeBinary, Text, bindparam, case, cast, func, inspect, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from core.report_manifest import ALGORITHM, ALGORITHM_V2, PACKED, SPAN_BYTES, TRACE_BYTES
from db.models import SpanRow, TraceRow

# The record as stored, without its stored digest (a function of the rest).
SPAN_FIELDS = tuple(attr.key for attr in inspect(SpanRow).column_attrs if attr.key != "digest")
_COLUMNS = [getattr(SpanRow, k) for k in SPAN_FIELDS]
BATCH = 2000
COPY_ROWS = 8192  # manifest rows per chunk: a multiple of core.report_manifest.FOLD

# The fields a manifest digest covers, frozen: a span column added later must not change the
# digest of a record an earlier report covered (a new field means a new algorithm version).
DIGEST_FIELDS = (
    "project_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "category", "operation", "start_time",
    "end_time", "start_ns", "duration_ns", "status", "status_message", "error_type", "error_class", "service_name",
    "agent_name", "tool_name", "provider", "request_model", "response_model", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd", "cost_source", "reported_cost_usd",
    "session_id", "user_id", "input", "output", "attributes", "events", "links", "resource", "scope", "retry_kind",
    "ingested_at",
)
_BYTES = {"trace_id", "span_id", "parent_span_id"}
_TIMES = {"start_time", "end_time", "ingested_at"}


def _canonical_field(name: str):
    # Spelled out so the text does not depend on the session (TimeZone, bytea_output).
    column = getattr(SpanRow, name)
    if name in _BYTES:
        return func.encode(column, "hex")
    if name in _TIMES:
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    return column


def _leaf_v2():
    """SHA-256 of 0x00 || the record's text: PostgreSQL's row-value output of DIGEST_FIELDS in
    that order (fields quoted where needed, NULL empty, "" an empty string: one text per
    record). Reports made before v3 carry these digests."""
    record = func.row(*(_canonical_field(name) for name in DIGEST_FIELDS))
    return func.sha256(literal(b"\x00", LargeBinary).op("||", return_type=LargeBinary)(
        func.convert_to(cast(record, Text), "UTF8")))


def _leaf_v3():
    """SHA-256 of 0x00 || record_send(row(DIGEST_FIELDS)): PostgreSQL's binary encoding of the
    record (binary COPY's), each field as its type's send function gives it: a field count, then
    per field its type oid, length and bytes (-1 for NULL). Independent of the session (no
    TimeZone, no bytea_output, no DateStyle) and a third cheaper than the text form: no quoting
    pass over every character of the prompts and completions."""
    record = func.row(*(getattr(SpanRow, name) for name in DIGEST_FIELDS))
    return func.sha256(literal(b"\x00", LargeBinary).op("||", return_type=LargeBinary)(
        func.record_send(record, type_=LargeBinary)))


_LEAVES = {ALGORITHM: _leaf_v3, ALGORITHM_V2: _leaf_v2}


def leaf_digest(algorithm: str = ALGORITHM):
    """The leaf of core/report_manifest.py's tree, computed next to the row."""
    return _LEAVES[algorithm]()


def stored_leaf():
    """The v3 leaf as PostgreSQL stored it when the row was written (spans.digest, schema
    0023): what creating a report reads. Verifying never reads it: it recomputes leaf_digest
    from the row, so an edited or stale stored digest cannot vouch for a record."""
    return SpanRow.digest


def _digests(where) -> select:
    # Hex made by the database: a million rows need no conversion in Python.
    return (select(func.encode(SpanRow.trace_id, "hex"), func.encode(SpanRow.span_id, "hex"),
                   func.encode(stored_leaf(), "hex")).where(*where)
            .order_by(SpanRow.trace_id, SpanRow.span_id))


def trace_span_records(session: Session, project_id: int, trace_ids: Iterable[bytes]) -> list[dict]:
    ids = list(trace_ids)
    rows = session.execute(select(*_COLUMNS).where(SpanRow.project_id == project_id, SpanRow.trace_id.in_(ids))
                           .order_by(SpanRow.start_ns, SpanRow.trace_id, SpanRow.span_id))
    return [dict(zip(SPAN_FIELDS, r)) for r in rows]


def trace_span_digests(session: Session, project_id: int, trace_ids: Iterable[bytes]) -> list[tuple[str, str, str]]:
    """(trace_id, span_id, digest) hex of every span of the traces, in manifest order: the
    stored v3 leaves (an incident report's manifest when it is created)."""
    return [tuple(r) for r in session.execute(_digests((SpanRow.project_id == project_id,
                                                        SpanRow.trace_id.in_(list(trace_ids)))))]


def window_packed_entries(session: Session, project_id: int, since: datetime, until: datetime,
                          algorithm: str = ALGORITHM, *, stored: bool = False) -> Iterator[bytes]:
    """The manifest entries of the spans of runs that started in [since, until), packed as
    core/report_manifest.py packs them (trace id, span id, digest: 56 bytes), in manifest order,
    COPY_ROWS at a time. Creating a report (stored digests), the database concatenates each
    run's entries into one value (ordered by span id, runs by trace id): a row a run, not a row
    a span, so a million spans cost the client a hundred thousand rows to take apart, not a
    million (the row, not the bytes, is what costs in Python), and the grouping reads the
    primary key in order instead of sorting. Verifying reads a row a span (below).
    Through a binary COPY of the query: COPY streams (the memory does not grow with the window,
    only with the largest run: 56 bytes a span). An entry with an id of a size OTLP does not
    allow is NULL, which string_agg leaves out: the run's count of spans then disagrees with its
    bytes (ValueError here: the packed form cannot hold it). stored: read the digests stored at
    write time (creating a report: v3 only) instead of recomputing `algorithm`'s from the rows
    (verifying)."""
    if stored and algorithm != ALGORITHM:
        raise ValueError(f"only {ALGORITHM} leaves are stored")
    leaf = stored_leaf() if stored else leaf_digest(algorithm)
    runs = (select(TraceRow.trace_id).where(TraceRow.project_id == project_id, TraceRow.start_time >= since,
                                            TraceRow.start_time < until))
    packed = case(((func.length(SpanRow.trace_id) == TRACE_BYTES) & (func.length(SpanRow.span_id) == SPAN_BYTES),
                   SpanRow.trace_id.op("||", return_type=LargeBinary)(SpanRow.span_id)
                   .op("||", return_type=LargeBinary)(leaf)))
    where = (SpanRow.project_id == project_id, SpanRow.trace_id.in_(runs))
    if stored:
        stmt = (select(func.string_agg(packed, literal(b"", LargeBinary), type_=LargeBinary)
                       .aggregate_order_by(SpanRow.span_id), func.count())
                .where(*where).group_by(SpanRow.trace_id).order_by(SpanRow.trace_id))
    else:
        # Verifying recomputes every leaf (record_send and SHA-256 of each row, seconds of the
        # server's CPU for a million): a row a span, which PostgreSQL may spread over parallel
        # workers (Gather Merge); a grouped read is one backend's and would take twice as long.
        stmt = select(packed, cast(literal(1), BigInteger)).where(*where).order_by(SpanRow.trace_id, SpanRow.span_id)
    compiled = stmt.compile(dialect=session.get_bind().dialect)
    driver = session.connection().connection.driver_connection  # the session's own transaction
    chunk_bytes = COPY_ROWS * PACKED
    with driver.cursor() as cursor, cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT BINARY)",
                                                compiled.params) as copy:
        copy.set_types(["bytea", "int8"])
        pending, size = [], 0
        for run, count in copy.rows():
            if run is None or len(run) != count * PACKED:
                raise ValueError("a span record has a trace or span id of a size OTLP does not allow")
            pending.append(run)
            size += len(run)
            if size >= chunk_bytes:
                joined = b"".join(pending)
                cut = len(joined) - len(joined) % chunk_bytes
                yield from (joined[i:i + chunk_bytes] for i in range(0, cut, chunk_bytes))
                pending, size = ([joined[cut:]], len(joined) - cut) if cut < len(joined) else ([], 0)
        if pending:
            yield b"".join(pending)


def span_digests_by_key(session: Session, project_id: int, keys: Iterable[tuple[bytes, bytes]],
                        algorithm: str = ALGORITHM) -> dict[tuple[str, str], str]:
    """The digests (by `algorithm`'s canonical form) of the spans now stored under (trace_id,
    span_id), keyed by hex ids."""
    keys = list(keys)
    found: dict[tuple[str, str], str] = {}
    for i in range(0, len(keys), BATCH):
        # A join with the unnested keys walks the primary key once per key; a row-value IN list
        # of thousands of pairs is planned as a filter over the project's spans.
        wanted = func.unnest(bindparam("traces", [t for t, _ in keys[i:i + BATCH]], type_=ARRAY(LargeBinary)),
                             bindparam("spans", [s for _, s in keys[i:i + BATCH]], type_=ARRAY(LargeBinary))
                             ).table_valued("trace_id", "span_id").render_derived()
        rows = session.execute(select(func.encode(SpanRow.trace_id, "hex"), func.encode(SpanRow.span_id, "hex"),
                                      func.encode(leaf_digest(algorithm), "hex")).join(
            wanted, (SpanRow.trace_id == wanted.c.trace_id) & (SpanRow.span_id == wanted.c.span_id))
            .where(SpanRow.project_id == project_id))
        for trace_id, span_id, digest in rows:
            found[(trace_id, span_id)] = digest
    return found


def runs_in_window(session: Session, project_id: int, since: datetime, until: datetime,
                   limit: int) -> tuple[list[tuple], dict]:
    """The first `limit` runs that started in the window (oldest first), and totals over all."""
    where = (TraceRow.project_id == project_id, TraceRow.start_time >= since, TraceRow.start_time < until)
    rows = session.execute(select(TraceRow.trace_id, TraceRow.root_name, TraceRow.start_time, TraceRow.end_time,
                                  TraceRow.span_count, TraceRow.error_count, TraceRow.cost_usd)
                           .where(*where).order_by(TraceRow.start_time, TraceRow.trace_id).limit(limit)).all()
    totals = session.execute(select(
        func.count(), func.coalesce(func.sum(TraceRow.span_count), 0), func.coalesce(func.sum(TraceRow.llm_calls), 0),
        func.coalesce(func.sum(TraceRow.input_tokens), 0), func.coalesce(func.sum(TraceRow.output_tokens), 0),
        func.coalesce(func.sum(TraceRow.cost_usd), Decimal(0)), func.coalesce(func.sum(TraceRow.unpriced_calls), 0),
    ).where(*where)).one()
    keys = ("runs", "spans", "model_calls", "tokens_in", "tokens_out", "cost_usd", "unpriced_calls")
    return ([(r.trace_id.hex(), r.root_name, r.start_time, r.end_time, r.span_count, r.error_count, r.cost_usd)
             for r in rows], dict(zip(keys, totals)))


# The attributes core.failure.guardrail_blocked reads: only these leave the database.
GUARDRAIL_KEYS = ("causeline.guardrail.passed", "causeline.guardrail.action", "gen_ai.guardrail.triggered",
                  "triggered")


def guardrail_spans(session: Session, project_id: int, since: datetime, until: datetime) -> list[tuple]:
    """(name, category, attributes, count): guardrail spans in the window grouped by name and
    the attributes that say whether one blocked (GUARDRAIL_KEYS). Whether a group blocked is
    core.failure's rule, applied by the caller. Grouped by the database, so the answer stays
    small however many spans there are, and a plain query, so it may run in parallel."""
    values = [SpanRow.attributes[key].label(f"k{i}") for i, key in enumerate(GUARDRAIL_KEYS)]
    stmt = (select(SpanRow.name, SpanRow.category, *values, func.count())
            .where(SpanRow.project_id == project_id, SpanRow.start_time >= since, SpanRow.start_time < until,
                   (SpanRow.category == "guardrail") | SpanRow.attributes.has_key("causeline.guardrail.passed")
                   | SpanRow.attributes.has_key("causeline.guardrail.action"))
            .group_by(SpanRow.name, SpanRow.category, *values))
    return [(name, category, {k: v for k, v in zip(GUARDRAIL_KEYS, found) if v is not None}, count)
            for name, category, *found, count in session.execute(stmt)]

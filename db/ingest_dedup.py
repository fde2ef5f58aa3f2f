"""The ingest transaction's de-duplication step: which stored model calls count (core/model_call_dedup.py).

Runs inside write_encoded's transaction, after the statement that inserted the batch's spans and
upserted their `traces` rows, before the statement that writes the model-call rollups:
  1. FACTS_SQL reads, for the traces this transaction just upserted that could hold a recorded-twice
     call (a model call whose parent is present and not an agent or tool, or two model calls
     sharing a response id: a superset of what the rule links), every span of the trace, narrow
     (on one PostgreSQL only the partitions from the trace's start on);
  2. `changes()` applies the rule to each such trace and compares it with what is stored;
  3. the rollup statement (db/ingest.py) marks the spans whose state changes (span_duplicates),
     and its RETURNING drives the exact correction of `traces` and `usage_rollups` (minus a new duplicate's
     contribution, plus that of a span that counts again).

Concurrent writers: the insert statement's `traces` upsert holds the trace's row lock until commit, and
every writer upserts a trace before reading or marking its spans. The second writer on a trace
waits there, and its step 1 (a later statement, so a later snapshot) sees the first writer's
spans and marks: the state of a trace is only ever read and changed by the one transaction that
holds its row, so a correction is never applied twice and never missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from core.model_call_dedup import CHAIN_BREAKERS, CallFacts, duplicates, usage_kinds
from core.span import MODEL_CALL_CATEGORIES, Tokens


def sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


_MODEL = sql_list(MODEL_CALL_CATEGORIES)

# A model call that could be one recorded twice (a superset of what the rule links), `m` a span of the trace.
_COULD_BE_DUPLICATE = """EXISTS (SELECT 1 FROM spans p WHERE p.project_id = m.project_id AND p.trace_id = m.trace_id
                  AND p.span_id = m.parent_span_id AND p.category NOT IN {breakers}{since_p})
       OR (m.response_id IS NOT NULL AND EXISTS (
               SELECT 1 FROM spans o WHERE o.project_id = m.project_id AND o.trace_id = m.trace_id
               AND o.response_id = m.response_id AND o.span_id <> m.span_id AND o.category IN {model}{since_o}))"""
_FACT_COLUMNS = """s.project_id, s.trace_id, s.span_id, s.parent_span_id, s.category, s.response_id,
    s.input_tokens, s.output_tokens, s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens,
    s.cost_usd IS NOT NULL"""
_FACTS = """
WITH {keys}candidates AS (
    SELECT DISTINCT t.project_id, t.trace_id FROM {touched}
    JOIN spans m ON m.project_id = t.project_id AND m.trace_id = t.trace_id AND m.category IN {model}{only_m}
    WHERE """ + _COULD_BE_DUPLICATE.format(breakers="{breakers}", model="{model}", since_p="{only_p}",
                                           since_o="{only_o}") + """
)
SELECT """ + _FACT_COLUMNS + """, d.duplicate_of, d.reason
FROM candidates c JOIN spans s ON s.project_id = c.project_id AND s.trace_id = c.trace_id{only_s}
LEFT JOIN span_duplicates d ON d.project_id = s.project_id AND d.trace_id = s.trace_id AND d.span_id = s.span_id{only_d}
"""
# One PostgreSQL: every read of `spans` is bounded below by the trace's start (stage_touched holds
# traces.start_time as this batch left it: the earliest start of the trace's stored spans), so
# that the daily partitions older than the trace are pruned instead of probed for every lookup;
# and every read is a nested loop of index probes per touched trace, whatever the planner guesses
# of the never-analyzed staging table (LIMIT 1 / OFFSET 0 keep the subqueries from being flattened
# into a join it could turn into a scan of every model call stored).
_SINCE = " AND {}.start_time >= t.start_time"
FACTS_SQL = """
WITH candidates AS (
    SELECT t.project_id, t.trace_id, t.start_time FROM stage_touched t
    CROSS JOIN LATERAL (
        SELECT 1 FROM spans m
        WHERE m.project_id = t.project_id AND m.trace_id = t.trace_id AND m.category IN {model}""" + _SINCE.format("m") + """
            AND (""" + _COULD_BE_DUPLICATE + """)
        LIMIT 1) hit
)
SELECT s.*, d.duplicate_of, d.reason
FROM candidates c
CROSS JOIN LATERAL (
    SELECT """ + _FACT_COLUMNS + """ AS priced FROM spans s
    WHERE s.project_id = c.project_id AND s.trace_id = c.trace_id AND s.start_time >= c.start_time OFFSET 0) s
LEFT JOIN span_duplicates d ON d.project_id = s.project_id AND d.trace_id = s.trace_id AND d.span_id = s.span_id
"""
FACTS_SQL = FACTS_SQL.format(model=_MODEL, breakers=sql_list(CHAIN_BREAKERS), since_p=_SINCE.format("p"),
                             since_o=_SINCE.format("o"))
# Citus (db/ingest_citus.py): the touched traces as parameters, and `trace_id = ANY(...)` on every
# scan (implied by the joins, said again for Citus): given the traces of one shard, the statement
# is a router query on that shard. Parameters: touched_project, touched_trace.
_ONLY = " AND {t}.trace_id = ANY(%(touched_trace)s::bytea[])"
FACTS_BY_KEYS_SQL = _FACTS.format(
    keys="touched AS (SELECT * FROM unnest(%(touched_project)s::int8[], %(touched_trace)s::bytea[])"
         " AS k(project_id, trace_id)),\n",
    touched="touched t",
    model=_MODEL, breakers=sql_list(CHAIN_BREAKERS), only_m="\n       " + _ONLY.format(t="m"),
    only_s=_ONLY.format(t="s"), only_p=_ONLY.format(t="p"), only_o=_ONLY.format(t="o"), only_d=_ONLY.format(t="d"))


@dataclass
class Changes:
    """Spans whose marking changes, as parallel arrays for the rollup statement's unnest()."""
    project_id: list[int] = field(default_factory=list)
    trace_id: list[bytes] = field(default_factory=list)
    span_id: list[bytes] = field(default_factory=list)
    old_of: list[bytes | None] = field(default_factory=list)  # the stored value (guards the UPDATE)
    new_of: list[bytes | None] = field(default_factory=list)
    reason: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.span_id)

    def params(self) -> dict:
        return {"chg_project": self.project_id, "chg_trace": self.trace_id, "chg_span": self.span_id,
                "chg_old": self.old_of, "chg_new": self.new_of, "chg_reason": self.reason}


def changes(rows: Iterable[tuple]) -> Changes:
    """FACTS_SQL rows -> the spans whose stored marking differs from the rule's verdict."""
    traces: dict[tuple[int, bytes], list[tuple]] = {}
    for row in rows:
        traces.setdefault((row[0], row[1]), []).append(row)
    out = Changes()
    for (project_id, trace_id), spans in sorted(traces.items()):
        facts = [CallFacts(span_id, parent, category, rid, usage_kinds(Tokens(t_in, t_out, t_cr, t_cw, t_r)), priced)
                 for _, _, span_id, parent, category, rid, t_in, t_out, t_cr, t_cw, t_r, priced, _, _ in spans]
        verdict = duplicates(facts)
        for row in spans:
            span_id, old_of, old_reason = row[2], row[12], row[13]
            found = verdict.get(span_id)
            new_of, reason = (found.of, found.reason) if found else (None, None)
            if (new_of, reason) != (old_of, old_reason):
                out.project_id.append(project_id)
                out.trace_id.append(trace_id)
                out.span_id.append(span_id)
                out.old_of.append(old_of)
                out.new_of.append(new_of)
                out.reason.append(reason)
    return out

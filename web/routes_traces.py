"""The trace list and trace pages, and their htmx fragments.

Every fragment has a plain-link fallback so the pages work without JavaScript:
the "next page" row is a normal href (hx-get on top), and a span's detail is also
served inside the full trace page via `?span=<id>`.
"""

from __future__ import annotations

from dataclasses import replace

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from db.queries.lineage import Loaded
from db.queries.traces import (
    child_spans, get_span, get_trace, outline_rows, parents_among, span_edges, span_names, trace_row,
    trace_skeleton,
)
from pages.traces import trace_listing
from access.audit import record
from core.permissions import Principal
from web.auth import AppSettings, CurrentViewer, DbSession
from web.page import render_page
from web.render import render
from web.routes_replay import replay_models_for
from web.span_rows import row_views
from web.tree import (
    MAX_CHILDREN, MAX_ROWS, OPEN_DEPTH, MoreRow, Window, build_tree, child_rows, extent, with_columns,
)
from db.queries.forensics import trace_attribution, trace_cost_breakdown
from db.queries.judge_attributions import judge_view
from pages.forensics_schemas import judge_view_out, trace_costs_out
from pages.scores import run_scores
from web.views import (
    CURSOR_ERROR, HEX16, HEX32, PageFilters, attribution_view, edge_keys, edge_views, event_views, parse_hex, span_content,
)

router = APIRouter()
# Up to this many spans the trace page attributes inline; larger traces load the panel afterwards.
INLINE_ATTRIBUTION_SPANS = 2000


def _error_page(request: Request, viewer: Principal | None, status: int, title: str, message: str):
    return render(request, "error.html", {"viewer": viewer, "title": title, "message": message},
                  status_code=status)


@router.get("/")
def home():
    return RedirectResponse("/overview", status_code=303)


def _list_context(request: Request, session, viewer: Principal, filters: PageFilters, cursor: str) -> dict:
    run_filters, limit, cursor, errors = filters.parse(cursor, sees_content=viewer.sees_content)
    listing = None
    if not any(e != CURSOR_ERROR for e in errors):  # an invalid filter shows its error, never the unfiltered list
        listing = trace_listing(session, viewer, run_filters, limit=limit, cursor=cursor)
        if run_filters.search and viewer.sees_content and not cursor:
            record(session, request, viewer, "search", target=run_filters.search)
            session.commit()
    next_cursor = listing.page.next_cursor if listing else None
    next_query = filters.query(cursor=next_cursor) if next_cursor else None
    return {
        "viewer": viewer, "filters": filters, "errors": errors, "items": listing.page.items if listing else [],
        "totals": listing.totals if listing else None,
        "causes": listing.causes if listing else {}, "previews": listing.previews if listing else {},
        "next_href": f"/traces?{next_query}" if next_query else None,
        "next_fragment": f"/traces/rows?{next_query}" if next_query else None,
        "json_href": "/api/traces" + (f"?{q}" if (q := filters.query(cursor=cursor or "")) else ""),
        "paged": bool(cursor),
    }


# Query parameters arrive as plain strings on purpose (PageFilters as a dependency): a bad value
# becomes a message on the page, not FastAPI's JSON 422.
Filters = Annotated[PageFilters, Depends()]


@router.get("/traces")
def traces_page(request: Request, viewer: CurrentViewer, session: DbSession, filters: Filters, cursor: str = ""):
    context = _list_context(request, session, viewer, filters, cursor)
    return render_page(request, "traces.html", context, json_href=context["json_href"])


@router.get("/traces/rows")
def trace_rows_fragment(request: Request, viewer: CurrentViewer, session: DbSession, filters: Filters,
                        cursor: str = ""):
    """The rows for the filters as typed (htmx, as you type), or the next page of rows appended
    to the table (replacing the "next" row); the totals follow out of band."""
    return render(request, "_trace_rows.html",
                  {**_list_context(request, session, viewer, filters, cursor), "fragment": True})


def _span_context(session, viewer: Principal, trace_id: bytes, span, settings=None) -> dict:
    edges = span_edges(session, viewer.project_id, trace_id, span.span_id)
    names = span_names(session, viewer.project_id, edge_keys(edges))
    shown = span_content(span, viewer.sees_content)
    return {
        "span": span, "trace_hex": trace_id.hex(), "content": shown, "events": event_views(span, shown["events"]),
        "edges": edge_views(edges, names, focus=(trace_id, span.span_id)),
        "span_scores": run_scores(session, viewer.project_id, trace_id, content=viewer.sees_content,
                                  span_id=span.span_id),
        "replay_models": replay_models_for(settings, viewer, span),
    }


def _score_views(session, viewer: Principal, trace_id: bytes, spans) -> list[dict]:
    """The run's scores for the trace page, each with the name of the span it scores: from the
    spans read when they carry names, else from storage for the scored spans only."""
    outs = run_scores(session, viewer.project_id, trace_id, content=viewer.sees_content)
    scored = {o.span_id for o in outs if o.span_id}
    if spans is not None:
        names = {s.span_id.hex(): s.name for s in spans if s.span_id.hex() in scored} if scored else {}
    else:
        stored = span_names(session, viewer.project_id, [(trace_id, bytes.fromhex(h)) for h in sorted(scored)])
        names = {span.hex(): name for (_, span), name in stored.items()}
    return [{"score": out, "span_name": names.get(out.span_id) if out.span_id else None} for out in outs]


@router.get("/traces/{trace_id}")
def trace_page(request: Request, trace_id: str, viewer: CurrentViewer, session: DbSession, settings: AppSettings,
               span: str = ""):
    trace_bytes = parse_hex(trace_id, HEX32)
    if trace_bytes is None:
        return _error_page(request, viewer, 404, "Not a trace id",
                           "A trace id is 32 hexadecimal characters.")
    trace = trace_row(session, viewer.project_id, trace_bytes)
    if trace is None:
        return _error_page(request, viewer, 404, "Trace not found",
                           f"No trace {trace_id.lower()} in this project (yet).")
    inline = trace.span_count <= INLINE_ATTRIBUTION_SPANS
    # A small trace is read whole and attributed right here from the spans just read (the
    # trace is read once); a large one is read as a skeleton (ids, parents, times) that shapes
    # the tree, the columns of the rows rendered read after, its attribution loaded by the panel
    # itself (htmx) so the tree shows at once.
    read = get_trace if inline else trace_skeleton
    detail = read(session, viewer.project_id, trace_bytes, max_spans=settings.max_trace_spans, trace=trace)
    if detail is None:
        return _error_page(request, viewer, 404, "Trace not found",
                           f"No trace {trace_id.lower()} in this project (yet).")
    names = _lineage_names(session, viewer.project_id, detail, spans_named=inline)
    selected = None
    span_bytes = parse_hex(span, HEX16)
    if span_bytes is not None:
        found = get_span(session, viewer.project_id, trace_bytes, span_bytes)
        selected = _span_context(session, viewer, trace_bytes, found, settings) if found else None
        if selected is not None:
            _record_content_view(session, request, viewer, trace_bytes, span_bytes)
    attribution = costs = None
    if inline:
        loaded = Loaded(detail.trace, detail.spans, detail.truncated)
        attribution = attribution_view(trace_attribution(
            session, viewer.project_id, trace_bytes, loaded=loaded).attribution,
            _judge(session, viewer, trace_bytes))
        costs = trace_costs_out(trace_cost_breakdown(session, viewer.project_id, trace_bytes, loaded=loaded))
    start, end = extent(detail.spans) if detail.spans else (0, 0)
    window = Window(start, max(end - start, 1))
    rows = build_tree(detail.spans, open_depth=OPEN_DEPTH, max_rows=MAX_ROWS, max_children=MAX_CHILDREN,
                      reveal=span_bytes, window=window)
    if not inline:
        rows = with_columns(rows, outline_rows(session, detail.trace, [r.span.span_id for r in rows if not r.is_more]))
    selected_id = span_bytes.hex() if selected else None
    return render_page(request, "trace.html", {
        "viewer": viewer, "detail": detail, "trace": detail.trace, "trace_hex": trace_bytes.hex(),
        "rows": row_views(rows, trace_bytes.hex(), window, selected_id), "window": window,
        "lineage": edge_views(_in_span_order(detail), names),
        "selected": selected, "selected_id": selected_id,
        "span_missing": span_bytes.hex() if span_bytes is not None and selected is None else (
            span if span and span_bytes is None else None),
        "window_ns": end - start,
        "attribution": attribution, "costs": costs,
        "scores": _score_views(session, viewer, trace_bytes, detail.spans if inline else None),
    }, json_href=f"/api/traces/{trace_bytes.hex()}")


@router.get("/traces/{trace_id}/attribution")
def attribution_fragment(request: Request, trace_id: str, viewer: CurrentViewer, session: DbSession):
    """The Attribution panel of a large trace, loaded by the page once the tree shows (htmx)."""
    trace_bytes = parse_hex(trace_id, HEX32)
    if not request.headers.get("hx-request") and trace_bytes:
        return RedirectResponse(f"/api/traces/{trace_bytes.hex()}/attribution", status_code=303)
    result = trace_attribution(session, viewer.project_id, trace_bytes) if trace_bytes else None
    if result is None:
        return render(request, "_span_missing.html", {"span_id": trace_id}, status_code=404)
    return render(request, "_attribution.html", {
        "trace_hex": trace_bytes.hex(),
        "attribution": attribution_view(result.attribution, _judge(session, viewer, trace_bytes)),
    })


def _judge(session, viewer, trace_bytes: bytes):
    """The judge's view of the run, if judge-assisted attribution gave one (reasoning masked for
    viewers without content access)."""
    judged = judge_view(session, viewer.project_id, trace_bytes)
    return judge_view_out(judged, content=viewer.sees_content) if judged else None


@router.get("/traces/{trace_id}/costs")
def costs_fragment(request: Request, trace_id: str, viewer: CurrentViewer, session: DbSession):
    """The Costs panel of a large trace, loaded by the page once the tree shows (htmx); the
    same data as its JSON twin /api/traces/{id}/costs."""
    trace_bytes = parse_hex(trace_id, HEX32)
    if not request.headers.get("hx-request") and trace_bytes:
        return RedirectResponse(f"/api/traces/{trace_bytes.hex()}/costs", status_code=303)
    result = trace_cost_breakdown(session, viewer.project_id, trace_bytes) if trace_bytes else None
    if result is None:
        return render(request, "_span_missing.html", {"span_id": trace_id}, status_code=404)
    return render(request, "_costs.html", {"trace_hex": trace_bytes.hex(), "costs": trace_costs_out(result)})


@router.get("/traces/{trace_id}/children/{span_id}")
def children_fragment(request: Request, trace_id: str, span_id: str, viewer: CurrentViewer, session: DbSession,
                      offset: str = "0", depth: str = "1", w: str = "", head: str = "", selected: str = ""):
    """The next rows of the lazily expanded span tree (htmx): with `head`, the span's own row
    (now open) followed by its first children; otherwise the next page of its children."""
    trace_bytes, span_bytes = parse_hex(trace_id, HEX32), parse_hex(span_id, HEX16)
    if not request.headers.get("hx-request") and trace_bytes and span_bytes:
        return RedirectResponse(f"/traces/{trace_bytes.hex()}?span={span_bytes.hex()}", status_code=303)
    parent = get_span(session, viewer.project_id, trace_bytes, span_bytes) if trace_bytes and span_bytes else None
    if parent is None:
        return render(request, "_span_missing.html", {"span_id": span_id}, status_code=404)
    start = _whole(offset, 0)
    level = _whole(depth, 1) or 1
    window = _window_param(w) or Window(parent.start_ns, max(parent.duration_ns, 1))
    kids, more = child_spans(session, viewer.project_id, trace_bytes, span_bytes, offset=start, limit=MAX_CHILDREN)
    parents = parents_among(session, viewer.project_id, trace_bytes, [k.span_id for k in kids])
    rows: list = []
    if head and start == 0:
        own = child_rows([parent], {parent.span_id}, level - 1, window)[0]
        rows.append(replace(own, collapsed=False))
    rows.extend(child_rows(kids, parents, level, window))
    if more:
        rows.append(MoreRow(span_bytes, level, start + len(kids), None))
    return render(request, "_span_rows.html", {
        "rows": row_views(rows, trace_bytes.hex(), window, span_bytes.hex() if selected else None),
    })


def _whole(text: str, default: int) -> int:
    return int(text) if text.isdigit() and len(text) < 12 else default


def _window_param(text: str) -> Window | None:
    """The page's timeline window, carried by the expand links so loaded rows line up."""
    start, _, length = text.partition(".")
    if start.lstrip("-").isdigit() and length.isdigit() and int(length) > 0 and len(text) < 48:
        return Window(int(start), int(length))
    return None


def _lineage_names(session, project_id: int, detail, *, spans_named: bool) -> dict[tuple[bytes, bytes], str]:
    """Names of the spans the lineage edges name: from the spans read (if they carry names),
    else from storage."""
    keys = edge_keys(detail.edges)
    if not keys:
        return {}
    wanted = set(keys)
    names = {} if not spans_named else {
        (s.trace_id, s.span_id): s.name for s in detail.spans if (s.trace_id, s.span_id) in wanted}
    names.update(span_names(session, project_id, [k for k in keys if k not in names]))
    return names


def _in_span_order(detail):
    """Lineage rows follow the order of their source span in the trace; incoming edges from
    other traces come last."""
    if not detail.edges:
        return []
    order = {s.span_id: (s.start_ns, s.span_id) for s in detail.spans}  # a skeleton's spans come unsorted
    own, last = detail.trace.trace_id, (float("inf"), b"")
    return sorted(detail.edges, key=lambda e: (e.trace_id != own, order.get(e.span_id, last), e.relation))


@router.get("/traces/{trace_id}/spans/{span_id}")
def span_fragment(request: Request, trace_id: str, span_id: str, viewer: CurrentViewer, session: DbSession,
                  settings: AppSettings):
    """A span's detail panel for htmx; a plain browser visit goes to the full page instead."""
    trace_bytes, span_bytes = parse_hex(trace_id, HEX32), parse_hex(span_id, HEX16)
    if not request.headers.get("hx-request") and trace_bytes and span_bytes:
        return RedirectResponse(f"/traces/{trace_bytes.hex()}?span={span_bytes.hex()}", status_code=303)
    found = None
    if trace_bytes and span_bytes:
        found = get_span(session, viewer.project_id, trace_bytes, span_bytes)
    if found is None:
        return render(request, "_span_missing.html", {"span_id": span_id}, status_code=404)
    context = _span_context(session, viewer, trace_bytes, found, settings)
    _record_content_view(session, request, viewer, trace_bytes, span_bytes)
    return render(request, "_span_detail.html", context)


def _record_content_view(session, request: Request, viewer: Principal, trace_id: bytes, span_id: bytes) -> None:
    """Who saw captured content, in the audit trail (viewers see it masked: nothing to record)."""
    if viewer.sees_content:
        record(session, request, viewer, "span.view", target=f"{trace_id.hex()}/{span_id.hex()}")
        session.commit()

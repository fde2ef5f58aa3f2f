"""Fine-tuning export (docs/evaluation.md): the preview and the JSON Lines stream, shared by the
API, the Export page and `causeline export finetune`."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterator

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from core.finetune import export_lines, preview
from core.redaction import redact_text
from db.queries.finetune import ExportFilters, calls
from db.queries.redaction import redaction_policy


class ExportPreview(BaseModel):
    calls: int = Field(description="Model calls matching the filters (read up to the configured maximum).")
    examples: int = Field(description="Distinct usable examples: what the export writes.")
    duplicates: int
    unusable: int = Field(description="Calls without a captured prompt or answer.")
    input_tokens: int = Field(description="Of the examples, as the instrumentation reported them.")
    output_tokens: int
    since: datetime
    until: datetime
    limited: bool = Field(description="The maximum number of calls was reached: narrow the filters.")


def redactor(session: Session, project_id: int) -> Callable[[str], str]:
    # The project's current rules: text stored before a rule was added is redacted now too.
    policy = redaction_policy(session, project_id)
    return lambda text: redact_text(text, policy)[0] if policy.active else text


def export_preview(session: Session, project_id: int, filters: ExportFilters, max_calls: int) -> ExportPreview:
    counts = preview(calls(session, project_id, filters, limit=max_calls), redactor(session, project_id))
    return ExportPreview(calls=counts.calls, examples=counts.examples, duplicates=counts.duplicates,
                         unusable=counts.unusable, input_tokens=counts.input_tokens,
                         output_tokens=counts.output_tokens, since=filters.since, until=filters.until,
                         limited=counts.calls >= max_calls)


def export_stream(sessions: sessionmaker, project_id: int, filters: ExportFilters, fmt: str,
                  max_calls: int) -> Iterator[bytes]:
    """The JSON Lines, in its own session (a streamed answer outlives the request's)."""
    with sessions() as session:
        yield from export_lines(calls(session, project_id, filters, limit=max_calls), fmt,
                                redactor(session, project_id))

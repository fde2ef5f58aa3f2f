"""The Providers page: per provider and model over time, with served-model changes and
anomalies, for GET /api/providers and /providers. Both halves are the fleet builders
(pages/fleet.py) over the same filters and bucket, so markers line up with the series."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.orm import Session

from db.queries.fleet import Filters
from pages.fleet import anomaly_data, health_data
from pages.fleet_schemas import AnomaliesOut, ProviderHealthOut
from pages.scores import ScoreSummary, score_summary


class ProvidersOut(BaseModel):
    health: ProviderHealthOut
    anomalies: AnomaliesOut
    scores: ScoreSummary | None = None  # evaluation scores per score name and model, same window


def providers_data(session: Session, filters: Filters) -> ProvidersOut:
    health = health_data(session, filters, None)
    return ProvidersOut(health=health, anomalies=anomaly_data(session, filters, health.bucket, None),
                        scores=score_summary(session, filters.project_id, by="model", since=filters.since,
                                             until=filters.until))

"""GET /api/settings: the Settings page's JSON twin (keys, price overrides, members, roles, retention)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AppSettings, DbSession, ReadPrincipal
from pages.settings import SettingsOut, settings_data


def make_settings_router() -> APIRouter:
    router = APIRouter(tags=["settings"])

    @router.get("/settings", response_model=SettingsOut,
                summary="The project's keys (if you manage keys), price overrides, members and your permissions")
    def get_settings(principal: ReadPrincipal, session: DbSession, settings: AppSettings) -> SettingsOut:
        return settings_data(session, principal, settings)

    return router

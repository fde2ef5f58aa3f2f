"""The web fixtures (app, client, seeded project) for the HTTP tests of alerts, with settings that
let channels deliver to the loopback receivers the tests start."""

import pytest

from core.settings import Settings
from tests.web.conftest import app, client, seeded  # noqa: F401 - pytest fixtures


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(database_url=database_url, demo="off", alerts_allow_private_targets=True)

"""The web fixtures (app, client, seeded project, settings) for the HTTP tests of alerts."""

from tests.web.conftest import app, client, seeded, settings  # noqa: F401 - pytest fixtures

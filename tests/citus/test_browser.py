"""The trace list and a trace page in real Chromium, served against the Citus coordinator:
filtering and paging as you type, the costs panel, hostile text never run (the browser tests of
tests/web, through tests/web/browser.py)."""

from tests.web.conftest import app, client, seeded, settings  # noqa: F401
from tests.web.test_traces_browser import (  # noqa: F401
    listed,
    test_filters_update_the_list_as_you_type_and_keep_paging,
    test_trace_page_shows_the_costs_panel_and_never_runs_hostile_text,
)

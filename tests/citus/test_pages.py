"""The Overview, search and a large trace's pages on Citus (server-rendered, with their JSON twins;
the large trace's skeleton is read through the driver's own cursor, db.engine.plain_rows).

Not here: the Providers page and the other-project Overview test, which read score breakdowns
joining `scores` (by project) with `spans` (by trace), a join Citus refuses (docs/scaling.md)."""

from tests.web.conftest import app, client, seeded, settings  # noqa: F401
from tests.web.test_overview import (  # noqa: F401
    outage,
    test_overview_counts_runs_by_outcome_and_links_each_number,
    test_recent_failed_runs_name_the_failed_run_and_its_root_cause,
)
from tests.web.test_trace_search import test_search_matches_names_and_content_and_is_audited  # noqa: F401
from tests.web.test_trace_tree import (  # noqa: F401
    test_a_large_trace_is_read_as_a_skeleton_and_only_the_rendered_rows_in_full,
)

"""The trace list and detail API on Citus: filters, cursor pagination across shards, project
isolation, one trace's detail."""

from tests.api.conftest import client, settings  # noqa: F401
from tests.api.test_traces_api import (  # noqa: F401
    acme,
    test_cursor_pagination_has_no_duplicates_or_gaps,
    test_filters,
    test_list_summarizes_the_rollup,
    test_project_isolation,
    test_trace_detail,
)

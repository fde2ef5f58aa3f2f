"""/api/failures from failure_rollups (distributed by project) answers as from trace_failures on
Citus, through re-attribution (a module of its own: it attributes the scenario's runs itself)."""

from tests.forensics.conftest import scenario_env  # noqa: F401
from tests.forensics.test_failure_rollups import (  # noqa: F401
    test_rollup_answers_as_trace_failures_through_reattribution,
)

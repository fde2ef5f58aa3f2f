"""Fleet queries on Citus: /api/costs, provider health, anomalies (served from the rollups,
distributed by project)."""

from tests.api.conftest import client, settings  # noqa: F401
from tests.api.test_fleet_api import (  # noqa: F401
    auth,
    scenario,
    test_anomalies_on_a_synthetic_day,
    test_costs_by_model_exact_with_unpriced_separate,
    test_exact_window_counts_each_edge_call_once,
    test_provider_health,
    test_redelivery_counts_nothing_twice_in_the_new_rollups,
)
from tests.api.test_provider_rollups import (  # noqa: F401, E402
    month,
    test_costs_answer_as_before_with_exact_edges,
    test_provider_health_and_anomalies_answer_as_before,
    test_series_are_the_old_queries_answers,
    test_the_narrow_rollup_is_usage_rollups_summed_over_service_and_agent,
)

"""Forensics on Citus: the background attributor's and evaluator's claims (FOR UPDATE SKIP LOCKED),
the attribution of failed traces read together or one by one, including failures that cross into a
linked trace (another shard)."""

from tests.collector.test_evaluation_claims import test_two_evaluation_passes_skip_each_others_runs  # noqa: F401
from tests.forensics.conftest import scenario_env  # noqa: F401
from tests.forensics.test_attributor_batches import (  # noqa: F401
    test_small_failed_runs_are_read_together_and_attributed_as_alone,
    test_two_attribution_passes_skip_each_others_runs,
)
from tests.forensics.test_attributor import (  # noqa: F401
    test_claims_skip_locked_traces,
    test_error_free_traces_settle_in_bulk_unless_linked_to_a_failure,
    test_pending_quiet_period_claim_and_recompute_on_update,
)
from tests.forensics.test_scenarios import (  # noqa: F401
    test_failures_across_traces,
    test_provider_timeout_recovered_by_fallback,
    test_trace_costs_by_step_agent_model_and_requested_vs_served,
    test_trace_spread_over_two_linked_traces,
)

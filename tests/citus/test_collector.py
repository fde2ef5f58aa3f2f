"""The collector's core path on Citus: OTLP/HTTP ingest, redelivery, exact rollups, model-call
de-duplication, evaluation events. The tests are the ones of tests/collector, collected here and
run against the cluster (tests/citus/conftest.py)."""

from tests.collector.test_evaluation_events import (  # noqa: F401
    test_background_evaluator_scores_span_events_and_model_outputs,
    test_json_evaluation_records_redelivered_and_refused,
)
from tests.collector.test_ingest_http import (  # noqa: F401
    test_children_before_parents_across_requests,
    test_links_become_typed_edges_across_traces,
    test_protobuf_export_is_stored_with_rollups,
    test_redelivery_stores_and_counts_nothing_twice,
)
from tests.collector.test_model_call_dedup import (  # noqa: F401
    test_nested_duplicate_in_one_request_counts_once,
    test_the_better_span_arriving_later_takes_over_exactly,
)

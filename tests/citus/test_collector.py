"""The collector's core path on Citus: OTLP/HTTP ingest, redelivery, exact rollups."""

from tests.collector.test_ingest_http import (  # noqa: F401  (collected here, run on the cluster)
    test_children_before_parents_across_requests,
    test_links_become_typed_edges_across_traces,
    test_protobuf_export_is_stored_with_rollups,
    test_redelivery_stores_and_counts_nothing_twice,
)

"""Partitions and retention on Citus (spans is a distributed partitioned table): days made ahead
are distributed as they are attached and take over the rows that reached the default partition
first; expired days are truncated, detached and dropped with their shards; days shared with a
project that keeps them are deleted in batches; legal hold; redelivery across partitions. The
tests of tests/storage, against the cluster (its fixture drops the days a test made)."""

from tests.storage.test_retention import (  # noqa: F401
    projects,
    test_a_busy_day_is_not_waited_for_its_rows_go_in_batches_and_it_is_dropped_later,
    test_a_redelivered_span_lands_once_even_after_its_day_got_a_partition,
    test_a_span_being_written_into_an_expired_day_keeps_the_day_from_being_truncated,
    test_expired_days_are_dropped_whole_and_the_rest_kept,
    test_legal_hold_suspends_deletion_until_released,
    test_partitions_are_made_ahead_and_take_over_rows_from_the_default,
    test_projects_with_different_retention_share_a_day_deleted_in_batches,
    test_rollups_keep_their_own_longer_retention,
    test_spans_far_outside_the_window_are_stored_once,
    test_the_thread_makes_partitions_at_start_and_deletes_nothing_in_its_first_round,
    writer,
)

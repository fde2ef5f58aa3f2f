"""Partitions and retention on Citus: days made ahead (distributed as they are attached), expired
days dropped whole, projects with different retention deleted in batches, legal hold."""

from tests.storage.test_retention import (  # noqa: F401
    projects,
    test_expired_days_are_dropped_whole_and_the_rest_kept,
    test_legal_hold_suspends_deletion_until_released,
    test_partitions_are_made_ahead_and_take_over_rows_from_the_default,
    test_projects_with_different_retention_share_a_day_deleted_in_batches,
    writer,
)

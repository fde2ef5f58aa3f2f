"""Partitions on Citus: days made ahead are distributed as they are attached, and take over the
rows that reached the default partition first. (The retention tests proper assume a database of
their own, with no other test's partitions: not run here yet, see docs/scaling.md.)"""

from tests.storage.test_retention import (  # noqa: F401
    projects,
    test_partitions_are_made_ahead_and_take_over_rows_from_the_default,
    writer,
)

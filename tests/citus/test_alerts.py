"""Alerts on Citus: rules evaluated over the distributed tables, deliveries claimed with
FOR UPDATE SKIP LOCKED on the reference table alert_deliveries, retried, never doubled."""

from tests.alerts.test_evaluator import (  # noqa: F401
    outage,
    receiver,
    test_a_receiver_that_is_down_gets_the_retries_and_nothing_is_lost_or_doubled,
    test_fires_once_renotifies_on_schedule_resolves,
)

"""The alert evaluator end to end: real PostgreSQL with the outage seeded through the write path
and failure attribution, receivers on loopback, time driven explicitly (`now`), no sleeping.

Outage (tests/web/outage.py), in hour H: 1 run failed at H+6 min (gpt-4o timed out, no
fallback), 2 recovered (H+4, H+5 min), gpt-4o 3 errors in 7 calls; a served-model change at H+1h.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from alerts.evaluator import deliver_due, record_test_notification, run_cycle, CycleResult
from core.alert_messages import SIGNATURE_HEADER, verify
from core.alerts import mask_secret, parse_rule
from core.settings import Settings
from db.models import AlertChannel, AlertDelivery
from alerts.secret_box import SecretBox
from db.queries.alerts import add_channel, release_evaluator_lock, save_rule, try_evaluator_lock
from db.queries.auth import create_project
from tests.alerts.receivers import HttpReceiver, SmtpReceiver
from tests.web.outage import seed_outage

MIN = timedelta(minutes=1)
SECRET = "whsec_test_0123456789"


@pytest.fixture
def receiver():
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture
def outage(database_url, sessionmaker):
    with sessionmaker.begin() as session:
        project_id = create_project(session, "acme").id
    return project_id, seed_outage(database_url, sessionmaker, project_id)


def settings(**extra) -> Settings:
    return Settings(public_base_url="https://causeline.example.com", smtp_starttls=False,
                    alerts_allow_private_targets=True, **extra)  # the receivers listen on loopback


def add_rule(sessionmaker, project_id, channel_ids, kind="failed_runs", params=None, threshold=0, window_s=3600,
             renotify_s=1800, name="failed runs"):
    with sessionmaker.begin() as session:
        return save_rule(session, project_id, name, parse_rule(kind, params or {}, threshold, window_s, renotify_s),
                         enabled=True, channel_ids=channel_ids).id


def store_channel(session, project_id, *, name, kind, target, secret):
    """A channel stored as put_channel stores it: the secret encrypted."""
    return add_channel(session, project_id, name=name, kind=kind, target=target,
                       secret=SecretBox.from_settings(settings()).seal(secret), secret_hint=mask_secret(secret))


def webhook(sessionmaker, project_id, receiver, kind="webhook", secret=SECRET, name="hook"):
    with sessionmaker.begin() as session:
        target = receiver.url() if kind != "slack" else ""
        if kind == "slack":
            secret = receiver.url("/slack")
        return store_channel(session, project_id, name=name, kind=kind, target=target, secret=secret).id


def deliveries(sessionmaker):
    with sessionmaker() as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def test_fires_once_renotifies_on_schedule_resolves(engine, sessionmaker, outage, receiver):
    project_id, o = outage
    rule_id = add_rule(sessionmaker, project_id, [webhook(sessionmaker, project_id, receiver)])
    s = settings()
    timeline = [(6.5, "firing"), (7, None), (20, None), (36, None), (37, "renotify"), (50, None), (67, "resolved"),
                (80, None)]
    for minutes, expected in timeline:
        before = len(receiver.received)
        result = run_cycle(engine, sessionmaker, s, o.hour + minutes * MIN)
        assert result is not None and not result.errors
        got = [r.json["event"] for r in receiver.received[before:]]
        assert got == ([expected] if expected else []), f"at H+{minutes} min"

    first = receiver.received[0]
    assert verify(SECRET, first.body, first.headers[SIGNATURE_HEADER.lower()], now=time.time())
    n = first.json
    assert n["rule"]["id"] == rule_id and n["value"] == 1 and n["evidence"]["failed_runs"] == 1
    assert n["window"] == {"since": (o.hour + 6.5 * MIN - timedelta(hours=1)).isoformat(),
                           "until": (o.hour + 6.5 * MIN).isoformat()}
    assert n["examples"] == [{"trace_id": o.failed[0].hex(),
                              "url": f"https://causeline.example.com/traces/{o.failed[0].hex()}?project=acme"}]
    assert first.headers["idempotency-key"] == n["idempotency_key"]
    keys = [r.json["idempotency_key"] for r in receiver.received]
    assert len(set(keys)) == len(keys) == 3
    assert {d.status for d in deliveries(sessionmaker)} == {"sent"}


def test_a_receiver_that_is_down_gets_the_retries_and_nothing_is_lost_or_doubled(engine, sessionmaker, outage,
                                                                                  receiver):
    project_id, o = outage
    add_rule(sessionmaker, project_id, [webhook(sessionmaker, project_id, receiver)], renotify_s=0)
    s = settings()
    receiver.down = True
    t = o.hour + 6.5 * MIN
    run_cycle(engine, sessionmaker, s, t)  # attempt 1 fails; retry due in 10 s
    run_cycle(engine, sessionmaker, s, t + timedelta(seconds=5))  # not due yet: no attempt
    assert receiver.refused == 1
    run_cycle(engine, sessionmaker, s, t + timedelta(seconds=10))  # attempt 2 fails; next in 20 s
    assert receiver.refused == 2
    [d] = deliveries(sessionmaker)
    assert (d.status, d.attempts, d.last_error) == ("pending", 2, "HTTP 503")
    # Resolved while the receiver is still down: the resolve waits behind the firing (order kept).
    run_cycle(engine, sessionmaker, s, o.hour + 67 * MIN)
    assert receiver.refused == 3 and receiver.received == []
    receiver.down = False
    run_cycle(engine, sessionmaker, s, o.hour + 68 * MIN)
    assert [r.json["event"] for r in receiver.received] == ["firing", "resolved"]
    for minutes in (70, 90, 200):  # nothing more, ever
        run_cycle(engine, sessionmaker, s, o.hour + minutes * MIN)
    assert len(receiver.received) == 2
    assert [(d.event, d.status, d.attempts) for d in deliveries(sessionmaker)] == [
        ("firing", "sent", 4), ("resolved", "sent", 1)]


def test_one_evaluator_at_a_time(engine, sessionmaker, outage, receiver):
    project_id, o = outage
    add_rule(sessionmaker, project_id, [webhook(sessionmaker, project_id, receiver)])
    with engine.connect() as other:
        assert try_evaluator_lock(other)  # another process is evaluating
        assert run_cycle(engine, sessionmaker, settings(), o.hour + 6.5 * MIN) is None
        release_evaluator_lock(other)  # session-level: it would outlive the connection's return to the pool
        other.commit()
    assert receiver.received == []
    assert run_cycle(engine, sessionmaker, settings(), o.hour + 6.5 * MIN).sent == 1
    # The same instant evaluated again (a clock that did not move): the decision is recorded once.
    assert run_cycle(engine, sessionmaker, settings(), o.hour + 6.5 * MIN).recorded == 0
    assert len(receiver.received) == 1


def test_a_crash_between_send_and_mark_resends_with_the_same_idempotency_key(engine, sessionmaker, outage, receiver):
    project_id, o = outage
    add_rule(sessionmaker, project_id, [webhook(sessionmaker, project_id, receiver)])

    def crash_after_sending(*args):
        from alerts.channels import send

        send(*args)
        raise KeyboardInterrupt  # the process dies before the delivery is marked sent

    t = o.hour + 6.5 * MIN
    with pytest.raises(KeyboardInterrupt):
        run_cycle(engine, sessionmaker, settings(), t, send=crash_after_sending)
    run_cycle(engine, sessionmaker, settings(), t + MIN)
    first, again = receiver.received
    assert first.json["idempotency_key"] == again.json["idempotency_key"]  # the receiver can drop it
    assert [(d.status, d.attempts) for d in deliveries(sessionmaker)] == [("sent", 1)]


def test_slack_pagerduty_and_email(engine, sessionmaker, outage, receiver):
    project_id, o = outage
    smtp = SmtpReceiver()
    try:
        with sessionmaker.begin() as session:
            slack = store_channel(session, project_id, name="slack", kind="slack", target="",
                                secret=receiver.url("/slack")).id
            pd = store_channel(session, project_id, name="pd", kind="pagerduty", target=receiver.url("/pd"),
                             secret="R0UT1NGKEY").id
            mail = store_channel(session, project_id, name="mail", kind="email", target="oncall@example.com",
                               secret=None).id
        add_rule(sessionmaker, project_id, [slack, pd, mail], kind="error_rate",
                 params={"provider": "openai", "error_class": "timeout"}, threshold=0.2, renotify_s=0)
        s = settings(smtp_host="127.0.0.1", smtp_port=smtp.port)
        run_cycle(engine, sessionmaker, s, o.hour + 30 * MIN)
        # The rollups are hourly: the window read is widened to whole hours, so 3 errors in 7 calls
        # stay in it until the hour after the served-model change.
        run_cycle(engine, sessionmaker, s, o.hour + 3 * timedelta(hours=1) + 30 * MIN)
        by_path = {}
        for r in receiver.received:
            by_path.setdefault(r.path, []).append(r.json)
        pd_events = by_path["/pd"]
        assert [e["event_action"] for e in pd_events] == ["trigger", "resolve"]
        assert pd_events[0]["dedup_key"] == pd_events[1]["dedup_key"] and pd_events[0]["routing_key"] == "R0UT1NGKEY"
        assert pd_events[0]["payload"]["custom_details"]["evidence"]["matching_errors"] == 3
        assert [m["text"].split("]")[0] for m in by_path["/slack"]] == ["[FIRING", "[RESOLVED"]
        assert [m["Subject"].split("]")[0] for m in smtp.messages] == ["[FIRING", "[RESOLVED"]
        assert smtp.messages[0]["To"] == "oncall@example.com"
        body = smtp.messages[0].get_payload()
        assert "matching_errors: 3" in body and "https://causeline.example.com/traces/" in body
    finally:
        smtp.close()


def test_email_without_smtp_server_is_recorded_as_a_failed_attempt(engine, sessionmaker, outage):
    project_id, o = outage
    with sessionmaker.begin() as session:
        channel = store_channel(session, project_id, name="mail", kind="email", target="x@example.com", secret=None)
        delivery_id = record_test_notification(session, project_id, channel, settings(), o.hour)
    result = CycleResult()
    deliver_due(sessionmaker, settings(), o.hour, result, only=delivery_id)
    [d] = deliveries(sessionmaker)
    assert (d.event, d.status, d.attempts) == ("test", "failed", 1)  # a test is tried once
    assert "no SMTP server configured" in d.last_error


@pytest.mark.parametrize("kind,params,threshold,fires", [
    ("failure_rate", {"agent": "support"}, 0.1, True),  # 1 failed of 7 runs = 14%
    ("failure_rate", {"agent": "support"}, 0.2, False),
    ("failure_rate", {"agent": "someone-else"}, 0.0, False),
    ("failed_runs", {"step": "chat gpt-4o"}, 0, True),  # the root cause's step
    ("failed_runs", {"step": "handle ticket"}, 0, False),
    ("latency_p95", {"model": "gpt-4o"}, 10_000, True),  # three 30 s timeouts among 7 calls
    ("latency_p95", {"model": "gpt-4o"}, 60_000, False),
    ("cost", {"period": "month"}, 0, True),
    ("cost", {"period": "month"}, 1000, False),
    ("new_root_cause", {}, None, True),
    ("served_model_change", {"provider": "openai"}, None, True),
    ("anomaly", {}, None, False),  # no baseline to judge against
])
def test_each_kind_measures_the_outage(engine, sessionmaker, outage, receiver, kind, params, threshold, fires):
    project_id, o = outage
    add_rule(sessionmaker, project_id, [webhook(sessionmaker, project_id, receiver)], kind=kind, params=params,
             threshold=threshold, window_s=3 * 3600)
    result = run_cycle(engine, sessionmaker, settings(), o.hour + 90 * MIN)
    assert not result.errors
    assert bool(receiver.received) is fires
    if fires:
        n = receiver.received[0].json
        assert n["event"] == "firing" and n["rule"]["kind"] == kind


def test_a_receiver_not_listening_is_a_failed_attempt_retried_later(engine, sessionmaker, outage):
    """A real notification (not a test, which is tried once) to a port nobody listens on."""
    import socket

    project_id, o = outage
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with sessionmaker.begin() as session:
        channel = store_channel(session, project_id, name="gone", kind="webhook", target=f"http://127.0.0.1:{port}/",
                                secret=SECRET)
    add_rule(sessionmaker, project_id, [channel.id])
    result = run_cycle(engine, sessionmaker, settings(), o.hour + 6.5 * MIN)
    [d] = deliveries(sessionmaker)
    assert (d.event, d.status, d.attempts, result.failed_attempts) == ("firing", "pending", 1, 1)
    assert d.last_error.startswith("ConnectError")
    assert d.next_attempt_at == o.hour + 6.5 * MIN + timedelta(seconds=10)


def test_a_channel_pointing_at_an_internal_address_is_refused_unless_the_operator_allows_it():
    from alerts.channels import DeliveryError, send

    payload = {"idempotency_key": "k", "event": "test"}
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.7/x",
                "http://[::1]:9/x"):
        with pytest.raises(DeliveryError, match="non-public address"):
            send("webhook", url, None, payload, Settings())
    with pytest.raises(DeliveryError) as allowed:  # allowed: tried for real (nobody listens on port 9)
        send("webhook", "http://127.0.0.1:9/hook", None, payload, Settings(alerts_allow_private_targets=True))
    assert "non-public" not in str(allowed.value)


def test_a_secret_stored_before_encryption_is_encrypted_by_the_next_cycle_and_still_works(
        engine, sessionmaker, outage, receiver):
    project_id, o = outage
    with sessionmaker.begin() as session:  # as schema 0029 leaves a channel made before it: plain text
        plain = add_channel(session, project_id, name="old", kind="webhook", target=receiver.url(), secret=SECRET,
                            secret_hint=mask_secret(SECRET)).id
    add_rule(sessionmaker, project_id, [plain])
    run_cycle(engine, sessionmaker, settings(), o.hour + 6.5 * MIN)
    with sessionmaker() as session:
        stored = session.get(AlertChannel, plain).secret
    assert stored.startswith("fernet:") and SECRET not in stored
    [got] = receiver.received
    assert verify(SECRET, got.body, got.headers[SIGNATURE_HEADER.lower()], now=time.time())


def test_a_secret_the_configured_key_cannot_open_fails_its_delivery_and_says_why(engine, sessionmaker, outage,
                                                                                  receiver):
    from cryptography.fernet import Fernet

    project_id, o = outage
    with sessionmaker.begin() as session:
        sealed = SecretBox.from_settings(settings(secrets_key=Fernet.generate_key().decode())).seal(SECRET)
        hook = add_channel(session, project_id, name="rekeyed", kind="webhook", target=receiver.url(),
                           secret=sealed, secret_hint=mask_secret(SECRET)).id
    add_rule(sessionmaker, project_id, [hook])
    result = run_cycle(engine, sessionmaker, settings(), o.hour + 6.5 * MIN)
    [d] = deliveries(sessionmaker)
    assert result.failed_attempts == 1 and receiver.received == []
    assert "cannot be decrypted with the configured secrets_key" in d.last_error

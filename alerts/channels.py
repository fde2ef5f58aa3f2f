"""Sending one notification to one channel: HTTP (webhook, Slack, PagerDuty) or SMTP.

The renderings are core.alert_messages'; this module only does the I/O. A failure raises
DeliveryError with a short reason, which the delivery loop records and retries.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from email.utils import formataddr
from urllib.parse import urlsplit

import httpx2

from core.alert_messages import (
    IDEMPOTENCY_HEADER, PAGERDUTY_URL, SIGNATURE_HEADER, body_bytes, email_parts, pagerduty_event, signature,
    slack_message,
)
from core.settings import Settings


class DeliveryError(Exception):
    pass


def send(kind: str, target: str, secret: str | None, payload: dict, settings: Settings) -> None:
    """Deliver `payload` (a core.alert_messages.notification); raises DeliveryError."""
    if kind == "email":
        _email(target, payload, settings)
        return
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: payload["idempotency_key"],
               "User-Agent": "causeline-alerts"}
    if kind == "webhook":
        body = body_bytes(payload)
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body, int(time.time()))
        url = target
    elif kind == "slack":
        body, url = body_bytes(slack_message(payload)), secret or ""
    elif kind == "pagerduty":
        body, url = body_bytes(pagerduty_event(payload, secret or "")), target or PAGERDUTY_URL
    else:
        raise DeliveryError(f"unknown channel kind {kind!r}")
    _check_destination(url, settings)
    try:
        response = httpx2.post(url, content=body, headers=headers, timeout=settings.alert_send_timeout_s,
                               follow_redirects=False)
    except httpx2.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None
    if not 200 <= response.status_code < 300:
        # The status only: the receiver's body is not ours to show (it may be an internal service's).
        raise DeliveryError(f"HTTP {response.status_code}")


def _check_destination(url: str, settings: Settings) -> None:
    """Refuses a URL whose host resolves to a loopback, private, link-local or otherwise special
    address unless the operator allows private targets: a channel must not become a way to reach
    internal services or cloud metadata. (Resolved again by the HTTP client: a host that changes
    its address between the two lookups is not caught.)"""
    if settings.alerts_allow_private_targets:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve {host!r}: {exc}"[:300]) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            raise DeliveryError(f"refused: {host} resolves to {address}, a non-public address "
                                "(set CAUSELINE_ALERTS_ALLOW_PRIVATE_TARGETS=true to allow internal receivers)")


def _email(to: str, payload: dict, settings: Settings) -> None:
    if not settings.smtp_host:
        raise DeliveryError("no SMTP server configured (CAUSELINE_SMTP_HOST)")
    subject, text = email_parts(payload)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = formataddr(("Causeline", settings.smtp_from))
    message["To"] = to
    # The same Message-ID for a repeat after a crash: mail systems drop the duplicate.
    message["Message-ID"] = f"<{payload['idempotency_key']}@causeline.alerts>"
    message["X-Causeline-Idempotency-Key"] = payload["idempotency_key"]
    message.set_content(text)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.alert_send_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_username, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}"[:300]) from None

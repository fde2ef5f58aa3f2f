"""Erasure of a data subject's captured content (`causeline erase`): what a span keeps.

Pure: no I/O (db/erasure.py applies it). A span keeps its skeleton — names, timings, tokens,
costs, status and errors, links — and loses input/output, every content attribute
(core.masking.is_content_attribute) and the attributes of content events (the events keep
their name and time, so a timeline still shows that a message was there). User and session
identifiers, as columns and in the attributes they were read from (core.normalize), become a
pseudonym: an HMAC of the value under a random key that is never stored, so runs of one
subject still group together after erasure but nobody can tell whose they were.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from core.masking import is_content_attribute, is_content_event
from core.normalize import IDENTITY_KEYS

ERASED_ATTR = "causeline.erased"
PSEUDONYM_PREFIX = "erased:"


def pseudonym(value: str | None, key: bytes) -> str | None:
    if value is None or value.startswith(PSEUDONYM_PREFIX):
        return value
    return PSEUDONYM_PREFIX + hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]


def erase_attributes(attributes: dict[str, Any] | None, key: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in (attributes or {}).items():
        if is_content_attribute(name):
            continue
        if name in IDENTITY_KEYS:
            value = pseudonym(value if isinstance(value, str) else str(value), key)
        out[name] = value
    out[ERASED_ATTR] = True
    return out


def erase_events(events: list | None, key: bytes) -> list:
    erased = []
    for event in events or []:
        if not isinstance(event, dict):
            continue  # not an event we wrote; nothing to keep
        name = str(event.get("name") or "")
        if is_content_event(name):
            attributes: dict = {}
        else:
            attributes = erase_attributes(event.get("attributes") if isinstance(event.get("attributes"), dict) else {}, key)
            attributes.pop(ERASED_ATTR)
        erased.append({**event, "attributes": attributes})
    return erased

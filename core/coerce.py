"""Lenient conversion of untrusted attribute values into the types we store.

Emitters are sloppy: counts arrive as "12", 12.0 or -1, ids as ints, booleans
as "false". Every function here is total: it returns None (or an empty tuple)
for anything it cannot read sensibly and never raises.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

# Counts must fit PostgreSQL bigint; anything larger is garbage, not usage.
MAX_COUNT = 2**63 - 1
# A single span reporting more than this many USD is garbage, not a bill.
MAX_COST = Decimal(10) ** 9

_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


def as_str(value: Any) -> str | None:
    """A non-empty, stripped string; ints and finite floats are spelled out."""
    if type(value) is str:  # fast path: almost every value is a plain str
        value = value.strip()
        return value or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return as_str(str.__str__(value))
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes):
        try:
            return as_str(value.decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return None  # lists, dicts, objects: not a name


def as_count(value: Any) -> int | None:
    """A non-negative integer count (tokens, HTTP status) or None."""
    if type(value) is int:
        number = value
    elif value is None or isinstance(value, bool):
        return None
    elif isinstance(value, int):
        number = int(value)
    elif isinstance(value, float):
        number = _integral(value)
    elif isinstance(value, (str, bytes)):
        number = _parse_count(value)
    else:
        return None
    if number is None or number < 0 or number > MAX_COUNT:
        return None
    return number


def _integral(value: float) -> int | None:
    # 12.0 is a count, 12.5 is garbage.
    if math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _parse_count(text: str | bytes) -> int | None:
    try:
        return int(text)
    except (ValueError, TypeError):
        pass
    try:
        return _integral(float(text))  # "12.0", "1e3"
    except (ValueError, TypeError, OverflowError):
        return None


def as_money(value: Any) -> Decimal | None:
    """A non-negative finite USD amount as Decimal (money is never float)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, int):
            amount = Decimal(int(value))
        elif isinstance(value, float):
            # repr() keeps the value the emitter meant: Decimal(0.1) would not.
            amount = Decimal(repr(value)) if math.isfinite(value) else None
        elif isinstance(value, str):
            amount = Decimal(value.strip())
        else:
            return None
    except (InvalidOperation, ValueError, TypeError):
        return None
    if amount is None or not amount.is_finite() or amount < 0 or amount > MAX_COST:
        return None
    return amount if amount else Decimal(0)  # drop "-0"


def as_bool(value: Any) -> bool | None:
    """True/False from bools, 0/1 and the usual words; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {0: False, 1: True}.get(int(value))
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def as_lower_tuple(value: Any) -> tuple[str, ...]:
    """A list attribute (e.g. finish reasons) as lowercase strings.

    Accepts a real list, a single string, or a JSON-encoded list string.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                return ()
        else:
            value = (text,)
    if not isinstance(value, (list, tuple)):
        return ()
    items = (as_str(item) for item in value)
    return tuple(item.lower() for item in items if item)


def to_json(value: Any) -> str | None:
    """Structured content as a JSON string; None if it cannot be encoded."""
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (ValueError, TypeError, RecursionError):
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def first_str(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first readable string among `keys` (listed in order of preference)."""
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            text = as_str(value)
            if text is not None:
                return text
    return None


def first_count(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first readable count among `keys` (listed in order of preference)."""
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            count = as_count(value)
            if count is not None:
                return count
    return None

"""Reading OTLP/JSON bodies, for every signal: one JSON object in which no field is given twice."""

from __future__ import annotations

import functools
import json


class DecodeError(ValueError):
    """The request body is not an OTLP export at all (HTTP 400, not retried)."""


def load_json(body: bytes, message: str) -> dict:
    """The body as a JSON object in which no field is given twice (DecodeError otherwise).

    A key twice in one object, or a field under both its JSON and its proto name
    (`resourceSpans` and `resource_spans`), is ambiguous: whichever one a parser kept, the
    other's spans would be lost or relabelled without a word, so the request is refused.
    The check costs ~3-4% of decode_json (an 11.5 MB body of 5,000 spans: json.loads
    ~400 → ~560 ms CPU, of ~4.1-4.6 s for the whole decode)."""
    try:
        document = json.loads(body, object_pairs_hook=_unambiguous_object)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise DecodeError("body is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise DecodeError(f"body must be a JSON object ({message})")
    return document


def _unambiguous_object(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DecodeError(f"invalid OTLP JSON: key {short(key, 80)!r} appears twice in one object")
            seen.add(key)
    # Every key of an OTLP/JSON object is a field name (attribute keys are values), so a
    # snake_case key whose lowerCamelCase form is also present names one field twice.
    for key in obj:
        if "_" in key:
            camel = _camel(key)
            if camel != key and camel in obj:
                raise DecodeError(f"invalid OTLP JSON: both {short(camel, 80)!r} and {short(key, 80)!r} "
                                  f"in one object (the same field twice)")
    return obj


@functools.lru_cache(maxsize=1024)
def _camel(name: str) -> str:
    """protobuf's json_name: underscores dropped, the letter after each one upper-cased."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def enum_problem(obj: dict, json_name: str, enum) -> str | None:
    """An enum given by a name the enum does not have. json_format, told to ignore unknown
    fields, would silently store 0 for it; numbers are range-checked by each signal."""
    value = obj.get(json_name, obj.get(_snake(json_name)))
    if isinstance(value, str) and value not in enum.values_by_name:
        try:
            int(value)  # a number in a string is read as the number, like json_format does
        except ValueError:
            return f"{json_name} {short(value, 60)!r} is not a {enum.name} name"
    return None


def short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


__all__ = ["DecodeError", "enum_problem", "load_json", "short"]

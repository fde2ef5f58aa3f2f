"""Server-side redaction of personal data and secrets at ingest, per project.

Pure: no I/O. `redact_span` runs on every ingested span (collector/pipeline.py, right after
normalization) with the project's `RedactionPolicy` (table redaction_rules, `causeline
redaction ...`). It rewrites span input/output, the status message, every string inside
attribute values (lists and maps included) and event attributes; the number of replacements
is kept on the span as the attribute `causeline.redactions` (absent when nothing matched).
Most spans hold nothing to redact: a span's strings are first screened together, in one RE2
pass over them joined (the built-in policy's hints; not with custom patterns, which may be
anchored), and only a span the screen flags is redacted string by string.

Identifier columns (user_id, session_id, ...) are left as normalized: erasure finds a data
subject by them (`causeline erase`). Attribute keys and resource attributes are not rewritten.

Linear time, always: ingest sees hostile input. Built-in patterns use Python `re` with bounded
repetitions only, and every match may start only where a run of the characters it consumes
starts (a look-behind), so a failed attempt never rescans a long run from each of its
positions. Custom patterns are compiled by RE2 (google-re2), an automaton engine without
backtracking; RE2 refuses back-references and look-arounds, which is the point.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from core.span import Event, Span

REDACTIONS_ATTR = "causeline.redactions"
MAX_CUSTOM_PATTERN_CHARS = 1000
MAX_DEPTH = 64  # nesting of attribute values; deeper values are replaced whole (fail closed)
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_\-]{0,39}")

EMAIL = "[REDACTED_EMAIL]"
PHONE = "[REDACTED_PHONE]"
CARD = "[REDACTED_CARD]"
IBAN = "[REDACTED_IBAN]"
API_KEY = "[REDACTED_API_KEY]"
JWT = "[REDACTED_JWT]"
TOO_DEEP = "[REDACTED_TOO_DEEP]"

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
)
_JWT_RE = re.compile(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")
# Runs are consumed greedily to their end and nothing follows them in the pattern: no backtracking.
_API_KEY_RE = re.compile(
    r"""(?<![A-Za-z0-9_\-])(?:
        sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}      # OpenAI / Anthropic / Stripe style
      | (?:rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}               # Stripe restricted/publishable
      | AKIA[0-9A-Z]{16}(?![A-Za-z0-9])                         # AWS access key id
      | AIza[0-9A-Za-z_\-]{35}                                  # Google API key
      | gh[pousr]_[A-Za-z0-9]{36,}                              # GitHub tokens
      | github_pat_[A-Za-z0-9_]{22,}
      | xox[abposr]-[A-Za-z0-9\-]{10,}                          # Slack tokens
      | hf_[A-Za-z0-9]{30,}                                     # Hugging Face
      | cl_(?:live|test)_[A-Za-z0-9_\-]{16,}                    # Causeline ingest keys
    )""",
    re.VERBOSE,
)
_BEARER_RE = re.compile(r"(?i)(?<![A-Za-z0-9])(bearer[ \t]{1,16})[A-Za-z0-9._~+/\-]{8,}=*")
_ASSIGNMENT_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9])((?:api[_\-]?key|secret(?:[_\-]?key)?|access[_\-]?token|auth[_\-]?token|password|passwd)"
    r"\"?[ \t]{0,8}[:=][ \t]{0,8}\"?)[^\s\"',;]{6,}"
)
_CARD_RE = re.compile(r"(?<![0-9\-])(?:[0-9][ \-]?){12,18}[0-9](?![0-9\-])")
_IBAN_RE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")
# International (+CC ...) or North-American shape with separators: a bare run of digits is an id,
# not a phone number.
_PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+[0-9]{1,3}[ .\-]?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,4}(?:[ .\-]?[0-9]{2,4}){1,4}"
    r"|\(?[0-9]{3}\)?[ .\-][0-9]{3}[ .\-][0-9]{4})(?![\w])"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 == 1."""
    iban = text.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _digits(text: str) -> str:
    return "".join(c for c in text if "0" <= c <= "9")


Sub = Callable[[str], tuple[str, int]]


def _plain(pattern: re.Pattern[str], placeholder: str) -> Sub:
    return lambda text: pattern.subn(placeholder, text)


def _prefixed(pattern: re.Pattern[str], placeholder: str) -> Sub:
    """Keeps group 1 (`Bearer `, `api_key=`) and replaces the secret after it."""
    return lambda text: pattern.subn(lambda m: m.group(1) + placeholder, text)


def _checked(pattern: re.Pattern[str], placeholder: str, valid: Callable[[str], bool]) -> Sub:
    """Replaces only the matches `valid` accepts (checksums), counting them."""
    def sub(text: str) -> tuple[str, int]:
        count = 0

        def repl(m: re.Match[str]) -> str:
            nonlocal count
            if valid(m.group(0)):
                count += 1
                return placeholder
            return m.group(0)
        return pattern.sub(repl, text), count
    return sub


def _chain(*subs: Sub) -> Sub:
    def sub(text: str) -> tuple[str, int]:
        total = 0
        for one in subs:
            text, n = one(text)
            total += n
        return text, total
    return sub


# Order matters: tokens before e-mail and digits (a JWT may hold digit runs), cards (checked by
# Luhn) before phone numbers, so a card number is not half-taken as a phone number.
BUILTINS: dict[str, Sub] = {
    "jwt": _plain(_JWT_RE, JWT),
    "api_key": _chain(_plain(_API_KEY_RE, API_KEY), _prefixed(_BEARER_RE, API_KEY), _prefixed(_ASSIGNMENT_RE, API_KEY)),
    "email": _plain(_EMAIL_RE, EMAIL),
    "iban": _checked(_IBAN_RE, IBAN, iban_ok),
    "card": _checked(_CARD_RE, CARD, lambda s: 13 <= len(_digits(s)) <= 19 and luhn_ok(_digits(s))),
    "phone": _checked(_PHONE_RE, PHONE, lambda s: 7 <= len(_digits(s)) <= 15),
}
# Speed: Python's `re` scans at ~10-100 ns a character, and most text holds nothing to redact.
# Each built-in has a hint: a looser RE2 pattern (no look-arounds, shorter runs) matching
# wherever the built-in could; RE2 scans for all hints at once at a few ns a character, and a
# built-in runs only on text where its own hint matched. Tests check every case through both.
HINTS: dict[str, str] = {
    "jwt": r"eyJ[A-Za-z0-9_\-]{8}",
    "api_key": r"sk-|[rp]k_(?:live|test)_|AKIA[0-9A-Z]{16}|AIza|gh[pousr]_|github_pat_|xox[abposr]-|hf_|cl_(?:live|test)_"
               r"|(?i:bearer)[ \t]|(?i:api[_\-]?key|secret|access[_\-]?token|auth[_\-]?token|passw(?:or)?d)",
    "email": r"[A-Za-z0-9._%+\-]@[A-Za-z0-9\-]",
    "iban": r"[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}",
    "card": r"[0-9](?:[ \-]?[0-9]){12}",
    "phone": r"\+[0-9]|[0-9]{3}[ .\-)]",
}
BUILTIN_NAMES = tuple(BUILTINS)


@dataclass(frozen=True)
class CustomPattern:
    name: str  # [a-z0-9_-], shown in the placeholder [REDACTED:<name>]
    pattern: str  # RE2 syntax


@dataclass(frozen=True)
class RedactionPolicy:
    """What one project redacts. Plain and hashable: it crosses to decoder worker processes,
    and compiled patterns are cached per policy there (`_compiled`)."""

    builtins: frozenset[str] = frozenset(BUILTIN_NAMES)
    custom: tuple[CustomPattern, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.builtins or self.custom)


DEFAULT_POLICY = RedactionPolicy()


class InvalidPattern(ValueError):
    pass


def _re2():
    import re2  # google-re2; imported on first use of a custom pattern

    return re2


def compile_custom(pattern: str):
    """A linear-time RE2 regex for a custom pattern; InvalidPattern when RE2 refuses it."""
    if not pattern or len(pattern) > MAX_CUSTOM_PATTERN_CHARS:
        raise InvalidPattern(f"a pattern has 1 to {MAX_CUSTOM_PATTERN_CHARS} characters")
    re2 = _re2()
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        raise InvalidPattern(f"not an RE2 pattern: {exc}") from None
    if compiled.search("") is not None:
        raise InvalidPattern("the pattern matches the empty string")
    return compiled


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidPattern("a name is 1-40 characters of a-z, 0-9, '_' and '-', starting with a letter or digit")
    return name


def _encodable(text: str) -> str:
    """RE2 needs UTF-8: lone surrogates (invalid anyway) become '?'."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class _Redactor:
    sub: Sub
    # Whether any of these strings may hold something to redact (False: none does); None when
    # the policy cannot tell for strings joined (custom patterns may be anchored).
    screen: Callable[[list[str]], bool] | None = None


@functools.lru_cache(maxsize=256)
def _compiled(policy: RedactionPolicy) -> _Redactor:
    re2 = _re2()
    options = re2.Options()
    options.log_errors = False
    # One RE2 pass (RE2::Set) tells which built-in hints and custom patterns match a string;
    # only those then run. Most strings match none and cost that one pass.
    subs: list[Sub] = []
    hints = re2.Set.SearchSet(options)
    for name in BUILTIN_NAMES:
        if name in policy.builtins:
            hints.Add(HINTS[name])
            subs.append(BUILTINS[name])
    for custom in policy.custom:
        try:
            regex = compile_custom(custom.pattern)
        except InvalidPattern:
            continue  # refused when added; a row edited by hand must not stop ingest
        hints.Add(custom.pattern)
        subs.append(functools.partial(_custom_sub, regex, f"[REDACTED:{custom.name}]"))
    if not subs:
        return _Redactor(lambda text: (text, 0), lambda texts: False)
    hints.Compile()

    def sub(text: str) -> tuple[str, int]:
        try:
            return _sub(text)
        except UnicodeEncodeError:
            return _sub(_encodable(text))

    def _sub(text: str) -> tuple[str, int]:
        total = 0
        for index in sorted(hints.Match(text) or ()):
            text, n = subs[index](text)
            total += n
        return text, total

    def screen(texts: list[str]) -> bool:
        try:
            return bool(hints.Match("\n".join(texts)))
        except UnicodeEncodeError:
            return True

    # The built-in hints have no anchors, look-arounds or newlines: a hint matching one string
    # matches the strings joined by newlines too, so one pass over a span's text clears most
    # spans (a match across two strings only sends the span through the string-by-string path).
    return _Redactor(sub, None if policy.custom else screen)


def _custom_sub(regex, placeholder: str, text: str) -> tuple[str, int]:
    return regex.subn(placeholder, text)


def redact_text(text: str, policy: RedactionPolicy = DEFAULT_POLICY) -> tuple[str, int]:
    return _compiled(policy).sub(text)


def _strings(value: Any, out: list[str], depth: int = 0) -> bool:
    """Appends the strings anywhere in `value` to `out`; False when it nests deeper than
    redact_value goes (that value is redacted whole, so the span must take the full path)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, (list, tuple, Mapping)):
        if depth >= MAX_DEPTH:
            return False
        for item in value.values() if isinstance(value, Mapping) else value:
            if not _strings(item, out, depth + 1):
                return False
    return True


def _nothing_to_redact(span: Span, screen: Callable[[list[str]], bool]) -> bool:
    texts = [t for t in (span.input, span.output, span.status_message) if t is not None]
    if not _strings(span.attributes, texts) or not all(_strings(e.attributes, texts) for e in span.events):
        return False
    return not screen(texts)


def redact_value(value: Any, sub: Sub, depth: int = 0) -> tuple[Any, int]:
    """Strings anywhere in a decoded attribute value (lists, maps) redacted; other scalars kept."""
    if isinstance(value, str):
        return sub(value)
    if isinstance(value, (list, tuple, dict)) and depth >= MAX_DEPTH:
        return TOO_DEEP, 1
    if isinstance(value, (list, tuple)):
        total, items = 0, []
        for item in value:
            item, n = redact_value(item, sub, depth + 1)
            items.append(item)
            total += n
        return (items if isinstance(value, list) else tuple(items)), total
    if isinstance(value, dict):
        total, out = 0, {}
        for key, item in value.items():
            out[key], n = redact_value(item, sub, depth + 1)
            total += n
        return out, total
    return value, 0


def redact_span(span: Span, policy: RedactionPolicy | None) -> Span:
    """`span` with its content redacted, and `causeline.redactions` = N when N > 0."""
    if policy is None or not policy.active:
        return span
    redactor = _compiled(policy)
    if (redactor.screen is not None and REDACTIONS_ATTR not in span.attributes
            and _nothing_to_redact(span, redactor.screen)):
        return span
    sub = redactor.sub
    total = 0

    def text(value: str | None) -> str | None:
        nonlocal total
        if value is None:
            return None
        value, n = sub(value)
        total += n
        return value

    attributes, n = redact_value(dict(span.attributes), sub)
    total += n
    events = []
    for event in span.events:
        event_attributes, n = redact_value(dict(event.attributes), sub)
        total += n
        events.append(Event(event.name, event.time_ns, event_attributes) if n else event)
    changed = dict(input=text(span.input), output=text(span.output), status_message=text(span.status_message))
    if not total and REDACTIONS_ATTR not in attributes:
        return span
    # The count is the server's own: a value the client sent under this key is dropped.
    attributes.pop(REDACTIONS_ATTR, None)
    if total:
        attributes[REDACTIONS_ATTR] = total
    return dataclasses.replace(span, attributes=attributes, events=tuple(events), **changed)


def redact_messages(messages: list | None, policy: RedactionPolicy | None) -> list | None:
    """The message list of a GenAI log record (/v1/logs content), redacted like span content.
    Log records have no attribute to keep a count in: the count is not kept."""
    if messages is None or policy is None or not policy.active:
        return messages
    return redact_value(messages, _compiled(policy).sub)[0]

"""Redaction of secrets and PII from anything switchover logs or stores as a sample.

A :class:`Redactor` replaces what it recognises by a marker naming what was there
(``[REDACTED:phone]``). It knows two things:

* **patterns**, found in any text, in this order of priority (a span claimed by an
  earlier pattern is not looked at again):

  ====================  ============  ==================================================
  name                  marker        what it finds
  ====================  ============  ==================================================
  (fields in text)      field's kind  the value in ``password=…``, ``"token": "…"``,
                                      ``Authorization: Bearer …`` (the name is kept)
  (user patterns)       their label   whatever :meth:`Redactor.add_pattern` added
  ``url_credentials``   secret        the password in ``scheme://user:password@host``
  ``key``               key           API keys by prefix: ``sk-``, ``sk_live_``, ``pk_``,
                                      ``rk_``, ``ghp_``/``gho_``/…, ``github_pat_``,
                                      ``glpat-``, ``xox[abposr]-``, ``AKIA``/``ASIA``,
                                      ``AIza``, ``hf_``, ``npm_``, ``swo_``, JWTs
  ``bearer``            key           the token after ``Bearer``
  ``email``             email         e-mail addresses
  ``iban``              iban          IBANs, grouped by four or not, with the mod-97 check
  ``card``              card          13 to 19 digit card numbers with the Luhn check
  ``phone``             phone         E.164 (``+44 20 7946 0958``, ``+14155550100``),
                                      ``00``-prefixed (``0049 30 123456``) and national
                                      forms (``(415) 555-0132``, ``415-555-0132``,
                                      ``020 7946 0958``)
  ``high_entropy``      key           a run of 32 or more token characters with upper
                                      and lower case letters and digits, of high entropy
  ====================  ============  ==================================================

  Dates (``2026-11-30``, ``30/11/2026``), times (``12:30:45``), prices, version strings,
  UUIDs and hex digests, order numbers and bare runs of digits are left as they are: a
  phone number needs a ``+``, an ``00`` prefix with a separator, an area code in
  parentheses, the North American 3-3-4 grouping or a leading trunk ``0`` with separators.

* **fields**: a mapping key whose last words name a field (``password``, ``api_key``,
  ``X-Auth-Token``, ``clientSecret``; case, ``-``, ``_`` and camelCase do not matter) has
  its whole value replaced by ``[REDACTED:<kind>]``; ``kind`` is ``secret`` for
  credentials, ``name`` for personal names, ``pii`` for birth dates and the like.
  ``max_tokens`` and ``token_count`` are not secrets: only the last words count.

:data:`DEFAULT_REDACTOR` is what :func:`redact` and :func:`redact_text` use unless given
another; add to it, or build your own ``Redactor()`` and pass it. Redacting never raises:
a user check that fails counts as a match (the text is redacted), and redacting text
twice gives the same result as once.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from switchover.errors import ValidationError

__all__ = [
    "DEFAULT_REDACTOR",
    "MAX_SAMPLE_CHARS",
    "Redactor",
    "redact",
    "redact_text",
]

MAX_SAMPLE_CHARS = 4000
_MAX_ITEMS = 100
_MAX_DEPTH = 8

Check = Callable[[str], bool]

# --- checks on what a pattern found ------------------------------------------------------


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_ok(text: str) -> bool:
    digits = "".join(c for c in text if c.isdigit())
    if not 13 <= len(digits) <= 19 or not _luhn_ok(digits):
        return False
    seps = {c for c in text if not c.isdigit()}
    if not seps:
        return True
    if len(seps) > 1:
        return False
    groups = [len(g) for g in re.split(r"[ -]", text)]
    if groups in ([4, 6, 5], [4, 6, 4]):
        return True
    return len(groups) >= 4 and all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4


def _iban_ok(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _iban_fit(text: str) -> int:
    """The length of the longest valid IBAN at the start of ``text`` (0 if none).

    A spaced IBAN may have caught a following word in capitals (``… 7034 EUR``), so
    groups are dropped from the end until the rest passes the mod-97 check.
    """
    if " " not in text:
        return len(text) if _iban_ok(text) else 0
    cut = len(text)
    while cut >= 15:
        if _iban_ok(text[:cut].replace(" ", "")):
            return cut
        cut = text.rfind(" ", 0, cut)
    return 0


def _phone_ok(text: str) -> bool:
    digits = sum(c.isdigit() for c in text) - text.count("(0)")
    if text.startswith("+"):
        return 8 <= digits <= 15
    if text.startswith("00"):
        return 8 <= digits - 2 <= 15
    return 9 <= digits <= 13


def _has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)


_HEX = frozenset("0123456789abcdefABCDEF-")
_LOWER_WORD = re.compile(r"[a-z]{8}")


def _high_entropy(text: str) -> bool:
    body = text.rstrip("=")
    if set(body) <= _HEX or _LOWER_WORD.search(body):
        return False  # UUIDs and digests; identifiers and paths made of words
    if not (
        any(c.isupper() for c in body)
        and any(c.islower() for c in body)
        and any(c.isdigit() for c in body)
    ):
        return False
    n = len(body)
    entropy = -sum(k / n * math.log2(k / n) for k in Counter(body).values())
    return entropy >= 4.0


# --- the built-in patterns ---------------------------------------------------------------

_B = r"(?<![\w.,/+-])(?<!\d:)"  # not inside a number, a date, a path or a word
_E = r"(?!\w|[.,:/-]\d)"  # nor followed by more of one
_STEP = r"(?:[ .-]?(?:\(\d{1,5}\)[ .-]?)?\d)"  # one more digit of an international number

_PHONE = (
    _B + r"(?:"
    r"\+\d" + _STEP + r"{5,16}"  # +44 20 7946 0958, +1 (415) 555-0132, +14155550100
    r"|00[1-9]\d{0,2}(?=[ .-])" + _STEP + r"{6,15}"  # 0049 30 123456
    r"|\(\d{2,5}\)[ .-]?\d{2,4}(?:[ .-]?\d{2,5}){1,2}"  # (415) 555-0132, (030) 123456
    r"|[2-9]\d{2}(?P<s1>[ .-])[2-9]\d{2}(?P=s1)\d{4}"  # 415-555-0132
    r"|0[1-9]\d{0,4}(?P<s2>[ -])\d{2,8}(?:(?P=s2)\d{2,8}){0,3}"  # 020 7946 0958
    r")" + _E
)
_CARD = _B + r"(?<![A-Z]{2}\d{2} )[2-6]\d{3}(?:[ -]?\d){9,15}" + _E
_IBAN = r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w-])"
_EMAIL = (
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w-])"
)
_KEY = (
    r"(?<![\w-])(?:"
    r"(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_\w{20,}"
    r"|glpat-[\w-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|AIza[\w-]{35}"
    r"|hf_[A-Za-z0-9]{20,}"
    r"|npm_[A-Za-z0-9]{20,}"
    r"|swo_[\w-]{20,}"
    r"|eyJ[\w-]+\.[\w-]+\.[\w-]+"
    r")(?![\w-])"
)
_WEAK_KEY = r"(?<![\w-])(?:sk-[\w-]{12,}|(?:sk|pk|rk)_[A-Za-z0-9]{12,})(?![\w-])"
_BEARER = r"(?i:\bbearer)\s+(?P<secret>[\w.~+/-]{16,}=*)(?![\w.~+/=-])"
_URL_CREDENTIALS = r"(?i)(?<![\w+.-])[a-z][a-z0-9+.-]*://[^\s/:@]*:(?P<secret>[^\s/@]+)@"
_HIGH_ENTROPY = r"(?<![\w+/=-])[\w+/-]{32,}={0,2}(?![\w+/=-])"

_MARKER = re.compile(r"\[REDACTED:[a-z0-9_]+\]")
_FIELD_HINT = re.compile(r"[:=]")
_WORTH_A_LOOK = re.compile(r"[\d@:=]")  # every built-in pattern needs one of these
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

DEFAULT_FIELDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "password",
            "passwd",
            "pwd",
            "passphrase",
            "secret",
            "secrets",
            "token",
            "api_key",
            "access_key",
            "secret_key",
            "private_key",
            "authorization",
            "credential",
            "credentials",
            "cookie",
            "session_id",
        ),
        "secret",
    ),
    **dict.fromkeys(
        (
            "first_name",
            "last_name",
            "full_name",
            "given_name",
            "family_name",
            "middle_name",
            "maiden_name",
            "surname",
        ),
        "name",
    ),
    **dict.fromkeys(("ssn", "date_of_birth", "birth_date", "birthdate", "dob"), "pii"),
}


@dataclass(frozen=True, slots=True)
class _Rule:
    """One pattern: what to look for, how to confirm it, and the marker's label."""

    name: str
    label: str
    regex: re.Pattern[str]
    check: Check | None = None
    fit: Callable[[str], int] | None = None
    keep_refused: bool = False  # an IBAN failing mod-97 is not a phone number either

    def spans(self, text: str) -> Iterator[tuple[int, int, str | None]]:
        """Where to put this rule's marker; a None label keeps a refused look-alike as is."""
        secret_groups = [g for g in self.regex.groupindex if g.startswith("secret")]
        for m in self.regex.finditer(text):
            start, end = m.span()
            for group in secret_groups:
                if m.start(group) >= 0:
                    start, end = m.span(group)
                    break
            if start == end:
                continue
            if self.fit is not None:
                fit = self.fit(text[start:end])
                if not fit:
                    if self.keep_refused:
                        yield start, end, None
                    continue
                end = start + fit
            elif self.check is not None and not _confirmed(self.check, text[start:end]):
                if self.keep_refused:
                    yield start, end, None
                continue
            yield start, end, self.label


def _confirmed(check: Check, found: str) -> bool:
    try:
        return bool(check(found))
    except Exception:  # a failing user check must not leak what it was shown
        return True


def _builtin_rules() -> list[_Rule]:
    c = re.compile
    return [
        _Rule("url_credentials", "secret", c(_URL_CREDENTIALS)),
        _Rule("key", "key", c(_KEY)),
        _Rule("weak_key", "key", c(_WEAK_KEY), check=_has_digit),
        _Rule("bearer", "key", c(_BEARER), check=_has_digit),
        _Rule("email", "email", c(_EMAIL)),
        _Rule("iban", "iban", c(_IBAN), fit=_iban_fit, keep_refused=True),
        _Rule("card", "card", c(_CARD), check=_card_ok),
        _Rule("phone", "phone", c(_PHONE), check=_phone_ok),
        _Rule("high_entropy", "key", c(_HIGH_ENTROPY), check=_high_entropy),
    ]


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(name)]


def _field_rule(kind: str, names: Iterable[str]) -> _Rule:
    """``name = value`` / ``"name": "value"`` in text, for the fields of one kind."""
    spelled = sorted({r"[-_. ]?".join(map(re.escape, _words(n))) for n in names}, key=len)
    regex = (
        r"(?i)(?<![\w.-])[\w.-]*?(?:" + "|".join(reversed(spelled)) + r")"
        r"[\"']?[ \t]*[:=][ \t]*(?!\[REDACTED:)"
        r"(?:(?P<q>[\"'])(?P<secret>[^\"'\r\n]*)(?P=q)"
        r"|(?:(?:bearer|basic|token|bot)[ \t]+)?(?P<secret_bare>[^\s\"',;&)}\]]+))"
    )
    return _Rule(f"field:{kind}", kind, re.compile(regex))


class Redactor:
    """Finds secrets and PII in text and in JSON-like values, and replaces them.

    ``Redactor()`` starts with the built-in patterns and fields; ``Redactor(defaults=False)``
    with none. Patterns and fields can be added and removed while other threads redact.
    """

    def __init__(self, *, defaults: bool = True) -> None:
        self._lock = threading.Lock()
        self._builtins: list[_Rule] = _builtin_rules() if defaults else []
        self._user: list[_Rule] = []
        self._fields: dict[str, tuple[str, str]] = {}  # joined words → (name, kind)
        self._field_cache: dict[str, str | None] = {}
        self._rules: tuple[_Rule, ...] = ()
        self._field_rules: tuple[_Rule, ...] = ()
        if defaults:
            for name, kind in DEFAULT_FIELDS.items():
                self._fields["".join(_words(name))] = (name, kind)
        self._rebuild()

    # --- what it knows -------------------------------------------------------------------

    @property
    def patterns(self) -> tuple[str, ...]:
        """The names of the patterns, in the order they are tried."""
        return tuple(r.name for r in (*self._user, *self._builtins))

    @property
    def fields(self) -> dict[str, str]:
        """Each field name and the kind its values are redacted as."""
        return dict(self._fields.values())

    def add_pattern(
        self,
        name: str,
        regex: str | re.Pattern[str],
        *,
        label: str | None = None,
        check: Check | None = None,
    ) -> Redactor:
        """Redact what ``regex`` finds as ``[REDACTED:<label>]`` (``label`` defaults to ``name``).

        If ``regex`` has a group named ``secret``, only that group is replaced. ``check``
        is shown the text to replace and may refuse it by returning False. User patterns
        are tried before the built-in ones, in the order they were added.
        """
        label = name if label is None else label
        for what, value in (("name", name), ("label", label)):
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise ValidationError(
                    f"redaction pattern `{what}` {value!r} must be lower-case letters, "
                    "digits and _, starting with a letter",
                    field=what,
                )
        try:
            compiled = re.compile(regex) if isinstance(regex, str) else regex
        except re.error as exc:
            raise ValidationError(
                f"redaction pattern {name!r}: `regex` does not compile ({exc}); fix it",
                field="regex",
            ) from exc
        if not isinstance(compiled, re.Pattern) or not isinstance(compiled.pattern, str):
            raise ValidationError(
                f"redaction pattern {name!r}: `regex` must be a str or a compiled str pattern",
                field="regex",
            )
        with self._lock:
            if name in self.patterns:
                raise ValidationError(
                    f"a redaction pattern named {name!r} exists; choose another `name` "
                    f"(with label={label!r}) or remove_pattern({name!r}) first",
                    field="name",
                )
            self._user.append(_Rule(name, label, compiled, check=check))
            self._rebuild()
        return self

    def remove_pattern(self, name: str) -> Redactor:
        """Stop looking for the pattern ``name``, built-in or added."""
        with self._lock:
            if name not in self.patterns:
                raise ValidationError(
                    f"no redaction pattern named {name!r}; the patterns are "
                    + ", ".join(self.patterns),
                    field="name",
                )
            self._user = [r for r in self._user if r.name != name]
            self._builtins = [r for r in self._builtins if r.name != name]
            self._rebuild()
        return self

    def add_field(self, name: str, *, kind: str = "secret") -> Redactor:
        """Redact the value of any mapping key (or ``name=value`` in text) ending in ``name``."""
        if not isinstance(kind, str) or not _NAME.fullmatch(kind):
            raise ValidationError(
                f"redaction field `kind` {kind!r} must be lower-case letters, digits and _",
                field="kind",
            )
        words = _words(name) if isinstance(name, str) else []
        if not words:
            raise ValidationError(
                f"redaction field `name` {name!r} must contain letters or digits", field="name"
            )
        with self._lock:
            key = "".join(words)
            known = self._fields.get(key)
            if known is not None and len(_words(known[0])) > len(words):
                name = known[0]  # keep the spelling with word breaks: api_key over apikey
            self._fields[key] = (name, kind)
            self._rebuild()
        return self

    def remove_field(self, name: str) -> Redactor:
        """Stop redacting the field ``name``."""
        with self._lock:
            key = "".join(_words(name))
            if key not in self._fields:
                raise ValidationError(
                    f"no redaction field named {name!r}; the fields are "
                    + ", ".join(sorted(self.fields)),
                    field="name",
                )
            del self._fields[key]
            self._rebuild()
        return self

    def copy(self) -> Redactor:
        """An independent redactor with the same patterns and fields."""
        other = Redactor(defaults=False)
        with self._lock:
            other._builtins = list(self._builtins)
            other._user = list(self._user)
            other._fields = dict(self._fields)
        other._rebuild()
        return other

    def field_kind(self, key: object) -> str | None:
        """The kind of field ``key`` names (``secret``, ``name``, …), or None."""
        text = str(key)
        cache = self._field_cache
        if text in cache:
            return cache[text]
        fields = self._fields
        words = _words(text)
        kind = None
        for i in range(len(words)):
            found = fields.get("".join(words[i:]))
            if found is not None:
                kind = found[1]
                break
        if len(cache) < 4096:
            cache[text] = kind
        return kind

    def _rebuild(self) -> None:
        by_kind: dict[str, list[str]] = {}
        for name, kind in self._fields.values():
            by_kind.setdefault(kind, []).append(name)
        self._field_rules = tuple(_field_rule(k, names) for k, names in by_kind.items())
        self._rules = (*self._user, *self._builtins)
        self._field_cache = {}

    # --- redacting -----------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """``text`` with every secret and piece of PII replaced by a marker."""
        rules, field_rules = self._rules, self._field_rules
        if not _WORTH_A_LOOK.search(text) and not self._user:
            return text
        starts: list[int] = []
        taken: list[tuple[int, int, str | None]] = []

        def claim(start: int, end: int, label: str | None) -> None:
            i = bisect.bisect_right(starts, start)
            if (i and taken[i - 1][1] > start) or (i < len(taken) and taken[i][0] < end):
                return
            starts.insert(i, start)
            taken.insert(i, (start, end, label))

        for m in _MARKER.finditer(text):
            claim(m.start(), m.end(), None)
        if _FIELD_HINT.search(text):
            for rule in field_rules:
                for span in rule.spans(text):
                    claim(*span)
        for rule in rules:
            for span in rule.spans(text):
                claim(*span)
        if not any(label for _, _, label in taken):
            return text
        out: list[str] = []
        at = 0
        for start, end, label in taken:
            if label is None:
                continue
            out.append(text[at:start])
            out.append(f"[REDACTED:{label}]")
            at = end
        out.append(text[at:])
        return "".join(out)

    def redact(self, value: Any, *, limit: int = MAX_SAMPLE_CHARS) -> Any:
        """A JSON-ready copy of ``value`` with secrets and PII replaced and long text cut."""
        return self._value(value, limit, 0)

    def _value(self, value: Any, limit: int, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            return "[…]"
        if isinstance(value, str):
            return _cut(self.redact_text(value), limit)
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in list(value.items())[:_MAX_ITEMS]:
                kind = self.field_kind(k)
                out[self.redact_text(str(k))] = (
                    f"[REDACTED:{kind}]" if kind else self._value(v, limit, depth + 1)
                )
            return out
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(v, limit, depth + 1) for v in list(value)[:_MAX_ITEMS]]
        return self._value(repr(value), limit, depth + 1)


_MORE = re.compile(r"…\[\d+ more\]\Z")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    m = _MORE.search(text)
    if m and m.start() <= limit:  # cut already (a sample redacted twice)
        return text
    return text[:limit] + f"…[{len(text) - limit} more]"


DEFAULT_REDACTOR = Redactor()
"""What :func:`redact` and :func:`redact_text` use unless given another redactor."""


def redact_text(text: str, *, redactor: Redactor | None = None) -> str:
    """``text`` with secrets and PII replaced by markers such as ``[REDACTED:phone]``."""
    return (redactor or DEFAULT_REDACTOR).redact_text(text)


def redact(
    value: Any,
    *,
    limit: int = MAX_SAMPLE_CHARS,
    redactor: Redactor | None = None,
    _depth: int = 0,
) -> Any:
    """A JSON-ready copy of ``value`` with secrets and PII replaced and long text cut."""
    return (redactor or DEFAULT_REDACTOR)._value(value, limit, _depth)

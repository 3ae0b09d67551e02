"""Redaction: the corpus of near-misses and true positives, fields, and user additions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from switchover.core.redact import (
    DEFAULT_REDACTOR,
    MAX_SAMPLE_CHARS,
    Redactor,
    redact,
    redact_text,
)
from switchover.errors import ValidationError

CORPUS = Path(__file__).parent / "data" / "redact_corpus.txt"


def _corpus() -> list[tuple[str, str]]:
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            expected, text = line.split("\t", 1)
            rows.append((expected, text))
    return rows


ROWS = _corpus()
KEEP = [text for expected, text in ROWS if expected == "keep"]
FOUND = [(expected, text) for expected, text in ROWS if expected != "keep"]


def test_the_corpus_has_both_near_misses_and_every_kind() -> None:
    assert len(KEEP) >= 40
    assert {e for e, _ in FOUND} == {"phone", "email", "iban", "card", "key"}


# --- the corpus ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", KEEP)
def test_near_misses_stay_as_they_are(text: str) -> None:
    assert redact_text(text) == text
    sentence = f"ref {text}, see log"
    assert redact_text(sentence) == sentence
    assert redact({"note": text}) == {"note": text}


@pytest.mark.parametrize(("label", "text"), FOUND)
def test_true_positives_become_a_marker_naming_them(label: str, text: str) -> None:
    assert redact_text(text) == f"[REDACTED:{label}]"
    assert redact_text(f"ref {text}, see log") == f"ref [REDACTED:{label}], see log"
    assert redact_text(f"({text})") == f"([REDACTED:{label}])"


def test_a_mixed_line_keeps_dates_times_and_prices_around_what_it_redacts() -> None:
    line = (
        "2026-11-30 12:30:45 order ORD-2026-000123 for $1,234.56 (v3.12.1): "
        "call +44 20 7946 0958 or (415) 555-0132, mail jane.doe@example.com, "
        "pay DE89 3704 0044 0532 0130 00 by 4111 1111 1111 1111, key sk-abc123def456ghi789"
    )
    assert redact_text(line) == (
        "2026-11-30 12:30:45 order ORD-2026-000123 for $1,234.56 (v3.12.1): "
        "call [REDACTED:phone] or [REDACTED:phone], mail [REDACTED:email], "
        "pay [REDACTED:iban] by [REDACTED:card], key [REDACTED:key]"
    )


def test_times_are_never_phone_numbers_any_more() -> None:
    # the bug this module was rewritten for
    assert redact_text("at 12:30:45 today") == "at 12:30:45 today"
    assert redact_text("between 2026-11-30 and 30/11/2026") == "between 2026-11-30 and 30/11/2026"


def test_an_iban_followed_by_a_word_in_capitals_is_still_found() -> None:
    assert redact_text("BE68 5390 0754 7034 EUR 100") == "[REDACTED:iban] EUR 100"


def test_luhn_decides_between_a_card_and_a_plain_number() -> None:
    assert redact_text("4111 1111 1111 1111") == "[REDACTED:card]"
    assert redact_text("4111 1111 1111 1112") == "4111 1111 1111 1112"


def test_bearer_keeps_the_scheme_and_url_credentials_keep_the_user() -> None:
    assert redact_text("Bearer xyz0123456789abcdefXYZ") == "Bearer [REDACTED:key]"
    assert redact_text("postgresql://app:s3cr3t@db:5432/main") == (
        "postgresql://app:[REDACTED:secret]@db:5432/main"
    )


# --- fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "token",
        "access_token",
        "accessToken",
        "X-Auth-Token",
        "api_key",
        "apiKey",
        "APIKey",
        "x-api-key",
        "apikey",
        "Authorization",
        "client_secret",
        "clientSecret",
        "secret",
        "credentials",
        "Cookie",
        "passwd",
        "private_key",
    ],
)
def test_secret_fields_are_found_whatever_their_spelling(key: str) -> None:
    assert redact({key: "anything", "other": "x"}) == {key: "[REDACTED:secret]", "other": "x"}


@pytest.mark.parametrize(
    "key", ["max_tokens", "token_count", "tokens", "password_hint", "keyboard", "monkey", "name"]
)
def test_fields_that_merely_contain_a_secret_word_are_walked(key: str) -> None:
    assert redact({key: 5}) == {key: 5}
    assert redact({key: "hello"}) == {key: "hello"}


def test_personal_names_in_fields_are_redacted_as_names() -> None:
    out = redact({"first_name": "Jane", "lastName": "Doe", "user": {"full_name": "Jane Doe"}})
    assert out == {
        "first_name": "[REDACTED:name]",
        "lastName": "[REDACTED:name]",
        "user": {"full_name": "[REDACTED:name]"},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2 user=jane", "password=[REDACTED:secret] user=jane"),
        ("?api_key=abc123&page=2", "?api_key=[REDACTED:secret]&page=2"),
        ('{"token": "t0k", "max_tokens": 5}', '{"token": "[REDACTED:secret]", "max_tokens": 5}'),
        ("{'apiKey': 'abc', 'n': 1}", "{'apiKey': '[REDACTED:secret]', 'n': 1}"),
        ("Creds(password='pw', user='u')", "Creds(password='[REDACTED:secret]', user='u')"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [REDACTED:secret]"),
        ("last_name=Doe", "last_name=[REDACTED:name]"),
    ],
)
def test_fields_written_in_text_have_their_value_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redacting_twice_is_redacting_once() -> None:
    value = {
        "note": "call +44 20 7946 0958 with password=hunter2 about DE89370400440532013000",
        "api_key": "abc",
        "long": "x" * (MAX_SAMPLE_CHARS + 10),
    }
    once = redact(value)
    assert redact(once) == once
    assert redact_text(once["note"]) == once["note"]


def test_keys_are_redacted_and_values_walked() -> None:
    out = redact({"jane.doe@example.com": {"phones": ["+1 415 555 0100", "order 42"]}})
    assert out == {"[REDACTED:email]": {"phones": ["[REDACTED:phone]", "order 42"]}}
    json.dumps(out)


# --- what users add --------------------------------------------------------------------------


def test_a_user_pattern_is_redacted_under_its_name() -> None:
    r = Redactor().add_pattern("customer", r"\bCUST-\d{6}\b")
    assert r.redact_text("for CUST-123456 on 2026-11-30") == "for [REDACTED:customer] on 2026-11-30"
    assert redact_text("for CUST-123456") == "for CUST-123456"  # the default is untouched


def test_a_user_pattern_may_name_a_secret_group_a_label_and_a_check() -> None:
    r = Redactor().add_pattern(
        "pin",
        r"\bPIN (?P<secret>\d{4,6})\b",
        label="secret",
        check=lambda found: found != "0000",
    )
    assert r.redact_text("PIN 1234, PIN 0000") == "PIN [REDACTED:secret], PIN 0000"


def test_a_user_check_that_fails_redacts_rather_than_leaks() -> None:
    def broken(found: str) -> bool:
        raise RuntimeError("bug")

    r = Redactor().add_pattern("ref", r"\bREF\d+\b", check=broken)
    assert r.redact_text("see REF42") == "see [REDACTED:ref]"


def test_user_patterns_come_before_the_built_in_ones() -> None:
    r = Redactor().add_pattern("extension", r"\(415\) 555-\d{4}")
    assert r.redact_text("(415) 555-0132") == "[REDACTED:extension]"
    assert r.patterns[0] == "extension"


def test_a_user_field_is_redacted_in_mappings_and_text() -> None:
    r = Redactor().add_field("member_number").add_field("postcode", kind="pii")
    assert r.redact({"memberNumber": 7, "home_postcode": "SW1A 1AA", "n": 1}) == {
        "memberNumber": "[REDACTED:secret]",
        "home_postcode": "[REDACTED:pii]",
        "n": 1,
    }
    assert r.redact_text("member-number: 77 ok") == "member-number: [REDACTED:secret] ok"
    assert r.fields["postcode"] == "pii"


def test_built_in_patterns_and_fields_can_be_removed() -> None:
    r = Redactor().remove_pattern("phone").remove_field("cookie")
    assert r.redact_text("+44 20 7946 0958") == "+44 20 7946 0958"
    assert r.redact({"cookie": "c"}) == {"cookie": "c"}
    assert "phone" in DEFAULT_REDACTOR.patterns


def test_an_empty_redactor_redacts_nothing() -> None:
    r = Redactor(defaults=False)
    assert r.patterns == () and r.fields == {}
    assert r.redact({"password": "+44 20 7946 0958"}) == {"password": "+44 20 7946 0958"}


def test_a_copy_is_independent() -> None:
    base = Redactor()
    copy = base.copy().add_pattern("ticket", r"T-\d+")
    assert "ticket" in copy.patterns and "ticket" not in base.patterns


def test_the_default_redactor_can_be_passed_another() -> None:
    r = Redactor().add_field("nickname", kind="name")
    assert redact({"nickname": "jd"}, redactor=r) == {"nickname": "[REDACTED:name]"}
    assert redact_text("nickname=jd", redactor=r) == "nickname=[REDACTED:name]"
    assert redact({"nickname": "jd"}) == {"nickname": "jd"}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda r: r.add_pattern("Bad Name", r"x"), "name"),
        (lambda r: r.add_pattern("ok", r"x", label="Not ok"), "label"),
        (lambda r: r.add_pattern("ok", r"(unclosed"), "regex"),
        (lambda r: r.add_pattern("phone", r"x"), "name"),
        (lambda r: r.remove_pattern("nope"), "name"),
        (lambda r: r.add_field("--"), "name"),
        (lambda r: r.add_field("pin", kind="Bad"), "kind"),
        (lambda r: r.remove_field("nope"), "name"),
    ],
)
def test_mistakes_are_refused_naming_the_field(
    call: Callable[[Redactor], object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        call(Redactor())
    assert info.value.field == field


def test_an_unknown_pattern_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError, match="phone") as info:
        Redactor().remove_pattern("telephone")
    assert "email" in str(info.value)


def test_long_text_is_cut_after_redaction() -> None:
    out = redact("+44 20 7946 0958 " + "a" * (MAX_SAMPLE_CHARS + 500))
    assert out.startswith("[REDACTED:phone] aaa")
    assert out.endswith("more]")
    assert len(out) < MAX_SAMPLE_CHARS + 50

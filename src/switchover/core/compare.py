"""Comparators for shadow runs: is the candidate's result the same as legacy's?"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

Comparator = Callable[[Any, Any], bool]

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def equal(legacy: Any, candidate: Any) -> bool:
    """Equal values of the same type (1 and True and 1.0 are not the same result)."""
    return type(legacy) is type(candidate) and legacy == candidate


def normalise_text(text: str) -> str:
    """Case, accents' composition, punctuation and white space folded: for transcripts."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCT.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def normalised_text(legacy: Any, candidate: Any) -> bool:
    """Transcripts that differ only in case, punctuation or spacing are the same."""
    if not isinstance(legacy, str) or not isinstance(candidate, str):
        return equal(legacy, candidate)
    return normalise_text(legacy) == normalise_text(candidate)


COMPARATORS: dict[str, Comparator] = {"equal": equal, "text": normalised_text}


def comparator(spec: str | Comparator | None) -> Comparator:
    """A comparator by name or a callable; an unknown name lists the valid ones."""
    if spec is None:
        return equal
    if callable(spec):
        return spec
    try:
        return COMPARATORS[spec]
    except KeyError:
        from switchover.errors import ValidationError

        raise ValidationError(
            f"comparator {spec!r} is not known; use one of: {', '.join(sorted(COMPARATORS))}, "
            "or pass a callable(legacy, candidate) -> bool",
            field="compare",
        ) from None

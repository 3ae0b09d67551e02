"""Plans that cannot be meant are refused, naming the field: absurd durations, duplicate keys."""

from __future__ import annotations

import pytest

from switchover.core.plan import load_plan
from switchover.errors import ValidationError

GOOD = "plan: p\ninterval: 1m\nphases:\n  - {name: a, percentage: 5, duration: 10m}\n"


@pytest.mark.parametrize(
    ("text", "field", "said"),
    [
        (GOOD.replace("10m", "99999999999999999999d"), "phases[0].duration", "at most 366d"),
        (GOOD.replace("interval: 1m", "interval: 9999999999999w"), "interval", "at most 1d"),
        (GOOD.replace("interval: 1m", "interval: 2d"), "interval", "at most 1d"),
        ("plan: p\nplan: q\n" + GOOD.split("\n", 1)[1], "plan", "'plan' appears twice"),
        (GOOD.replace("duration: 10m}", "duration: 10m, percentage: 50}"), "plan", "twice"),
    ],
)
def test_an_absurd_or_ambiguous_plan_is_refused(text: str, field: str, said: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_plan(text, "p.yaml")
    assert caught.value.field == field
    assert said in caught.value.message and caught.value.message.startswith("p.yaml: ")


def test_a_year_long_phase_is_still_a_plan() -> None:
    plan = load_plan(GOOD.replace("10m", "366d").replace("interval: 1m", "interval: 1d"))
    assert plan.phases[0].duration == 366 * 86400 and plan.interval == 86400


def test_a_percentage_of_thousands_of_digits_is_refused_briefly() -> None:
    from switchover.core.migration import parse_percentage

    with pytest.raises(ValidationError) as caught:
        parse_percentage("9" * 5000)
    assert caught.value.field == "percentage" and len(caught.value.message) < 200

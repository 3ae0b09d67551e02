"""Call outcomes inferred from status and duration (seed 003), and the p95 of the metrics."""

from __future__ import annotations

import random

import pytest

from switchover.core.outcomes import ABANDONED_BELOW, OUTCOMES, infer_outcome, is_canonical, p95

CASES = [
    # (status, duration_seconds, outcome) -> expected; rules in the documented order
    # 1. a known outcome is kept (normalised), whatever the status or duration says
    (("failed", 120.0, "completed"), "completed"),
    (("completed", 120.0, "COMPLETED"), "completed"),
    ((None, None, "no answer"), "no_answer"),
    ((None, 5.0, "No-Answer"), "no_answer"),
    ((None, 300.0, "Transferred"), "transferred"),
    (("completed", 300.0, " VoiceMail "), "voicemail"),
    (("completed", 2.0, "ABANDONED"), "abandoned"),
    # an unknown legacy outcome is not kept: the rules below decide
    (("completed", 300.0, "done-ok"), "completed"),
    # 2. failed / error
    (("failed", 100.0, None), "failed"),
    (("ERROR", 100.0, None), "failed"),
    # 3. no-answer / busy / canceled, before the duration is looked at
    (("no-answer", 100.0, None), "no_answer"),
    (("No Answer", None, None), "no_answer"),
    (("busy", None, None), "no_answer"),
    (("canceled", 40.0, None), "no_answer"),
    (("cancelled", 40.0, None), "no_answer"),
    # 4. voicemail, transferred (even when short)
    (("voicemail", 100.0, None), "voicemail"),
    (("transferred", 3.0, None), "transferred"),
    # 5. no duration or 0 s
    (("completed", None, None), "no_answer"),
    (("completed", 0.0, None), "no_answer"),
    ((None, -3.0, None), "no_answer"),
    # 6. short calls were abandoned; 15 s is the boundary
    (("completed", 0.5, None), "abandoned"),
    (("completed", ABANDONED_BELOW - 0.1, None), "abandoned"),
    # 7. otherwise completed, whatever the (unknown) status
    (("completed", ABANDONED_BELOW, None), "completed"),
    (("in-progress", 240.0, None), "completed"),
    ((None, 61.0, ""), "completed"),
]


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_infer_outcome_rules_in_order(
    args: tuple[str | None, float | None, str | None], expected: str
) -> None:
    assert infer_outcome(*args) == expected
    assert expected in OUTCOMES


def test_legacy_outcomes_are_not_canonical_until_inferred() -> None:
    assert not is_canonical("COMPLETED")
    assert not is_canonical("no answer")
    assert not is_canonical(None)
    assert is_canonical(infer_outcome("completed", 90.0, "COMPLETED"))
    assert is_canonical(infer_outcome(None, None, "no answer"))
    assert all(is_canonical(o) for o in OUTCOMES)


def test_every_combination_lands_on_a_canonical_outcome() -> None:
    statuses = [None, "", "completed", "failed", "busy", "voicemail", "weird", "NO-ANSWER"]
    durations = [None, -1.0, 0.0, 1.0, 14.99, 15.0, 3600.0]
    outcomes = [None, "", "COMPLETED", "no answer", "legacy_x", "Failed"]
    for st in statuses:
        for d in durations:
            for o in outcomes:
                assert infer_outcome(st, d, o) in OUTCOMES, (st, d, o)


# --- p95, nearest rank ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([42.0], 42.0),
        ([300.0, 100.0], 300.0),  # ceil(1.9) = 2nd
        ([float(i) for i in range(1, 11)], 10.0),  # ceil(9.5) = 10th
        ([float(i) for i in range(1, 21)], 19.0),  # ceil(19) = 19th
        ([float(i) for i in range(1, 22)], 20.0),  # ceil(19.95) = 20th
        ([float(i) for i in range(1, 101)], 95.0),  # ceil(95) = 95th
        ([float(i) for i in range(1, 102)], 96.0),  # ceil(95.95) = 96th
        # one slow call in twenty is above the 95th percentile; two are not
        ([100.0] * 19 + [5000.0], 100.0),
        ([100.0] * 18 + [5000.0] * 2, 5000.0),
    ],
)
def test_p95_nearest_rank_against_hand_computed_values(
    values: list[float], expected: float | None
) -> None:
    assert p95(values) == expected


def test_p95_does_not_depend_on_input_order_and_leaves_the_input_alone() -> None:
    values = [812.5, 120.0, 433.1, 97.2, 1500.0, 640.0, 301.7, 255.5, 999.9, 88.0]
    shuffled = values[:]
    random.Random(3).shuffle(shuffled)
    copy = shuffled[:]
    assert p95(shuffled) == 1500.0  # ceil(9.5) = 10th of 10: the largest
    assert shuffled == copy
    assert p95(list(reversed(values))) == p95(values) == 1500.0

"""Issue 21: "calls with a NaN duration were classed completed". A duration that is not a
finite number is a broken record: the call is classed failed, never completed."""

from __future__ import annotations

import pytest

from switchover.core.outcomes import OUTCOMES, infer_outcome


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("status", ["completed", "in-progress", None])
def test_a_duration_that_is_not_finite_is_classed_failed(
    duration: float, status: str | None
) -> None:
    assert infer_outcome(status, duration, None) == "failed"
    assert infer_outcome(status, duration, "") == "failed"


def test_the_earlier_rules_still_win() -> None:
    nan = float("nan")
    assert infer_outcome("completed", nan, "Transferred") == "transferred"  # a known outcome
    assert infer_outcome("voicemail", nan, None) == "voicemail"  # a status that decides
    assert infer_outcome("busy", float("inf"), None) == "no_answer"
    assert "failed" in OUTCOMES

"""Chart windows, bucket alignment, covers and points (switchover.core.chart)."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from switchover.core.chart import (
    EMPTY,
    MAX_POINTS,
    TIER_STEPS,
    WINDOWS,
    ChartPoint,
    absorb,
    absorb_parts,
    bucket_start,
    chart_point,
    chart_window,
    cover,
    merged,
    series,
    totals,
)
from switchover.core.rollup import Rollup
from switchover.core.window import side_stats
from switchover.errors import ValidationError


def _rollup(seed: int, n: int = 200, outcome: str = "booked") -> Rollup:
    rng = random.Random(seed)
    r = Rollup()
    for _ in range(n):
        ok = rng.random() > 0.05
        r.add(
            rng.lognormvariate(5.5, 0.6),
            ok,
            None if ok else "Timeout",
            rng.random() < 0.03,
            {outcome: 1.0} if rng.random() < 0.4 else None,
            tenant=f"t{rng.randint(0, 5)}",
        )
    return r


# --- windows -----------------------------------------------------------------------


def test_windows_are_the_dashboards_five_with_at_most_400_points_on_a_tier_step() -> None:
    assert list(WINDOWS) == ["15m", "1h", "6h", "24h", "7d"]
    for w in WINDOWS.values():
        assert w.step_minutes in TIER_STEPS
        assert w.span_minutes % w.step_minutes == 0
        assert 1 <= w.points <= MAX_POINTS
    assert {n: (w.span_minutes, w.step_minutes) for n, w in WINDOWS.items()} == {
        "15m": (15, 1),
        "1h": (60, 1),
        "6h": (360, 1),
        "24h": (1440, 5),
        "7d": (10080, 60),
    }


@pytest.mark.parametrize("bad", ["", "2h", "1H", "7 d", "30d", None, 60])
def test_an_unknown_window_is_refused_naming_the_field_and_the_choices(bad: object) -> None:
    with pytest.raises(ValidationError) as exc:
        chart_window(bad)  # type: ignore[arg-type]
    assert exc.value.field == "window"
    for name in WINDOWS:
        assert name in exc.value.message


@pytest.mark.parametrize("name", list(WINDOWS))
@pytest.mark.parametrize("now", [0, 59, 60, 29_000_017, 29_000_040, 29_001_599])
def test_buckets_are_aligned_ascending_and_the_last_holds_now(name: str, now: int) -> None:
    w = chart_window(name)
    starts = list(w.starts(now))
    assert len(starts) == w.points
    assert all(b % w.step_minutes == 0 for b in starts)
    assert starts == sorted(starts)
    assert all(b - a == w.step_minutes for a, b in itertools.pairwise(starts))
    assert starts[-1] <= now < starts[-1] + w.step_minutes
    assert starts[-1] == bucket_start(now, w.step_minutes)


def test_bucket_start() -> None:
    assert bucket_start(125, 60) == 120
    assert bucket_start(120, 60) == 120
    assert bucket_start(124, 5) == 120
    assert bucket_start(7, 1) == 7


# --- cover -------------------------------------------------------------------------


def _check_cover(start: int, end: int) -> list[tuple[int, int]]:
    pieces = cover(start, end)
    at = start
    for step, b in pieces:
        assert b == at and b % step == 0 and step in TIER_STEPS
        at += step
    assert at == max(start, end)
    return pieces


def test_cover_uses_hours_inside_and_finer_buckets_only_at_the_edges() -> None:
    # 10:03 .. 13:07 (minutes since midnight of day 0)
    pieces = _check_cover(603, 787)
    assert pieces == [
        (1, 603),
        (1, 604),
        *[(5, b) for b in range(605, 660, 5)],
        (60, 660),
        (60, 720),
        (5, 780),
        (1, 785),
        (1, 786),
    ]
    assert cover(120, 120) == []
    assert _check_cover(60, 60 * 24) == [(60, b) for b in range(60, 1440, 60)]


def test_cover_is_exact_and_short_for_random_ranges() -> None:
    rng = random.Random(3)
    for _ in range(500):
        start = rng.randrange(0, 100_000)
        end = start + rng.randrange(0, 20_000)
        pieces = _check_cover(start, end)
        # at most 4 + 11 minutes/fives at each edge, plus the hours inside
        assert len(pieces) <= 30 + (end - start) // 60


def test_cover_needs_the_minute_step() -> None:
    with pytest.raises(ValueError):
        cover(0, 10, (5, 60))


# --- merging and points ------------------------------------------------------------


def test_absorb_merges_what_charts_read_and_leaves_tenants_out() -> None:
    a, b = _rollup(1), _rollup(2, outcome="transferred")
    full = Rollup()
    full.merge(a)
    full.merge(b)
    lean = Rollup()
    absorb(lean, a)
    absorb(lean, b)
    for attr in ("count", "errors", "fallbacks", "outcomes"):
        assert getattr(lean, attr) == getattr(full, attr)
    assert lean.sketch == full.sketch
    assert lean.tenants == {} and lean.error_types == {}
    assert merged([a, None, b]).sketch == full.sketch
    assert merged([]).count == 0


def test_absorbing_a_stored_rows_members_is_absorbing_the_rollup() -> None:
    rows = [_rollup(1), _rollup(2, outcome="transferred"), Rollup(), _rollup(3, n=1)]
    zero = Rollup()
    zero.add(0.0, True, None, False, None)  # below the sketch's smallest bin: a zero
    rows.append(zero)
    want, got = Rollup(), Rollup()
    for r in rows:
        absorb(want, r)
        d = json.loads(json.dumps(r.to_dict()))  # as the store hands it back
        absorb_parts(got, r.count, r.errors, r.fallbacks, d["outcomes"], d["sketch"])
    assert got.to_dict() == want.to_dict()
    assert chart_point(got) == chart_point(want)


def test_a_point_has_the_rates_and_p95_of_side_stats() -> None:
    r = _rollup(5)
    p = chart_point(r)
    s = side_stats("candidate", r)
    assert (p.calls, p.errors, p.fallbacks) == (s.calls, s.errors, s.fallbacks)
    assert p.error_rate == s.error_rate and p.fallback_rate == s.fallback_rate
    assert p.p95_ms == s.p95_ms
    assert p.outcome_rates == s.outcome_rates
    assert 0 < p.outcome_rates["booked"] < 1


def test_an_empty_bucket_has_no_rates() -> None:
    assert chart_point(None) is EMPTY
    assert chart_point(Rollup()) is EMPTY
    only_outcome = Rollup()
    only_outcome.add_outcome({"booked": 1.0})  # outcomes without calls: still no rate
    assert chart_point(only_outcome) is EMPTY
    assert EMPTY.calls == 0
    assert EMPTY.error_rate is EMPTY.fallback_rate is EMPTY.p95_ms is None
    t = totals(Rollup())
    assert t == {
        "calls": 0,
        "errors": 0,
        "fallbacks": 0,
        "error_rate": None,
        "fallback_rate": None,
        "p95_ms": None,
        "ttfb_p95_ms": None,
    }


def test_series_put_gaps_where_a_bucket_has_no_calls() -> None:
    booked = chart_point(_rollup(1))
    other = chart_point(_rollup(2, outcome="transferred"))
    points = {"legacy": [booked, EMPTY, other], "candidate": [EMPTY, other, EMPTY]}
    s = series(points)
    assert list(s) == ["error_rate", "fallback_rate", "p95_ms", "calls", "outcomes"]
    assert s["calls"] == {
        "legacy": [booked.calls, 0, other.calls],
        "candidate": [0, other.calls, 0],
    }
    assert s["error_rate"]["legacy"] == [booked.error_rate, None, other.error_rate]
    assert s["p95_ms"]["candidate"] == [None, other.p95_ms, None]
    assert s["fallback_rate"]["candidate"] == [None, other.fallback_rate, None]
    assert list(s["outcomes"]) == ["booked", "transferred"]
    assert s["outcomes"]["booked"] == {
        "legacy": [booked.outcome_rates["booked"], None, 0.0],
        "candidate": [None, 0.0, None],
    }
    assert s["outcomes"]["transferred"]["candidate"] == [
        None,
        other.outcome_rates["transferred"],
        None,
    ]


def test_series_of_empty_windows() -> None:
    s = series({"legacy": [EMPTY, EMPTY], "candidate": [EMPTY, EMPTY]})
    assert s["outcomes"] == {}
    assert s["error_rate"] == {"legacy": [None, None], "candidate": [None, None]}
    assert ChartPoint() == EMPTY

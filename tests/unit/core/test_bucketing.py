"""Bucketing: the documented formula, its statistics, and the inline hot path."""

from __future__ import annotations

import json
import random
import re
import uuid
from pathlib import Path

import mmh3
import pytest
from scipy.stats import chi2_contingency, chisquare

from switchover.core.bucketing import bucket, in_rollout
from switchover.core.decision import CompiledMigration, Reason, Side
from switchover.core.migration import Migration

DOCS = Path(__file__).parents[3] / "docs"
N = 100_000

_ROW = re.compile(
    r"^\| `(\"(?:[^\"\\]|\\.)*\")` \| `(\"(?:[^\"\\]|\\.)*\")` \| (\d+) \| (\d+) \| (\d+) \|$"
)


def doc_vectors() -> list[tuple[str, str, int, int, int]]:
    """The rows of the test-vector table in docs/bucketing.md."""
    rows = []
    for line in (DOCS / "bucketing.md").read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m:
            g, k, n, h, b = m.groups()
            rows.append((json.loads(g), json.loads(k), int(n), int(h), int(b)))
    return rows


def mixed_keys(n: int, seed: int = 7) -> list[str]:
    """Deterministic keys shaped like real ids: ints, uuids, emails, non-ASCII names."""
    rng = random.Random(seed)
    names = ["josé", "zoë", "用户", "müller", "🚀", "ñandú", "Ωmega", "user"]
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(str(rng.randrange(10**12)))
        elif kind == 1:
            out.append(str(uuid.UUID(int=rng.getrandbits(128))))
        elif kind == 2:
            out.append(f"{rng.choice(names)}{i}@example.com")
        else:
            out.append(f"{rng.choice(names)}-{i}")
    return out


# --- the documented vectors -------------------------------------------------------


def test_doc_table_is_there_and_covers_the_edges():
    rows = doc_vectors()
    assert len(rows) >= 12, "the test-vector table in docs/bucketing.md lost rows"
    keys = {k for _, k, *_ in rows}
    assert {"josé", "用户", "🚀"} <= keys
    assert any(g == "" for g, *_ in rows), "the empty-group edge is missing"
    assert {n % 4 for _, _, n, _, _ in rows} == {0, 1, 2, 3}, "every murmur3 tail length"


@pytest.mark.parametrize(("group", "key", "nbytes", "hash_", "expected"), doc_vectors())
def test_doc_vector(group, key, nbytes, hash_, expected):
    s = f"{group}:{key}"
    assert len(s.encode("utf-8")) == nbytes
    assert mmh3.hash(s, 0, False) == hash_
    assert hash_ % 100 + 1 == expected
    assert bucket(group, key) == expected


def test_doc_javascript_is_the_file():
    md = (DOCS / "bucketing.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```js\n(.*?)```", md, flags=re.S)
    js = (DOCS / "bucketing.js").read_text(encoding="utf-8")
    assert js in blocks, "the JavaScript in docs/bucketing.md differs from docs/bucketing.js"


def test_int_key_is_its_str():
    assert bucket("checkout-v2", 42) == bucket("checkout-v2", "42") == 42  # type: ignore[arg-type]
    m = CompiledMigration(Migration(name="checkout-v2", percentage=42))
    assert m.decide(None, {"user_id": 42}) == m.decide(None, {"user_id": "42"})
    assert m.decide(None, {"user_id": 42}).side is Side.CANDIDATE
    m41 = CompiledMigration(Migration(name="checkout-v2", percentage=41))
    assert m41.decide(None, {"user_id": 42}).side is Side.LEGACY


def test_agrees_with_unleash_python_sdk():
    utils = pytest.importorskip("UnleashClient.utils")
    for key in mixed_keys(5_000):
        assert utils.normalized_hash(key, "checkout-v2") == bucket("checkout-v2", key), key


# --- statistics -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "keys"),
    [
        ("checkout-v2", [str(i) for i in range(N)]),
        ("billing.v3", mixed_keys(N)),
    ],
    ids=["sequential-ints", "mixed"],
)
def test_buckets_are_uniform(group, keys):
    counts = [0] * 100
    for k in keys:
        b = bucket(group, k)
        assert 1 <= b <= 100
        counts[b - 1] += 1
    result = chisquare(counts)
    assert result.pvalue > 0.001, f"buckets not uniform: {counts}"
    assert min(counts) > 0


def test_growing_percentage_only_adds_callers():
    keys = mixed_keys(N, seed=11)
    group = "checkout-v2"
    prev = {k for k in keys if in_rollout(group, k, 0)}
    assert prev == set(), "at 0 % nobody is in"
    for p in range(1, 101):
        cur = {k for k in keys if in_rollout(group, k, p)}
        assert prev <= cur, f"raising {p - 1} % -> {p} % moved {len(prev - cur)} callers back"
        # about p % of callers are in (5 sigma of a binomial at 50 % is < 800)
        assert abs(len(cur) - p * N / 100) < 800, (p, len(cur))
        prev = cur
    assert prev == set(keys), "at 100 % everyone is in"


def test_migrations_bucket_independently():
    keys = mixed_keys(N, seed=3)
    a = [in_rollout("checkout-v2", k, 50) for k in keys]
    b = [in_rollout("search-rewrite", k, 50) for k in keys]
    table = [[0, 0], [0, 0]]
    for x, y in zip(a, b, strict=True):
        table[x][y] += 1
    _, pvalue, _, _ = chi2_contingency(table)
    assert pvalue > 0.001, f"in/out of one migration predicts the other: {table}"
    assert abs(table[1][1] / N - 0.25) < 0.01, table
    assert abs(sum(a) / N - 0.5) < 0.01
    assert abs(sum(b) / N - 0.5) < 0.01


# --- the inline hot path ----------------------------------------------------------


@pytest.mark.parametrize("pct", [0, 1, 7, 25, 50, 99, 100])
def test_hot_path_matches_in_rollout(pct):
    name = "checkout-v2"
    m = CompiledMigration(Migration(name=name, percentage=pct, stickiness="user_id"))
    keys = mixed_keys(20_000, seed=pct)
    sides = [m.decide(None, {"user_id": k}).side for k in keys]
    for k, side in zip(keys, sides, strict=True):
        assert (side is Side.CANDIDATE) == in_rollout(name, k, pct), (k, pct, side)
    candidates = sum(s is Side.CANDIDATE for s in sides)
    assert abs(candidates - pct * 200) < 400, (pct, candidates)


def test_hot_path_int_keys_match_in_rollout():
    m = CompiledMigration(Migration(name="pricing_2024", percentage=30))
    for i in range(20_000):
        assert (m.decide(None, {"user_id": i}).side is Side.CANDIDATE) == in_rollout(
            "pricing_2024", str(i), 30
        ), i


def test_every_feature_of_a_migration_puts_a_caller_on_the_same_side():
    m = CompiledMigration(
        Migration(name="checkout-v2", percentage=40, features={"page": True, "pricing": True})
    )
    both = 0
    for k in mixed_keys(5_000):
        sides = {m.decide(f, {"user_id": k}).side for f in (None, "page", "pricing")}
        assert len(sides) == 1, k
        both += sides == {Side.CANDIDATE}
    assert 1_500 < both < 2_500


def test_empty_key_is_never_bucketed():
    m = CompiledMigration(Migration(name="checkout-v2", percentage=100))
    assert m.decide(None, {"user_id": ""}).reason is Reason.MISSING_KEY
    assert m.decide(None, {}).side is Side.LEGACY

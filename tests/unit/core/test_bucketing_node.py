"""docs/bucketing.js gives the same buckets as Python, for every kind of key."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from switchover.core.bucketing import bucket, in_rollout

DOCS = Path(__file__).parents[3] / "docs"
JS = DOCS / "bucketing.js"

pytestmark = pytest.mark.node

_ROW = re.compile(r"^\| `(\"(?:[^\"\\]|\\.)*\")` \| `(\"(?:[^\"\\]|\\.)*\")` \|")


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node is not on PATH and CI=true: docs/bucketing.js would go untested")
        pytest.skip("node is not on PATH: cannot check docs/bucketing.js against Python")
    return exe


def doc_pairs() -> list[tuple[str, str]]:
    text = (DOCS / "bucketing.md").read_text(encoding="utf-8")
    pairs = [m.groups() for line in text.splitlines() if (m := _ROW.match(line))]
    return [(json.loads(g), json.loads(k)) for g, k in pairs]


def cases() -> list[tuple[str, str | int]]:
    """12,000+ (group, key) pairs: ints as str and as numbers, uuids, unicode, doc vectors."""
    rng = random.Random(20240607)
    groups = ["checkout-v2", "search-rewrite", "billing.v3", "pricing_2024", "a", ""]
    words = [
        "josé",
        "用户",
        "🚀",
        "Zoë 🦎",
        "müller",
        "ñandú",
        "Ωmega",
        "café☕",
        "\U0001d518\U0001d52b\U0001d526",
        "alice",
    ]
    out: list[tuple[str, str | int]] = list(doc_pairs())
    for i in range(12_000):
        g = groups[i % len(groups)]
        kind = i % 5
        key: str | int
        if kind == 0:
            key = str(rng.randrange(10**15))
        elif kind == 1:
            key = str(uuid.UUID(int=rng.getrandbits(128)))
        elif kind == 2:
            key = f"{rng.choice(words)}{rng.randrange(10**6)}"
        elif kind == 3:
            word = "".join(rng.choice(words) for _ in range(rng.randrange(1, 4)))
            key = word[: rng.randrange(1, 12)]  # every UTF-8 length mod 4
        else:
            key = rng.randrange(-(10**9), 10**9)  # a JSON number: both sides stringify it
        out.append((g, key))
    return out


def run_node(node: str, pairs: list[tuple[str, str | int]]) -> list[int]:
    # Half the lines escape non-ASCII (\uXXXX, surrogate pairs), half send raw UTF-8.
    lines = [
        json.dumps({"group": g, "key": k}, ensure_ascii=i % 2 == 0)
        for i, (g, k) in enumerate(pairs)
    ]
    proc = subprocess.run(
        [node, str(JS)],
        input=("\n".join(lines) + "\n").encode("utf-8"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return [int(x) for x in proc.stdout.decode().split()]


def test_node_buckets_equal_python(node):
    pairs = cases()
    assert len(pairs) >= 10_000
    got = run_node(node, pairs)
    assert len(got) == len(pairs), "node printed a different number of buckets than it was fed"
    want = [bucket(g, str(k)) for g, k in pairs]
    diff = [(g, k, j, p) for (g, k), j, p in zip(pairs, got, want, strict=True) if j != p]
    assert not diff, (
        f"{len(diff)} of {len(pairs)} differ, e.g. (group, key, node, python): {diff[:5]}"
    )
    # the same rollout decision at 25 %
    node_in = [b <= 25 for b in got]
    py_in = [in_rollout(g, str(k), 25) for g, k in pairs]
    assert node_in == py_in
    assert 0.2 < sum(py_in) / len(py_in) < 0.3


def test_node_module_api(node):
    script = (
        "const b = require(process.argv[1]);"
        "console.log(JSON.stringify(["
        "b.murmur3_32('My 🚀 is full of 🦎.', 0), b.murmur3_32('', 1),"
        "b.bucket('billing.v3', 'josé'), b.bucket('checkout-v2', 42),"
        "b.inRollout('checkout-v2', '42', 42), b.inRollout('checkout-v2', '42', 41),"
        "b.inRollout('checkout-v2', '42', 0), b.inRollout('checkout-v2', '42', 100)]));"
    )
    proc = subprocess.run(
        [node, "-e", script, str(JS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    # 1818098979: reference C++ MurmurHash3_x86_32 of those UTF-8 bytes; 1364076727: mmh3("", 1)
    assert json.loads(proc.stdout) == [
        1818098979,
        1364076727,
        bucket("billing.v3", "josé"),
        bucket("checkout-v2", "42"),
        True,
        False,
        False,
        True,
    ]


def test_node_empty_input(node):
    proc = subprocess.run([node, str(JS)], input=b"", capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0
    assert proc.stdout == b""

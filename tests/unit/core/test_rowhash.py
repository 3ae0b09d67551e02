"""The canonical SHA-256 over table rows that a backup's checksum is made of."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from switchover.core.rowhash import RowHasher


def digest(*tables: tuple[str, list[Sequence[Any]]], bools: Sequence[int] = ()) -> str:
    h = RowHasher()
    for name, rows in tables:
        h.add(name, rows, bools)
    return h.hexdigest()


ROWS: list[Sequence[Any]] = [
    ("c1", "t1", "Hola", True, 1.5, None),
    ("c2", "t1", "Adiós", False, 2.0, "x"),
]


def test_the_digest_is_sha256_of_one_json_line_per_row() -> None:
    # documented so that another tool can recompute a backup's checksum
    expected = hashlib.sha256(
        b'["voice_agent_configs","c1","t1","Hola",true,1.5,null]\n'
        b'["voice_agent_configs","c2","t1","Adi\xc3\xb3s",false,2.0,"x"]\n'
    ).hexdigest()
    assert digest(("voice_agent_configs", ROWS)) == expected


def test_same_rows_same_digest_and_rows_are_counted() -> None:
    h = RowHasher()
    assert h.add("a", ROWS) == 2
    assert h.add("b", iter(ROWS)) == 2  # any iterable, e.g. a cursor page
    assert h.rows == 4
    assert h.hexdigest() == digest(("a", ROWS), ("b", ROWS))


def test_row_order_and_table_order_matter() -> None:
    base = digest(("configs", ROWS), ("calls", [("k1", 3)]))
    assert digest(("configs", ROWS[::-1]), ("calls", [("k1", 3)])) != base
    assert digest(("calls", [("k1", 3)]), ("configs", ROWS)) != base
    # the same rows under another table's name are other rows
    assert digest(("metrics", ROWS), ("calls", [("k1", 3)])) != base


def test_sqlite_0_1_and_postgres_false_true_give_the_same_digest() -> None:
    sqlite_rows = [("c1", "Hola", 1), ("c2", "Adiós", 0), ("c3", "x", None)]
    pg_rows = [("c1", "Hola", True), ("c2", "Adiós", False), ("c3", "x", None)]
    assert digest(("configs", sqlite_rows), bools=(2,)) == digest(("configs", pg_rows), bools=(2,))
    # the normalisation is what makes them equal: without it 1 is not true
    assert digest(("configs", sqlite_rows)) != digest(("configs", pg_rows))
    # and null is not false
    assert digest(("configs", [("c3", "x", None)]), bools=(2,)) != digest(
        ("configs", [("c3", "x", 0)]), bools=(2,)
    )


def test_a_one_character_change_changes_the_digest() -> None:
    big = "tacos al pastor 🌮. " * 3000
    base = digest(("configs", [("c1", big, "es-MX")]))
    changed = big[:30000] + "X" + big[30001:]
    assert digest(("configs", [("c1", changed, "es-MX")])) != base
    assert digest(("configs", [("c1", big, "es-MX ")])) != base
    assert digest(("configs", [("c1", big, "es-mx")])) != base
    # a value's type is part of it: 1 and 1.0 and "1" are three different rows
    assert len({digest(("m", [("c1", v)])) for v in (1, 1.0, "1")}) == 3


def test_rows_cannot_run_into_each_other() -> None:
    two = digest(("t", [("a",), ("b",)]))
    assert digest(("t", [("a", "b")])) != two
    assert digest(("t", [("ab",)])) != two
    # a value that contains what a row boundary looks like is still one value
    assert digest(("t", [('a"]\n["t","b',)])) != two
    assert digest(("t", [("a\nb",)])) != two
    # where a value ends is not ambiguous either
    assert digest(("t", [("ab", "c")])) != digest(("t", [("a", "bc")]))
    # nor where the table name ends
    assert digest(("t", [("1", "x")])) != digest(("t1", [("x",)]))

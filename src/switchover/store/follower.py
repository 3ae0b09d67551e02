"""One way to follow the rollups table: new rows by id, and the rows that commit late.

Ids come from a sequence when a row is inserted, not when its transaction commits. On
PostgreSQL two writers can commit out of id order: the row with id 100 becomes visible
after the row with id 101. A reader that only asks for ids above the last one it saw
skips id 100 for ever, and a controller built on it never judges those calls.

:class:`RollupFollower` remembers every id it skipped over (a gap) with the time it saw
the gap, and asks for those ids again at each poll until they show up or
``gap_seconds`` pass. A gap that outlives that is a rolled-back insert: the store's
sessions end any statement or idle transaction after 15 s
(:mod:`switchover.store.engine`), so no insert stays uncommitted longer than that.
The controller's evidence, the dashboard's charts and ``/metrics`` each keep one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from switchover.store.ports import Repository
from switchover.store.records import StoredRollup

PAGE_ROWS = 5000
GAP_SECONDS = 60.0
"""How long a skipped id is looked for: four times the store's 15 s transaction limit."""
MAX_GAP_IDS = 2000
"""Skipped ids remembered at most (the oldest are given up first)."""
MAX_GAP_RUNS = 8
"""Runs of consecutive skipped ids asked for per poll, newest first."""

Row = tuple[int, StoredRollup]


class RollupFollower:
    """Rows of the rollups table not handed out yet, oldest id first within a poll.

    Not thread-safe: each reader keeps its own, or holds a lock around :meth:`poll`.
    """

    def __init__(
        self,
        store: Repository,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        gap_seconds: float = GAP_SECONDS,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        self.store = store
        self._monotonic = monotonic
        self.gap_seconds = gap_seconds
        self.page_rows = page_rows
        self.last_id: int | None = None
        """The highest id handed out (or the table's when following began)."""
        self._gaps: dict[int, float] = {}

    @property
    def gaps(self) -> int:
        """Skipped ids still looked for."""
        return len(self._gaps)

    def start(self) -> int:
        """Follow from the table's newest row (once); returns that id."""
        if self.last_id is None:
            with self.store.read() as tx:
                self.last_id = tx.max_rollup_id()
        return self.last_id

    def start_at(self, last_id: int) -> None:
        """Follow from ``last_id`` (0: every row of the table)."""
        self.last_id = last_id
        self._gaps.clear()

    def poll(self) -> list[Row]:
        """Late rows found in the gaps, then every row after :attr:`last_id`."""
        last = self.start()
        now = self._monotonic()
        for gap in [g for g, seen in self._gaps.items() if now - seen > self.gap_seconds]:
            del self._gaps[gap]
        found: list[Row] = []
        pages: list[list[Row]] = []
        with self.store.read() as tx:
            for first, last_gap in self._gap_runs():
                rows = tx.rollups_after(first - 1, limit=last_gap - first + 1)
                found.extend((i, r) for i, r in rows if first <= i <= last_gap and i in self._gaps)
            while True:
                page = tx.rollups_after(last, limit=self.page_rows)
                pages.append(page)
                if len(page) < self.page_rows:
                    break
                last = page[-1][0]
        out: list[Row] = []
        for row_id, row in found:
            del self._gaps[row_id]
            out.append((row_id, row))
        expected = self.last_id + 1 if self.last_id is not None else 1
        for page in pages:
            for row_id, row in page:
                for missing in range(expected, min(row_id, expected + MAX_GAP_IDS)):
                    self._gaps[missing] = now
                expected = row_id + 1
                out.append((row_id, row))
        self.last_id = expected - 1
        if len(self._gaps) > MAX_GAP_IDS:
            for gap in sorted(self._gaps)[: len(self._gaps) - MAX_GAP_IDS]:
                del self._gaps[gap]
        return out

    def _gap_runs(self) -> list[tuple[int, int]]:
        runs: list[tuple[int, int]] = []
        for gap in sorted(self._gaps):
            if runs and runs[-1][1] == gap - 1:
                runs[-1] = (runs[-1][0], gap)
            else:
                runs.append((gap, gap))
        return runs[::-1][:MAX_GAP_RUNS]

"""CLI: the core worker, its load test and its cost estimate (seed 000)."""

from __future__ import annotations

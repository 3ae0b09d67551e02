"""Fixtures of the HTTP tests."""

from __future__ import annotations

import pytest

from switchover.bootstrap import App


@pytest.fixture
def tokens(app: App) -> dict[str, str]:
    """One live token per role, named after it (the name is the audit actor)."""
    return {
        role: app.tokens.create(f"{role}-bot", role, actor="test")
        for role in ("viewer", "worker", "operator", "admin")
    }

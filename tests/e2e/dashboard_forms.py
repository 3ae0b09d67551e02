"""Signing in to the dashboard as a browser does, for the HTTP tests."""

from __future__ import annotations

import re
from typing import Any


def sign_in_form(client: Any, token: str, next_page: str = "/") -> Any:
    """Load the sign-in form (its CSRF value and cookie), then post it with ``token``."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    return client.post("/login", data={"token": token, "next": next_page, "csrf": csrf.group(1)})

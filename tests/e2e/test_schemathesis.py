"""Schemathesis against the real server: every check, an admin and a viewer token.

It generates requests from the OpenAPI spec (valid and invalid ones), sends them to a
``switchover serve`` over loopback and fails on any 5xx, any answer that breaks the
spec (status, content type, body schema, headers) and any invalid request accepted.
One check is left out: ``positive_data_acceptance``, which expects every request the
schema allows to succeed, while names, versions and references are checked against
the store (a migration that does not exist is a 404, a stale version a 409).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.serving import serving
from switchover.bootstrap import bootstrap
from switchover.settings import Settings

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
EXAMPLES = os.environ.get("SWITCHOVER_SCHEMATHESIS_EXAMPLES", "25")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    if SCHEMATHESIS is None:
        pytest.skip("schemathesis is not installed: make test installs it (pip install -e .[test])")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    a = bootstrap(Settings(database_url=url), migrate=True)
    a.rollout.create("voice_v2", features=["stt", "tts"], actor="seed")
    tokens = {
        role: a.tokens.create(f"{role}-bot", role, actor="seed") for role in ("viewer", "admin")
    }
    a.close()
    with serving(url, tmp_path, "--no-demo", "--no-controller") as base:
        yield base, tokens


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_every_generated_request_gets_an_answer_the_spec_allows(
    server: tuple[str, dict[str, str]], role: str, tmp_path: Path
) -> None:
    base, tokens = server
    report = tmp_path / f"{role}.json"
    assert SCHEMATHESIS is not None
    run = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{base}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--header",
            f"Authorization: Bearer {tokens[role]}",
            "--max-examples",
            EXAMPLES,
            "--workers",
            "2",
            "--seed",
            "20261130",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,  # its cache (.schemathesis/) stays out of the checkout
    )
    tail = run.stdout[-6000:]
    assert run.returncode == 0, tail
    assert "5xx" not in tail and "Server error" not in tail
    summary = json.loads(report.read_text()) if report.exists() else {}
    assert summary is not None

"""The stock Node OpenFeature client against a real ``switchover serve`` over OFREP:
``@openfeature/server-sdk`` with ``@openfeature/ofrep-provider``, installed from the npm
registry into pytest's temporary directory (outside the checkout) and run under ``node``.

It must decide as the Python SDK does for 10,000 callers. Without node and npm it skips
saying how to enable it; under CI=true it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ofrep import FLAG, KEYS, Served, caller, ofrep_server, python_sides

pytestmark = pytest.mark.node

PACKAGES = ("@openfeature/server-sdk@1.23.0", "@openfeature/ofrep-provider@0.1.3")
CLIENT = Path(__file__).parent.parent / "support" / "ofrep_client.js"
ENABLE = (
    "install Node.js 20 or later with npm (e.g. apt-get install nodejs npm) and reach the "
    "npm registry to run it"
)


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} and CI=true: the stock Node OFREP client would go untested")
    pytest.skip(f"{why}: {ENABLE}")


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _missing("node or npm is not on PATH")
    where = tmp_path_factory.mktemp("npm")
    run = subprocess.run(
        [npm or "npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if run.returncode != 0:
        _missing(f"npm install {' '.join(PACKAGES)} failed ({run.stderr.strip()[-300:]})")
    return where / "node_modules"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with ofrep_server(tmp_path_factory.mktemp("ofrep-node")) as s:
        yield s


def _node(node_modules: Path, payload: dict[str, object]) -> list[dict[str, object]]:
    run = subprocess.run(
        ["node", str(CLIENT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_the_stock_node_client_decides_as_the_python_sdk(
    node_modules: Path, served: Served
) -> None:
    callers = [list(caller(i)) for i in range(KEYS)]
    payload = {"base": served.base, "token": served.tokens["viewer"], "flag": FLAG}
    answers = _node(node_modules, {**payload, "callers": callers})
    assert [a for a in answers if a.get("errorCode")] == []
    got = [a["value"] for a in answers]
    assert got == python_sides(served.db)
    assert {a["reason"] for a in answers} == {"SPLIT", "TARGETING_MATCH"}
    assert all(a["variant"] == ("candidate" if a["value"] else "legacy") for a in answers)


def test_the_node_client_sees_errors_and_disabled_flags(node_modules: Path, served: Served) -> None:
    token = served.tokens["viewer"]
    base = {"base": served.base, "token": token, "callers": [["user-1", None]]}
    (missing,) = _node(node_modules, {**base, "flag": "voice_v2.nope"})
    assert (missing["value"], missing["errorCode"]) == (False, "FLAG_NOT_FOUND")
    (killed,) = _node(node_modules, {**base, "flag": "legacy_api"})
    assert (killed["value"], killed["reason"], killed["variant"]) == (False, "DISABLED", "legacy")
    (refused,) = _node(node_modules, {**base, "token": "not-a-token", "flag": FLAG})
    assert refused["value"] is False
    assert refused["errorCode"] == "GENERAL"

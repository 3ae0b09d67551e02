"""The CLI starts without loading what its commands do not need.

``switchover --help`` and ``switchover status`` run in a fresh interpreter each; the test
reads which modules were loaded (``sys.modules``), never how long it took: the timings
are bench/startup.py's job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from switchover.bootstrap import bootstrap
from switchover.settings import Settings

# what the store, the statistics, the HTTP server and client, YAML and the keyring cost
# (not pydantic: Typer itself validates parameters with it when a command runs)
HEAVY = (
    "alembic",
    "cryptography",
    "fastapi",
    "httpx",
    "numpy",
    "scipy",
    "sqlalchemy",
    "switchover.bootstrap",
    "switchover.store",
    "uvicorn",
    "yaml",
)

DRIVER = """
import json, sys
out, argv = sys.argv[1], sys.argv[2:]
sys.argv = ["switchover", *argv]
from switchover.cli.main import main
try:
    main()
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
with open(out, "w") as f:
    json.dump(sorted(sys.modules), f)
"""


def loaded(tmp_path: Path, *argv: str) -> set[str]:
    """The modules a fresh ``switchover ARGV`` process holds when it is done."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(out), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "120"},
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text()))


def baseline(tmp_path: Path) -> set[str]:
    """What ``import switchover`` (the package the CLI lives in) loads by itself."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, switchover; print(json.dumps(list(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=True,
    )
    return set(json.loads(proc.stdout))


def heavy(modules: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(n for n in names if n in modules)


def test_help_loads_no_store_statistics_or_web_library(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    assert "switchover.cli.main" in modules and "typer" in modules
    assert heavy(modules) == []


def test_help_of_every_group_loads_no_store_statistics_or_web_library(tmp_path: Path) -> None:
    for group in ("migration", "plan", "data", "agents", "worker"):
        assert heavy(loaded(tmp_path, group, "--help")) == [], group


def test_help_does_not_load_the_sdk(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    assert "switchover.sdk" not in modules


def test_status_loads_neither_the_statistics_nor_the_web_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    app = bootstrap(Settings(database_url=url), migrate=True)
    try:
        app.rollout.create("voice_v2", features=["stt"], actor="test")
    finally:
        app.close()
    modules = loaded(tmp_path, "--db", url, "status", "voice_v2")
    assert "switchover.cli.status" in modules and "sqlalchemy" in modules
    assert (
        heavy(modules, ("scipy", "numpy", "fastapi", "uvicorn", "alembic", "switchover.api")) == []
    )
    assert "switchover.sdk" not in modules

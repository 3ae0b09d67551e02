"""``switchover agents …`` end to end in a subprocess, on both engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.fernet import Fernet
from typer.testing import CliRunner

from switchover.cli.main import app as cli_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "agents.json"
GREETER = "cmgr32z4q000039dudjfah00c"
SUPPORT = "cmgr3b1xk000139du8h2kq7pz"
SECRET = "sk-cli-greeting-secret-77"
KEY = Fernet.generate_key().decode()


def run(db: str, *args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    env.update({"SWITCHOVER_SECRET_KEY": KEY, "GREETING_OPENAI_API_KEY": SECRET, **extra})
    return subprocess.run(
        [sys.executable, "-m", "switchover.cli.main", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        input=stdin,
        check=False,
    )


def ok(db: str, *args: str, **kw: str) -> object:
    proc = run(db, *args, "--json", **kw)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


def parallel(db: str, *calls: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda args: run(db, *args), calls))


def test_import_list_show_keys_and_runtime_config(db_url: str, tmp_path: Path) -> None:
    assert ok(db_url, "agents", "import", str(EXAMPLE))["created"]["agents"] == 4
    listed, shown, revealed, cfg, route, unknown = parallel(
        db_url,
        ("agents", "list", "--json"),
        ("agents", "show", GREETER),
        ("agents", "show", GREETER, "--reveal-keys", "--json"),
        ("agents", "runtime-config", GREETER, "--campaign", "camp_inbound_reception", "--json"),
        ("agents", "route", "+1 415 555 0100", "--json"),
        ("agents", "route", "+14155550111"),
    )
    assert SECRET not in listed.stdout and len(json.loads(listed.stdout)) == 4
    assert SECRET not in shown.stdout + shown.stderr and "llm_api_key" in shown.stdout
    assert json.loads(revealed.stdout)["keys"] == {"llm_api_key": SECRET}
    config = json.loads(cfg.stdout)["config"]
    assert config["llm_api_key"] == "<set>" and config["is_primary"] is True
    assert json.loads(route.stdout)["agent_id"] == GREETER
    assert unknown.returncode == 3 and "agents number set" in " ".join(unknown.stderr.split())
    keyed = ok(db_url, "agents", "key", "set", SUPPORT, "tts_api_key", stdin="ck-stdin\n")
    assert keyed["keys_set"] == ["tts_api_key"]
    changed = ok(db_url, "agents", "set", SUPPORT, "--temperature", "0", "--inactive")
    assert changed["temperature"] == 0.0 and changed["is_active"] is False
    assert changed["llm_model"] == "gpt-4o"  # fields not given stay
    full, inactive = parallel(
        db_url,
        ("agents", "show", SUPPORT, "--reveal-keys", "--json"),
        ("agents", "runtime-config", SUPPORT),
    )
    assert json.loads(full.stdout)["keys"] == {"tts_api_key": "ck-stdin"}
    assert inactive.returncode == 2 and "switchover agents activate" in inactive.stderr


def test_bad_input_exits_non_zero_and_writes_nothing(tmp_path: Path) -> None:
    """All or nothing on both engines is proven in tests/integration/test_agents_store.py."""
    db_url = f"sqlite:///{tmp_path / 'bad.db'}"
    assert run(db_url, "init").returncode == 0  # not four first-time upgrades racing
    bad = tmp_path / "bad.json"
    doc = json.loads(EXAMPLE.read_text())
    doc["campaigns"][0]["agents"].append({"agent_id": "ghost"})
    bad.write_text(json.dumps(doc))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda args: run(db_url, *args),
                [
                    ("agents", "import", str(bad)),
                    ("agents", "import", str(broken)),
                    ("agents", "import", str(tmp_path / "missing.json")),
                    ("agents", "set", "x1", "--name", "X", "--llm-provider", "skynet"),
                ],
            )
        )
    assert [r.returncode for r in results] == [2, 2, 2, 2]
    errors = [" ".join(r.stderr.split()) for r in results]
    assert "ghost" in errors[0] and "not valid JSON" in errors[1]
    assert "no such file" in errors[2] and "llm_provider" in errors[3]
    assert ok(db_url, "agents", "list") == []
    nokey = run(db_url, "agents", "import", str(EXAMPLE), SWITCHOVER_SECRET_KEY="")
    assert nokey.returncode == 8 and "agents keygen" in " ".join(nokey.stderr.split())
    assert ok(db_url, "agents", "list") == []


def test_every_agents_command_has_help_and_keygen_makes_a_fernet_key(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'h.db'}"
    commands = [
        ("agents",),
        ("agents", "import"),
        ("agents", "list"),
        ("agents", "show"),
        ("agents", "set"),
        ("agents", "activate"),
        ("agents", "deactivate"),
        ("agents", "delete"),
        ("agents", "keygen"),
        ("agents", "runtime-config"),
        ("agents", "route"),
        ("agents", "key", "set"),
        ("agents", "key", "clear"),
        ("agents", "campaign", "set"),
        ("agents", "campaign", "list"),
        ("agents", "number", "set"),
        ("agents", "number", "list"),
        ("worker", "start"),
        ("worker", "dev"),
        ("worker", "cost-estimate"),
        ("loadtest",),
    ]
    runner = CliRunner()
    for cmd in commands:
        result = runner.invoke(cli_app, [*cmd, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, cmd
    key = ok(db, "agents", "keygen")["SWITCHOVER_SECRET_KEY"]
    Fernet(key.encode())

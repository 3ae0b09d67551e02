"""The ``switchover`` CLI end to end: the real command line in a subprocess, on both engines.

Each call costs a Python start-up, so the tests group many assertions per call and run
independent calls (bad input, ``--help``) in parallel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from switchover.bootstrap import bootstrap
from switchover.cli.main import app as cli_app
from switchover.core.bucketing import in_rollout
from switchover.settings import Settings
from switchover.store.engine import redact_url

NAME = "voice_v2"


def run(
    db: str | None, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    base["SWITCHOVER_ACTOR"] = "default-actor"
    cmd = [sys.executable, "-m", "switchover.cli.main"]
    if db is not None:
        cmd += ["--db", db]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
        cwd=cwd,
        check=False,
    )


def ok_json(db: str, *args: str, **kw: Any) -> Any:
    """Run a command with --json; it must succeed and print nothing but JSON."""
    proc = run(db, *args, "--json", **kw)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


def flat(text: str) -> str:
    """Rich wraps long lines on stderr; compare messages with whitespace collapsed."""
    return " ".join(text.split())


# --- the whole workflow -----------------------------------------------------------------


def test_cli_workflow_from_create_to_audit(db_url: str, tmp_path: Path) -> None:
    db = db_url
    init = ok_json(db, "init", cwd=tmp_path)
    assert init == {"ok": True, "database": redact_url(db)}

    created = ok_json(
        db,
        "migration",
        "create",
        NAME,
        "--features",
        "stt,tts",
        "--stickiness",
        "user_id",
        "--by",
        "alice",
        "--reason",
        "start the move",
    )
    assert created["name"] == NAME
    assert created["features"] == {"stt": False, "tts": False}
    assert created["stickiness"] == "user_id"
    assert (created["enabled"], created["percentage"], created["version"]) == (True, 0, 1)
    assert created["state"] == "draft"
    assert created["updated_by"] == "alice"

    listed = ok_json(db, "migration", "list")
    assert [m["name"] for m in listed] == [NAME]
    assert created["message"].startswith(f"{NAME} created")
    shown = ok_json(db, "migration", "show", NAME)
    assert shown == {k: v for k, v in created.items() if k not in ("message", "changes", "notes")}

    m = ok_json(
        db, "rollout", "set", NAME, "--percentage", "30", "--by", "bob", "--reason", "canary"
    )
    assert (m["percentage"], m["state"], m["version"], m["updated_by"]) == (
        30,
        "rolling",
        2,
        "bob",
    )
    assert {"field": "percentage", "before": 0, "after": 30} in m["changes"]
    m = ok_json(db, "feature", "enable", NAME, "stt", "--by", "carol", "--reason", "stt ready")
    assert m["features"] == {"stt": True, "tts": False}

    # the human form of a change: a table naming the result
    proc = run(db, "feature", "disable", NAME, "tts", "--by", "carol", "--reason", "tts later")
    assert proc.returncode == 0, proc.stderr
    assert "stt=on" in proc.stdout and "tts=off" in proc.stdout
    assert "feature tts is off" in flat(proc.stdout)  # the answer says what it did

    m = ok_json(db, "tenant", "enable", NAME, "t1", "--by", "dave", "--reason", "vip")
    assert m["tenants"] == {"allow": ["t1"], "deny": []}
    m = ok_json(db, "tenant", "disable", NAME, "t2", "--by", "dave", "--reason", "flaky")
    assert m["tenants"] == {"allow": ["t1"], "deny": ["t2"]}
    m = ok_json(db, "tenant", "clear", NAME, "t2", "--by", "erin", "--reason", "fixed")
    assert m["tenants"] == {"allow": ["t1"], "deny": []}

    decide_t1 = ("decide", NAME, "--feature", "stt", "--context", "user_id=42")
    d = ok_json(db, *decide_t1, "--context", "tenant_id=t1")
    assert d == {
        "side": "candidate",
        "reason": "tenant_allow",
        "migration": NAME,
        "feature": "stt",
        "version": 7,
        "context": {"user_id": "42", "tenant_id": "t1"},
    }

    m = ok_json(db, "kill", NAME, "--by", "frank", "--reason", "p0 incident")
    assert (m["enabled"], m["state"]) == (False, "rolled_back")
    d = ok_json(db, *decide_t1, "--context", "tenant_id=t1")
    assert (d["side"], d["reason"]) == ("legacy", "kill_switch")

    m = ok_json(db, "resume", NAME, "--by", "grace", "--reason", "all clear")
    assert (m["enabled"], m["state"], m["percentage"]) == (True, "rolling", 30)

    # without --by the actor is $SWITCHOVER_ACTOR
    m = ok_json(db, "rollout", "set", NAME, "-p", "40", env={"SWITCHOVER_ACTOR": "ci-robot"})
    assert (m["percentage"], m["updated_by"], m["version"]) == (40, "ci-robot", 10)

    d = ok_json(db, *decide_t1, "--context", "tenant_id=t9")
    expected_side = "candidate" if in_rollout(NAME, "42", 40) else "legacy"
    assert (d["side"], d["reason"]) == (
        expected_side,
        "bucket_in" if expected_side == "candidate" else "bucket_out",
    )

    status = ok_json(db, "status", NAME)
    assert {"name", "enabled", "percentage", "features", "tenants", "state", "version"} <= set(
        status
    )
    assert status["name"] == NAME
    assert (status["enabled"], status["percentage"], status["state"]) == (True, 40, "rolling")
    assert status["features"] == {"stt": True, "tts": False}
    assert status["tenants"] == {"allow": ["t1"], "deny": []}
    assert status["version"] == 10
    assert (status["tenants_on_candidate"], status["tenants_known"]) == (1, 2)
    assert status["last_change"]["actor"] == "ci-robot"
    assert status["last_change"]["action"] == "set_percentage"
    assert ok_json(db, "status") == [status]

    proc = run(db, "status", NAME)
    assert proc.returncode == 0, proc.stderr
    assert "tenants on candidate" in proc.stdout and "1 / 2" in proc.stdout

    audit = ok_json(db, "audit", NAME)
    rows = [(e["action"], e["actor"], e["reason"], e["version"]) for e in reversed(audit)]
    assert rows == [
        ("create", "alice", "start the move", 1),
        ("set_percentage", "bob", "canary", 2),
        ("enable_feature", "carol", "stt ready", 3),
        ("disable_feature", "carol", "tts later", 4),
        ("tenant_allow", "dave", "vip", 5),
        ("tenant_deny", "dave", "flaky", 6),
        ("tenant_clear", "erin", "fixed", 7),
        ("kill", "frank", "p0 incident", 8),
        ("resume", "grace", "all clear", 9),
        ("set_percentage", "ci-robot", "", 10),
    ]
    assert audit[-1]["before"] is None and audit[-1]["after"]["name"] == NAME
    assert audit[0]["before"]["percentage"] == 30 and audit[0]["after"]["percentage"] == 40

    token = ok_json(db, "token", "create", "deploy-bot", "--role", "operator", "--by", "root")
    assert token["name"] == "deploy-bot" and token["role"] == "operator"
    assert token["token"].startswith("swo_")
    proc = run(db, "token", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert token["token"] not in proc.stdout
    (row,) = json.loads(proc.stdout)
    assert (row["name"], row["role"], row["created_by"], row["revoked"]) == (
        "deploy-bot",
        "operator",
        "root",
        False,
    )
    a = bootstrap(Settings(database_url=db))
    try:
        principal = a.tokens.authenticate(token["token"])
        assert (principal.name, principal.role.value) == ("deploy-bot", "operator")
    finally:
        a.close()


def test_cli_init_creates_an_empty_store_and_can_run_again(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "store.db"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    first = run(url, "init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "store ready" in first.stdout
    assert path.exists()
    assert ok_json(url, "init", cwd=tmp_path) == {"ok": True, "database": url}
    assert ok_json(url, "migration", "list", cwd=tmp_path) == []
    assert not (tmp_path / "switchover.db").exists()  # --db was used, not the default


def test_cli_runs_as_python_dash_m_switchover(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "switchover", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("init", "migration", "rollout", "status", "serve"):
        assert command in proc.stdout


def test_cli_prints_brackets_in_data_literally_never_as_rich_markup(tmp_path: Path) -> None:
    """Rich reads ``[...]`` as markup: an audit value (a tenant list), a reason or a
    description holding brackets comes out as written, not cut short or turned bold."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    text = "['tenant-premium-1'] [bold]x[/bold]"
    wide = {"COLUMNS": "400"}
    assert run(db, "init").returncode == 0
    created = run(
        db, "migration", "create", NAME, "--features", "stt", "--description", text, env=wide
    )
    assert created.returncode == 0, created.stderr
    assert text in created.stdout
    for tenant, why in (("tenant-premium-1", text), ("[bold]x[/bold]", "")):
        proc = run(db, "tenant", "enable", NAME, tenant, "--reason", why, env=wide)
        assert proc.returncode == 0, proc.stderr

    audit = run(db, "audit", NAME, env=wide)
    assert audit.returncode == 0, audit.stderr
    rows = [line for line in audit.stdout.splitlines() if "tenants.allow" in line]
    assert len(rows) == 2, audit.stdout
    assert "tenants.allow: [tenant-premium-1] -> [[bold]x[/bold], tenant-premium-1]" in rows[0]
    assert "tenants.allow: [] -> [tenant-premium-1]" in rows[1]
    assert text in rows[1]  # the reason

    status = run(db, "status", NAME, env=wide)
    assert status.returncode == 0, status.stderr
    assert text in status.stdout  # the description
    assert "[bold]x[/bold], tenant-premium-1" in status.stdout  # tenants allowed


# --- bad input --------------------------------------------------------------------------


BAD = [
    # (args, exit code, field, words the message must contain)
    (("rollout", "set", "nope", "--percentage", "5"), 3, "name", ["'nope'", NAME]),
    (("rollout", "set", NAME, "--percentage", "101"), 2, "percentage", ["0 to 100", "101"]),
    (("rollout", "set", NAME, "--percentage", "-1"), 2, "percentage", ["0 to 100", "-1"]),
    (("rollout", "set", NAME, "--percentage", "abc"), 2, "percentage", ["0 to 100", "abc"]),
    (("feature", "enable", NAME, "video"), 2, "feature", ["'video'", "stt, tts"]),
    (("tenant", "enable", NAME, ""), 2, "tenant", ["non-empty"]),
    (("tenant", "disable", NAME, "   "), 2, "tenant", ["non-empty"]),
    (("tenant", "clear", NAME, "never-set"), 2, "tenant", ["'never-set'"]),
    (
        ("rollout", "set", NAME, "--percentage", "50", "--expect-version", "1"),
        4,
        "version",
        ["version 2", "not 1"],
    ),
    (("kill", NAME, "--expect-version", "3"), 4, "version", ["version 2", "not 3"]),
    (("migration", "create", NAME, "--features", "x"), 4, "name", ["already exists"]),
    (("rollout", "set", NAME, "--percentage", "50", "--by", " "), 2, "by", ["--by"]),
    (("decide", NAME, "--feature", "video", "--context", "user_id=1"), 2, "feature", ["video"]),
    (("decide", NAME, "--context", "user_id"), 2, "context", ["KEY=VALUE"]),
    (("status", "nope", "--json"), 3, "name", ["'nope'"]),
]


def test_cli_bad_input_fails_naming_the_field_and_changes_nothing(db_url: str) -> None:
    a = bootstrap(Settings(database_url=db_url))
    try:
        a.rollout.create(NAME, features=["stt", "tts"], actor="seed", reason="setup")
        a.rollout.set_percentage(NAME, 20, actor="seed")
    finally:
        a.close()
    before_status = ok_json(db_url, "status", NAME)
    before_audit = ok_json(db_url, "audit", NAME)
    assert before_status["version"] == 2 and len(before_audit) == 2

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda case: run(db_url, *case[0]), BAD))

    for (args, code, field, words), proc in zip(BAD, results, strict=True):
        message = flat(proc.stderr)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert proc.stdout == "", (args, proc.stdout)
        assert message.startswith(f"error ({field}):"), (args, message)
        for word in words:
            assert word in message, (args, word, message)
        assert "Traceback" not in proc.stderr, args

    assert ok_json(db_url, "status", NAME) == before_status
    assert ok_json(db_url, "audit", NAME) == before_audit


# --- help -------------------------------------------------------------------------------


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group of the CLI, from the Click tree Typer builds."""
    root = typer.main.get_command(cli_app)
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(path: tuple[str, ...], cmd: Any) -> None:
        found.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk((*path, name), sub)

    walk((), root)
    return found


def test_cli_help_of_every_command_exits_0_and_mentions_every_option() -> None:
    commands = _commands()
    paths = {path for path, _ in commands}
    # the command list of the issue, all present
    for expected in [
        ("init",),
        ("migration", "create"),
        ("migration", "list"),
        ("migration", "show"),
        ("rollout", "set"),
        ("feature", "enable"),
        ("feature", "disable"),
        ("tenant", "enable"),
        ("tenant", "disable"),
        ("tenant", "clear"),
        ("kill",),
        ("resume",),
        ("status",),
        ("audit",),
        ("decide",),
        ("token", "create"),
        ("serve",),
    ]:
        assert expected in paths, expected

    # in process: a fresh interpreter per command took a minute of the suite, and the
    # entry point's own --help is run in a subprocess by test_cli_startup; wide enough
    # that Rich never shortens a long option's name (a test has no terminal)
    runner = CliRunner()
    for path, cmd in commands:
        result = runner.invoke(
            cli_app, [*path, "--help"], env={"COLUMNS": "200"}, terminal_width=200
        )
        assert result.exit_code == 0, (path, result.output)
        out = result.stdout
        options = [
            opt
            for param in cmd.params
            if param.param_type_name == "option"
            for opt in (*param.opts, *param.secondary_opts)
        ]
        for opt in [*options, "--help"]:
            assert opt in out, (path, opt)
        for sub in getattr(cmd, "commands", {}):
            assert sub in out, (path, sub)
        assert (cmd.help or "").split(".")[0].split(":")[0][:30] in flat(out), path

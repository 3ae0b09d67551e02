"""Plans from the command line: apply, controller pass, show, manual control, rollback, simulate."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_rollout import flat, ok_json, run

NAME = "voice_v2"
PLAN = """\
plan: quick
interval: 1m
window: 30m
guardrails:
  - error_rate < 5%
  - p95_ratio <= 1.2
phases:
  - {name: canary, percentage: 5, features: [stt], duration: 20m}
  - {name: half, percentage: 50, features: [stt, tts], duration: 20m}
  - {name: full, percentage: 100, features: [stt, tts], duration: 10m, requires_approval: true}
"""


def _store(tmp_path: Path) -> tuple[str, Path]:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    plan = tmp_path / "quick.yaml"
    plan.write_text(PLAN)
    ok_json(db, "init")
    ok_json(db, "migration", "create", NAME, "--features", "stt,tts")
    return db, plan


def test_plan_lifecycle_from_the_cli(tmp_path: Path) -> None:
    db, plan = _store(tmp_path)
    applied = ok_json(db, "plan", "apply", NAME, str(plan), "--by", "alice")
    assert applied["status"] == "running" and applied["phase_index"] == -1

    # a second apply is refused while the first is active, and says how to go on
    again = run(db, "plan", "apply", NAME, str(plan))
    assert again.returncode == 4 and "abort" in flat(again.stderr)

    # one controller pass starts the first phase: percentage and features in one change
    passed = ok_json(db, "controller", "run", "--once")
    assert [v["action"] for v in passed] == ["start"]
    shown = ok_json(db, "migration", "show", NAME)
    assert shown["percentage"] == 5 and shown["features"] == {"stt": True, "tts": False}
    assert shown["updated_by"] == "controller"

    status = ok_json(db, "status", NAME)
    assert status["plan"]["phase"] == "canary"
    assert status["plan"]["last_verdict"]["action"] == "start"
    human = run(db, "status", NAME)
    assert "canary at 5%" in flat(human.stdout) and "last verdict" in human.stdout

    # promote, then pause / resume, then approve, each audited under --by
    assert ok_json(db, "promote", NAME, "--by", "bob")["phase"] == "half"
    assert ok_json(db, "migration", "show", NAME)["features"] == {"stt": True, "tts": True}
    assert ok_json(db, "pause", NAME, "--by", "bob")["status"] == "paused"
    assert ok_json(db, "plan", "resume", NAME, "--by", "bob")["status"] == "running"
    assert ok_json(db, "approve", NAME, "--by", "carol")["approved_index"] == 2
    audit = ok_json(db, "audit", NAME, "--limit", "20")
    actions = [(e["action"], e["actor"]) for e in audit]
    for expected in [
        ("plan_apply", "alice"),
        ("advance", "controller"),
        ("promote", "bob"),
        ("plan_promote", "bob"),
        ("plan_pause", "bob"),
        ("plan_resume", "bob"),
        ("plan_approve", "carol"),
    ]:
        assert expected in actions, (expected, actions)

    # rollback levels: tenant, partial (plan moves to the highest phase not above it), total
    tenant = ok_json(db, "rollback", NAME, "--level", "tenant", "--tenant-id", "acme")
    assert tenant["migration"]["tenants"]["deny"] == ["acme"]
    partial = ok_json(db, "rollback", NAME, "--level", "partial", "--target-percentage", "10")
    assert partial["migration"]["percentage"] == 10
    assert partial["plan"]["phase"] == "canary" and partial["plan"]["status"] == "rolled_back"
    total = ok_json(db, "rollback", NAME, "--level", "total", "--reason", "pager went off")
    assert total["migration"]["percentage"] == 0 and total["migration"]["enabled"] is False
    assert total["plan"]["status"] == "aborted"

    verdicts = ok_json(db, "plan", "verdicts", NAME)
    assert verdicts and verdicts[0]["actor"] == "controller"
    human = run(db, "plan", "show", NAME)
    assert human.returncode == 0 and "canary" in human.stdout and "verdicts" in human.stdout


def test_bad_plans_name_file_and_field_and_write_nothing(tmp_path: Path) -> None:
    db, _ = _store(tmp_path)
    before = ok_json(db, "audit", NAME)
    cases = {
        "typo.yaml": (PLAN.replace("duration: 20m}", "duraton: 20m}", 1), "phases[0].duraton"),
        "shrinks.yaml": (PLAN.replace("percentage: 50", "percentage: 3"), "phases[1].percentage"),
        "gate.yaml": (PLAN.replace("error_rate < 5%", "error_rate > 5%"), "guardrails[0]"),
        "feature.yaml": (
            PLAN.replace("[stt, tts], duration: 20m", "[stt, llm], duration: 20m"),
            "phases[1].features[1]",
        ),
    }
    for file, (text, field) in cases.items():
        path = tmp_path / file
        path.write_text(text)
        proc = run(db, "plan", "apply", NAME, str(path))
        assert proc.returncode == 2, (file, proc.stderr)
        message = flat(proc.stderr)
        assert f"({field})" in message, (file, message)
        if file != "feature.yaml":
            assert file in message, message
    missing = run(db, "plan", "apply", NAME, str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file" in flat(missing.stderr)
    assert run(db, "plan", "show", NAME).returncode == 3
    assert ok_json(db, "audit", NAME) == before
    bad_level = run(db, "rollback", NAME, "--level", "everything")
    assert bad_level.returncode == 2 and "tenant, partial, total" in flat(bad_level.stderr)
    no_tenant = run(db, "rollback", NAME, "--level", "tenant")
    assert no_tenant.returncode == 2 and "--tenant-id" in flat(no_tenant.stderr)
    assert ok_json(db, "audit", NAME) == before


def test_simulate_prints_timeline_and_final_state(tmp_path: Path) -> None:
    plan = tmp_path / "quick.yaml"
    plan.write_text(PLAN.replace(", requires_approval: true", ""))
    good = ok_json(None, "plan", "simulate", str(plan), "--rate", "50/s", "--seed", "7")  # type: ignore[arg-type]
    assert good["state"] == "completed" and good["final_percentage"] == 100
    assert [e["action"] for e in good["timeline"]] == ["start", "advance", "advance", "complete"]
    slow = ok_json(
        None,  # type: ignore[arg-type]
        "plan",
        "simulate",
        str(plan),
        "--legacy-p95",
        "400ms",
        "--candidate-p95",
        "520ms",
        "--candidate-errors",
        "0.5%",
        "--rate",
        "50/s",
        "--seed",
        "7",
    )
    assert slow["state"] == "rolled_back"
    assert "p95_ratio" in json.dumps(slow["timeline"][-1])
    bad = run(None, "plan", "simulate", str(plan), "--rate", "fast")
    assert bad.returncode == 2 and "--rate" in flat(bad.stderr)
    human = run(None, "plan", "simulate", str(plan), "--seed", "7")
    assert human.returncode == 0 and "final state: completed" in flat(human.stdout)


def test_simulate_takes_traffic_per_operation(tmp_path: Path) -> None:
    """Options prefixed OP: set one operation's traffic; the rest keep the defaults."""
    plan = tmp_path / "voice.yaml"
    plan.write_text(
        "plan: voice\ninterval: 1m\nwindow: 10m\nrecent: 2m\n"
        "phases:\n  - {name: canary, percentage: 20, duration: 30m,"
        " gates: ['error_rate < 5% on voice', 'p95 < 800ms']}\n"
    )
    healthy = ok_json(None, "plan", "simulate", str(plan), "--rate", "voice:5/s", "--seed", "3")  # type: ignore[arg-type]
    assert healthy["state"] == "completed"
    failing = ok_json(
        None,  # type: ignore[arg-type]
        "plan",
        "simulate",
        str(plan),
        "--candidate-errors",
        "voice:30%",
        "--candidate-errors",
        "0.5%",
        "--seed",
        "3",
    )
    assert failing["state"] == "rolled_back"
    assert "error_rate" in json.dumps(failing["timeline"][-1])
    unknown = run(None, "plan", "simulate", str(plan), "--rate", "vocie:5/s")
    assert unknown.returncode == 2
    assert "vocie" in flat(unknown.stderr) and "call, voice" in flat(unknown.stderr)

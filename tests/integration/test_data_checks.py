"""Seed 003 §6.2's validation checks on SQLite and PostgreSQL: each one made to fail,
``--fix`` and what it may not touch, and migrate's pre-flight on invalid v1 rows."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from switchover.core.clock import ManualClock
from switchover.data import backup as backups
from switchover.data import schema as s
from switchover.data.checks import CHECKS, Checker, CheckResult, Report
from switchover.data.migrate import MigrateOptions, Migrator, RunRecord
from switchover.data.seed import seed_demo
from switchover.data.source import Scope, Source
from switchover.errors import DataCheckError, ValidationError

SEVERITIES = {
    "record_count": "critical",
    "data_integrity": "critical",
    "foreign_keys": "critical",
    "schema_version": "high",
    "duplicates": "medium",
    "value_constraints": "medium",
}


@pytest.fixture
def source(data_url: str) -> Iterator[Source]:
    src = Source(data_url)
    yield src
    src.dispose()


# --- helpers ------------------------------------------------------------------------------


def sql(src: Source, text: str, params: dict[str, Any] | None = None) -> None:
    with src.engine.begin() as conn:
        conn.execute(sa.text(text), params or {})


def one(src: Source, text: str, params: dict[str, Any] | None = None) -> Any:
    with src.engine.connect() as conn:
        return conn.execute(sa.text(text), params or {}).scalar_one()


def rows_by_id(src: Source, table: str, key: str = "id") -> dict[str, dict[str, Any]]:
    with src.engine.connect() as conn:
        result = conn.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
    return {r[key]: dict(r) for r in result}


def dump(src: Source) -> dict[str, tuple[list[str], list[str]]]:
    """Every table of the database: its columns and all its rows."""
    insp = sa.inspect(src.engine)
    out: dict[str, tuple[list[str], list[str]]] = {}
    with src.engine.connect() as conn:
        for name in sorted(insp.get_table_names()):
            cols = [c["name"] for c in insp.get_columns(name)]
            rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).all()
            out[name] = (cols, sorted(repr(tuple(r)) for r in rows))
    return out


def run_checks(src: Source, *, fix: bool = False, tenants: list[str] | None = None) -> Report:
    return Checker(src, Scope(tenants)).run(CHECKS, fix=fix)


def by_name(report: Report) -> dict[str, CheckResult]:
    return {c.name: c for c in report.checks}


def failed(report: Report) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


def set_json(src: Source, cid: str, column: str, value: Any) -> None:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    sql(src, f"UPDATE voice_agent_configs SET {column} = :v WHERE id = :id", {"v": text, "id": cid})


def get_json(src: Source, cid: str, column: str) -> Any:
    return orjson.loads(
        one(src, f"SELECT {column} FROM voice_agent_configs WHERE id = :id", {"id": cid})
    )


# --- a small, clean data set --------------------------------------------------------------

TENANTS = [("t1", "Acme Dental"), ("t2", "Taquería El Güero")]
CONFIGS = [
    # id, tenant, name, prompt, voice, language, enabled, created_at, schema_version
    ("c1", "t1", "Front desk", "Answer incoming calls.\n- Book appointments.", "nova", "en-US",
     True, "2024-03-01T00:00:00Z", "v1"),
    ("c2", "t1", "Reminders", "Outbound reminder campaign.", None, "es-MX", True,
     "2024-01-01T00:00:00Z", "v1"),
    ("c3", "t1", "Sales", None, "alloy", "pt-BR", True, "2024-02-01T00:00:00Z", None),
    ("c4", "t2", "Recepción", "Atiende las llamadas.\nSaludo: ¡Hola! 🌮", "dalia", "es", True,
     "2024-01-05T00:00:00Z", "v1"),
    ("c5", "t2", "Pedidos", "Toma pedidos.", "dalia", "es-MX", True, "2024-01-06T00:00:00Z",
     "v1"),
    ("c6", "t2", "Encuestas", "Haz encuestas.", "dalia", "es-MX", False,
     "2024-01-07T00:00:00Z", "v1"),
]  # fmt: skip
CALLS = [
    # id, tenant, config, duration, latency, status, outcome
    ("k01", "t1", "c1", 120.0, 300.0, "completed", None),
    ("k02", "t1", "c1", 10.0, 500.0, "completed", None),
    ("k03", "t1", "c1", None, 700.0, "failed", None),
    ("k04", "t1", "c1", 60.0, 400.0, None, "COMPLETED"),
    ("k05", "t1", "c2", 0.0, 250.0, "no-answer", None),
    ("k06", "t2", "c4", 45.0, 800.0, "completed", "transferred"),
    ("k07", "t2", "c4", 200.0, 900.0, "completed", "no answer"),
]


def fill(src: Source) -> None:
    src.create_source_tables()
    with src.engine.begin() as conn:
        conn.execute(
            s.tenants.insert(),
            [{"id": i, "name": n, "created_at": "2024-01-01T00:00:00Z"} for i, n in TENANTS],
        )
        conn.execute(
            s.configs.insert(),
            [
                dict(
                    zip(
                        ("id", "tenant_id", "name", "prompt", "voice_id", "language", "enabled",
                         "created_at", "schema_version"),
                        row,
                        strict=True,
                    ),
                    updated_at=row[7],
                )
                for row in CONFIGS
            ],
        )  # fmt: skip
        conn.execute(
            s.calls.insert(),
            [
                {
                    "id": cid,
                    "tenant_id": t,
                    "config_id": cfg,
                    "started_at": "2025-06-01T10:00:00Z",
                    "duration_seconds": d,
                    "latency_ms": lat,
                    "status": st,
                    "outcome": o,
                    "version": "v1",
                }
                for cid, t, cfg, d, lat, st, o in CALLS
            ],
        )


@pytest.fixture
def migrated(source: Source, clock: ManualClock) -> RunRecord:
    """The clean data set, migrated in batches of 2."""
    fill(source)
    run = Migrator(source, clock).migrate(MigrateOptions(batch_size=2))
    assert run.status == "completed", run
    return run


# --- a clean migration ------------------------------------------------------------------


def test_a_clean_migration_passes_all_six_checks(source: Source, migrated: RunRecord) -> None:
    report = run_checks(source)
    assert [(c.name, c.severity, c.passed) for c in report.checks] == [
        (name, sev, True) for name, sev in SEVERITIES.items()
    ]
    assert report.ok and report.to_dict()["failed"] == 0
    rc = by_name(report)["record_count"]
    assert rc.message.startswith(f"6 configs and 7 calls (backup {migrated.backup_id} had 6")
    assert migrated.verification is not None and migrated.verification["ok"]


def test_migrate_writes_v2_configs_inferred_outcomes_and_metrics(
    source: Source, migrated: RunRecord
) -> None:
    assert migrated.counts.to_dict() == {
        "configs_migrated": 6,
        "configs_skipped": 0,
        "calls_updated": 6,  # all but k06, whose outcome was already canonical
        "metrics_generated": 6,
    }
    configs = rows_by_id(source, "voice_agent_configs")
    assert {c["schema_version"] for c in configs.values()} == {"v2"}
    c4 = configs["c4"]
    assert (c4["assistant_type"], c4["migrated_from"]) == ("inbound", "v1")
    assert orjson.loads(c4["personality"])["greeting_message"] == "¡Hola! 🌮"
    assert orjson.loads(configs["c2"]["voice_config"]) == {
        "voice_id": "default",
        "language": "es-MX",
    }
    assert configs["c2"]["assistant_type"] == "outbound"
    # the v1 columns are left as they were
    assert (configs["c4"]["prompt"], configs["c2"]["voice_id"]) == (CONFIGS[3][3], None)

    outcomes = {k: r["outcome"] for k, r in rows_by_id(source, "voice_agent_calls").items()}
    assert outcomes == {
        "k01": "completed",
        "k02": "abandoned",
        "k03": "failed",
        "k04": "completed",
        "k05": "no_answer",
        "k06": "transferred",
        "k07": "no_answer",
    }
    metrics = {
        k: (r["tenant_id"], r["total_calls"], r["avg_duration_seconds"], r["p95_latency_ms"])
        for k, r in rows_by_id(source, "voice_agent_metrics", key="config_id").items()
    }
    assert metrics == {
        "c1": ("t1", 4, pytest.approx(63.333), 700.0),  # (120 + 10 + 60) / 3; ceil(3.8) = 4th
        "c2": ("t1", 1, 0.0, 250.0),
        "c3": ("t1", 0, None, None),
        "c4": ("t2", 2, 122.5, 900.0),
        "c5": ("t2", 0, None, None),
        "c6": ("t2", 0, None, None),
    }


# --- each check made to fail ------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "examples", "also_failing"),
    [
        (
            [
                "DELETE FROM voice_agent_metrics WHERE config_id = 'c5'",
                "DELETE FROM voice_agent_configs WHERE id = 'c5'",
            ],
            ["1 config(s) fewer than in {bid}"],
            set(),
        ),
        (
            ["DELETE FROM voice_agent_calls WHERE id IN ('k01', 'k06')"],
            ["2 call(s) fewer than in {bid}"],
            set(),
        ),
        (
            ["DELETE FROM voice_agent_metrics WHERE config_id IN ('c3', 'c6')"],
            ["v2 config c3 has no metrics row", "v2 config c6 has no metrics row"],
            set(),
        ),
        (
            [
                "INSERT INTO voice_agent_configs (id, tenant_id, name, enabled, schema_version) "
                "VALUES ('c9', 't1', 'New', :off, 'v1')"
            ],
            ["1 config(s) more than in {bid}"],
            {"schema_version"},
        ),
    ],
    ids=["config-deleted", "calls-deleted", "metrics-missing", "config-added"],
)
def test_record_count_fails_when_rows_differ_from_the_backup(
    source: Source,
    migrated: RunRecord,
    damage: list[str],
    examples: list[str],
    also_failing: set[str],
) -> None:
    for statement in damage:
        sql(source, statement, {"off": False} if ":off" in statement else None)
    report = run_checks(source)
    rc = by_name(report)["record_count"]
    assert (rc.severity, rc.passed) == ("critical", False)
    assert rc.examples == [e.format(bid=migrated.backup_id) for e in examples]
    assert rc.problems == len(examples)
    assert failed(report) == {"record_count", *also_failing}
    assert not report.ok


def test_data_integrity_fails_on_malformed_v2_fields_and_missing_required_ones(
    source: Source, migrated: RunRecord
) -> None:
    set_json(source, "c1", "voice_config", '{"voice_id": "nova", "language": ')  # cut off
    sql(source, "UPDATE voice_agent_configs SET assistant_type = 'robot' WHERE id = 'c2'")
    set_json(source, "c4", "personality", "just a prompt")
    set_json(source, "c5", "capabilities", ["faq", 3])
    sql(source, "UPDATE voice_agent_configs SET name = '   ' WHERE id = 'c6'")
    sql(source, "UPDATE voice_agent_calls SET config_id = NULL WHERE id = 'k07'")
    report = run_checks(source)
    di = by_name(report)["data_integrity"]
    assert (di.severity, di.passed, di.problems) == ("critical", False, 6)
    assert sorted(di.examples) == [
        "call k07: config_id is missing",
        "config c1: voice_config lacks voice_id or language",
        "config c2: assistant_type 'robot' is not one of ('inbound', 'outbound', 'hybrid')",
        "config c4: personality lacks base_prompt",
        "config c5: capabilities is not a list of names",
        "config c6: tenant_id or name is missing",
    ]
    assert failed(report) == {"data_integrity"}
    assert not report.ok


def test_foreign_keys_fails_on_orphan_tenants_calls_and_metrics(
    source: Source, migrated: RunRecord
) -> None:
    sql(source, "DELETE FROM tenants WHERE id = 't2'")
    sql(source, "UPDATE voice_agent_calls SET config_id = 'c_gone' WHERE id = 'k02'")
    sql(
        source,
        "INSERT INTO voice_agent_metrics (config_id, tenant_id, total_calls) "
        "VALUES ('c_ghost', 't1', 3)",
    )
    report = run_checks(source)
    fk = by_name(report)["foreign_keys"]
    assert (fk.severity, fk.passed, fk.problems) == ("critical", False, 5)
    assert sorted(fk.examples) == [
        "call k02: config does not exist",
        "config c4: tenant does not exist",
        "config c5: tenant does not exist",
        "config c6: tenant does not exist",
        "metrics c_ghost: config does not exist",
    ]
    assert failed(report) == {"foreign_keys"}
    # a scope that does not hold the broken rows passes
    scoped = by_name(run_checks(source, tenants=["t1"]))
    assert scoped["foreign_keys"].passed is False  # k02 and c_ghost are t1's
    assert sorted(scoped["foreign_keys"].examples) == [
        "call k02: config does not exist",
        "metrics c_ghost: config does not exist",
    ]
    sql(source, "UPDATE voice_agent_calls SET config_id = 'c1' WHERE id = 'k02'")
    sql(source, "DELETE FROM voice_agent_metrics WHERE config_id = 'c_ghost'")
    assert by_name(run_checks(source, tenants=["t1"]))["foreign_keys"].passed
    assert not by_name(run_checks(source, tenants=["t2"]))["foreign_keys"].passed


def test_schema_version_fails_high_not_critical_when_a_config_is_left_on_v1(
    source: Source, migrated: RunRecord
) -> None:
    sql(source, "UPDATE voice_agent_configs SET schema_version = 'v1' WHERE id = 'c5'")
    sql(source, "UPDATE voice_agent_configs SET schema_version = NULL WHERE id = 'c3'")
    report = run_checks(source)
    sv = by_name(report)["schema_version"]
    assert (sv.severity, sv.passed) == ("high", False)
    assert sv.examples == ["config c3 is not on v2", "config c5 is not on v2"]
    assert failed(report) == {"schema_version"}
    assert report.ok  # high is reported, but only a critical failure fails validation


def test_duplicates_fails_on_two_enabled_configs_of_a_tenant_sharing_a_name(
    source: Source, migrated: RunRecord
) -> None:
    # c1 "Front desk" (created March) and c2 (created January): the same name, case-blind
    sql(source, "UPDATE voice_agent_configs SET name = ' FRONT DESK ' WHERE id = 'c2'")
    # neither a disabled copy nor another tenant's config of that name is a duplicate
    sql(
        source,
        "UPDATE voice_agent_configs SET name = 'front desk', enabled = :f WHERE id = 'c3'",
        {"f": False},
    )
    sql(source, "UPDATE voice_agent_configs SET name = 'Front desk' WHERE id = 'c4'")
    report = run_checks(source)
    dup = by_name(report)["duplicates"]
    assert (dup.severity, dup.passed, dup.problems) == ("medium", False, 1)
    assert dup.examples == ["config c1 duplicates c2 (same tenant and name, both enabled)"]
    assert failed(report) == {"duplicates"}
    assert report.ok


def break_values(src: Source) -> None:
    sql(src, "UPDATE voice_agent_configs SET language = 'es_MX' WHERE id = 'c1'")
    person = get_json(src, "c2", "personality")
    person["special_instructions"] = ["Call before 6 pm", "", "   "]
    set_json(src, "c2", "personality", person)
    voice = get_json(src, "c4", "voice_config")
    voice.update(speed=3.5, pitch=-30)
    set_json(src, "c4", "voice_config", voice)


def test_value_constraints_fails_on_languages_empty_instructions_and_ranges(
    source: Source, migrated: RunRecord
) -> None:
    break_values(source)
    sql(source, "UPDATE voice_agent_configs SET language = 'klingon!!' WHERE id = 'c5'")
    sql(source, "UPDATE voice_agent_calls SET duration_seconds = -5 WHERE id = 'k03'")
    sql(source, "UPDATE voice_agent_calls SET latency_ms = -1 WHERE id = 'k06'")
    report = run_checks(source)
    vc = by_name(report)["value_constraints"]
    assert (vc.severity, vc.passed, vc.problems) == ("medium", False, 7)
    assert vc.examples[:5] == [
        "config c1: language 'es_MX' should be written 'es-MX'",
        "config c2: 2 empty special instruction(s)",
        "config c4: voice_config.speed 3.5 is outside 0.5..2.0",
        "config c4: voice_config.pitch -30 is outside -20.0..20.0",
        "config c5: language 'klingon!!' is not a language tag (not fixable)",
    ]
    assert sorted(vc.examples[5:]) == [
        f"call {k}: negative duration or latency (not fixable: correct it at the source)"
        for k in ("k03", "k06")
    ]
    assert failed(report) == {"value_constraints"}
    assert report.ok


# --- --fix --------------------------------------------------------------------------------


def test_fix_repairs_duplicates_and_values_lists_each_change_and_leaves_critical_rows(
    source: Source, migrated: RunRecord
) -> None:
    # a duplicate: c1 (newer) and c2 (older) share a name; c3 is a disabled third copy
    sql(source, "UPDATE voice_agent_configs SET name = 'front desk' WHERE id = 'c2'")
    sql(
        source,
        "UPDATE voice_agent_configs SET name = 'Front Desk', enabled = :f WHERE id = 'c3'",
        {"f": False},
    )
    break_values(source)
    # critical problems, which --fix must not touch
    set_json(source, "c5", "voice_config", '{"voice_id": "dalia", "speed": 9')
    sql(source, "UPDATE voice_agent_configs SET tenant_id = 't_gone' WHERE id = 'c6'")
    before = rows_by_id(source, "voice_agent_configs")
    before_dump = dump(source)
    c2_person = orjson.loads(before["c2"]["personality"])
    c4_voice = orjson.loads(before["c4"]["voice_config"])

    report = run_checks(source, fix=True)
    checks = by_name(report)
    assert checks["duplicates"].fixed == [
        {
            "table": "voice_agent_configs",
            "id": "c1",
            "field": "enabled",
            "before": True,
            "after": False,
            "why": "duplicate of c2",
        }
    ]
    assert checks["value_constraints"].fixed == [
        {
            "table": "voice_agent_configs",
            "id": "c1",
            "field": "language",
            "before": "es_MX",
            "after": "es-MX",
        },
        {
            "table": "voice_agent_configs",
            "id": "c2",
            "field": "personality.special_instructions",
            "before": ["Call before 6 pm", "", "   "],
            "after": ["Call before 6 pm"],
        },
        {
            "table": "voice_agent_configs",
            "id": "c4",
            "field": "voice_config.speed",
            "before": 3.5,
            "after": 2.0,
        },
        {
            "table": "voice_agent_configs",
            "id": "c4",
            "field": "voice_config.pitch",
            "before": -30,
            "after": -20.0,
        },
    ]
    for name in ("record_count", "data_integrity", "foreign_keys", "schema_version"):
        assert checks[name].fixed == [], name
    assert failed(report) == {"data_integrity", "foreign_keys", "duplicates", "value_constraints"}
    assert not report.ok

    after = rows_by_id(source, "voice_agent_configs")
    # exactly the listed changes were made, nothing else
    assert bool(after["c1"]["enabled"]) is False
    assert after["c1"]["language"] == "es-MX"
    assert {k: v for k, v in after["c1"].items() if k not in ("enabled", "language")} == {
        k: v for k, v in before["c1"].items() if k not in ("enabled", "language")
    }
    assert orjson.loads(after["c2"]["personality"]) == {
        **c2_person,
        "special_instructions": ["Call before 6 pm"],
    }
    assert orjson.loads(after["c4"]["voice_config"]) == {**c4_voice, "speed": 2.0, "pitch": -20.0}
    for cid in ("c3", "c5", "c6"):  # the disabled copy and the critical rows are untouched
        assert after[cid] == before[cid], cid
    after_dump = dump(source)
    assert report.backup_id is not None  # taken before the first fix, listed as such
    (fix_backup,) = [b for b in backups.list_backups(source) if b.id == report.backup_id]
    assert (fix_backup.kind, backups.label(fix_backup)) == ("pre-fix", "before validate --fix")
    assert fix_backup.configs == len(before)
    copies = {t for t in after_dump if t.startswith(f"switchover_{report.backup_id}_")}
    assert len(copies) == 3
    for table in before_dump:
        if table not in ("voice_agent_configs", "switchover_data_backups"):
            assert after_dump[table] == before_dump[table], table
    # the backup holds the rows as they were before the fixes
    assert backups.restore(source, report.backup_id)["checksum_verified"]
    assert rows_by_id(source, "voice_agent_configs") == before
    run_checks(source, fix=True)
    assert rows_by_id(source, "voice_agent_configs") == after

    # a second run: the fixed checks pass, the critical ones still fail, nothing to fix
    again = run_checks(source, fix=True)
    assert failed(again) == {"data_integrity", "foreign_keys"}
    assert all(c.fixed == [] for c in again.checks)
    assert rows_by_id(source, "voice_agent_configs") == after


def test_fix_leaves_values_it_cannot_repair_and_says_so(
    source: Source, migrated: RunRecord
) -> None:
    sql(source, "UPDATE voice_agent_configs SET language = 'klingon!!' WHERE id = 'c5'")
    sql(source, "UPDATE voice_agent_calls SET duration_seconds = -5 WHERE id = 'k03'")
    before = dump(source)
    report = run_checks(source, fix=True)
    vc = by_name(report)["value_constraints"]
    assert (vc.passed, vc.fixed) == (False, [])
    assert vc.examples == [
        "config c5: language 'klingon!!' is not a language tag (not fixable)",
        "call k03: negative duration or latency (not fixable: correct it at the source)",
    ]
    assert dump(source) == before


def test_validate_before_migration_fails_schema_version_only(
    source: Source, clock: ManualClock
) -> None:
    fill(source)
    report = run_checks(source)
    sv = by_name(report)["schema_version"]
    assert sv.problems == 6 and not sv.passed
    assert failed(report) == {"schema_version"}
    assert "no backup of this scope" in by_name(report)["record_count"].message


def test_checks_need_the_source_tables(source: Source) -> None:
    with pytest.raises(ValidationError) as err:
        run_checks(source)
    assert err.value.field == "source"
    assert "seed-demo" in err.value.message


# --- migrate's pre-flight on invalid v1 rows -------------------------------------------


def seeded(src: Source, clock: ManualClock) -> dict[str, int]:
    counts = seed_demo(src, configs=300, calls=900, now=clock.now())
    assert counts["orphan_configs"] >= 1 and counts["duplicate_configs"] >= 1
    return counts


def orphan_ids(src: Source) -> set[str]:
    with src.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id FROM voice_agent_configs WHERE tenant_id NOT IN (SELECT id FROM tenants)"
            )
        ).all()
    return {r[0] for r in rows}


def test_migrate_refuses_orphan_tenants_without_skip_invalid_and_writes_nothing(
    source: Source, clock: ManualClock
) -> None:
    seeded(source, clock)
    orphans = orphan_ids(source)
    assert orphans
    before = dump(source)
    with pytest.raises(DataCheckError) as err:
        Migrator(source, clock).migrate(MigrateOptions(batch_size=50))
    message = err.value.message
    assert "foreign_keys" in message and "--skip-invalid" in message
    assert "Nothing was migrated" in message
    assert f"config {sorted(orphans)[0]}: tenant does not exist" in message
    assert dump(source) == before  # not a run, not a backup, not a lock, not a column


def test_skip_invalid_leaves_exactly_the_invalid_configs_on_v1(
    source: Source, clock: ManualClock
) -> None:
    counts = seeded(source, clock)
    # two more invalid v1 rows on a real tenant: no name, and a blank one
    sql(
        source,
        "INSERT INTO voice_agent_configs (id, tenant_id, name, prompt, enabled, schema_version) "
        "VALUES ('cfg_noname', 't00001', NULL, 'Hi', :t, 'v1'), "
        "('cfg_blank', 't00001', '   ', 'Hi', :t, 'v1')",
        {"t": True},
    )
    invalid = orphan_ids(source) | {"cfg_noname", "cfg_blank"}
    before = rows_by_id(source, "voice_agent_configs")

    run = Migrator(source, clock).migrate(MigrateOptions(skip_invalid=True, batch_size=50))
    assert run.status == "completed", run.error
    assert run.counts.configs_skipped == len(invalid)
    assert run.counts.configs_migrated == counts["configs"] + 2 - len(invalid)
    after = rows_by_id(source, "voice_agent_configs")
    assert {i for i, r in after.items() if r["schema_version"] != "v2"} == invalid
    for cid in invalid:
        assert after[cid] == before[cid], cid  # byte for byte as they were
    metrics = set(rows_by_id(source, "voice_agent_metrics", key="config_id"))
    assert metrics == set(after) - invalid
    assert run.verification is not None and run.verification["ok"]


# --- a plugged-in transform ---------------------------------------------------------------


@pytest.fixture
def team_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"team_transform_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from switchover.core.transform import to_v2\n"
        "def robot(row, migrated_at):\n"
        "    out = to_v2(row, migrated_at)\n"
        "    out['assistant_type'] = 'robot'\n"
        "    return out\n"
        "def crash(row, migrated_at):\n"
        "    return 1 / 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_a_bad_plugged_in_transform_stops_naming_the_field_and_migrates_nothing(
    source: Source, clock: ManualClock, team_module: str
) -> None:
    fill(source)
    migrator = Migrator(source, clock)
    with pytest.raises(ValidationError) as err:
        migrator.preview(MigrateOptions(transform=f"{team_module}:robot"))
    assert err.value.field == "transform.assistant_type"
    assert "'c1'" in err.value.message and "inbound, outbound, hybrid" in err.value.message

    data = ("voice_agent_configs", "voice_agent_calls", "voice_agent_metrics")
    before = {t: v for t, v in dump(source).items() if t in data}
    for fn, field in (("robot", "transform.assistant_type"), ("crash", "transform")):
        with pytest.raises(ValidationError) as err:
            migrator.migrate(MigrateOptions(transform=f"{team_module}:{fn}", batch_size=2))
        assert err.value.field == field
        assert "'c1'" in err.value.message
        assert {t: v for t, v in dump(source).items() if t in data} == before

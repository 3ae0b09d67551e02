"""Seed 004's legacy sunset from the command line: ``data convert-settings`` (with a
backup and a verify), ``data backup`` of settings and metrics tables, ``data
backup-keys``/``restore-keys`` for cache keys, and ``data delete-keys`` (``--dry-run``,
a count, a confirmation, nothing deleted outside the pattern)."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from switchover.bootstrap import bootstrap
from switchover.cli.main import app as cli_app
from switchover.settings import Settings

REDIS_URL = os.environ.get("SWITCHOVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
REQUIRE = os.environ.get("SWITCHOVER_REQUIRE_POSTGRES") == "1"
ENV = {"SWITCHOVER_DATABASE_URL": None, "SWITCHOVER_DATA_URL": None, "COLUMNS": "200"}


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, list(args), env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def ok_json(*args: str) -> Any:
    code, out, err = cli(*args, "--json")
    assert code == 0, (args, out, err)
    return json.loads(out)


@pytest.fixture
def settings_db(data_url: str) -> Iterator[str]:
    """Seed 004's settings tables the way a real database declares them: uuid users,
    jsonb settings on PostgreSQL, a user that already has v2 settings."""
    engine = sa.create_engine(data_url)
    pg = engine.dialect.name == "postgresql"
    uid, doc, ts = ("uuid", "jsonb", "timestamptz") if pg else ("UUID", "JSONB", "TIMESTAMPTZ")
    users = [uuid.UUID(int=i + 1) for i in range(30)]
    with engine.begin() as conn:
        for name in ("user_voice_settings", "voice_v2_user_settings"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            conn.exec_driver_sql(
                f"CREATE TABLE {name} (user_id {uid} PRIMARY KEY, settings {doc}, "
                f"updated_at {ts}, locale text)"
            )
        for i, u in enumerate(users):
            conn.execute(
                sa.text(
                    "INSERT INTO user_voice_settings (user_id, settings, locale) "
                    "VALUES (:u, :s, 'es-MX')"
                ),
                {"u": u if pg else str(u),
                 "s": json.dumps({"voice": "nova", "speed": 1 + i / 10, "lang": "es_MX"})},
            )  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO voice_v2_user_settings (user_id, settings) VALUES (:u, :s)"),
            {"u": users[0] if pg else str(users[0]), "s": json.dumps({"voice_id": "fresh"})},
        )
    yield data_url
    with engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith("switchover_") or name.endswith("settings"):
                conn.exec_driver_sql(f'DROP TABLE "{name}"')
    engine.dispose()


def _settings(url: str, table: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT user_id, settings FROM {table}")).all()
    finally:
        engine.dispose()
    return {str(u): s if isinstance(s, dict) else json.loads(s) for u, s in rows}


def test_convert_settings_converts_saves_backs_up_and_verifies(
    settings_db: str, tmp_path: Path
) -> None:
    (tmp_path / "team_settings.py").write_text(
        "def to_v2(old):\n"
        "    if old.get('voice') == 'explode':\n"
        "        raise KeyError('voice')\n"
        "    return {'voice_id': old['voice'], 'speed': old['speed'],\n"
        "            'language': old['lang'].replace('_', '-')}\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        legacy = _settings(settings_db, "user_voice_settings")
        preview = ok_json(
            "data", "convert-settings", "--convert", "team_settings:to_v2", "--dry-run",
            "--source", settings_db,
        )  # fmt: skip
        assert (preview["legacy"], preview["converted"], preview["kept_existing"]) == (30, 29, 1)
        assert len(_settings(settings_db, "voice_v2_user_settings")) == 1  # dry run: unsaved

        out = ok_json(
            "data", "convert-settings", "--convert", "team_settings:to_v2",
            "--source", settings_db,
        )  # fmt: skip
        assert out["verified"] is True and out["converted"] == 29
        v2 = _settings(settings_db, "voice_v2_user_settings")
        assert set(v2) == set(legacy)
        first = str(uuid.UUID(int=1))
        assert v2[first] == {"voice_id": "fresh"}  # v2's own value kept
        some = str(uuid.UUID(int=5))
        assert v2[some] == {"voice_id": "nova", "speed": 1.4, "language": "es-MX"}
        backups = ok_json("data", "backups", "--source", settings_db)
        assert backups[0]["id"] == out["backup_id"]
        assert backups[0]["tables"] == {"user_voice_settings": 30, "voice_v2_user_settings": 1}

        # a conversion that fails on one user saves nothing, and says which user
        engine = sa.create_engine(settings_db)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE user_voice_settings SET settings = :s WHERE user_id = :u"),
                {"s": json.dumps({"voice": "explode"}), "u": uuid.UUID(int=9)
                 if engine.dialect.name == "postgresql" else str(uuid.UUID(int=9))},
            )  # fmt: skip
        engine.dispose()
        before = _settings(settings_db, "voice_v2_user_settings")
        code, _out, err = cli(
            "data", "convert-settings", "--convert", "team_settings:to_v2", "--replace",
            "--source", settings_db,
        )  # fmt: skip
        assert code == 2 and str(uuid.UUID(int=9)) in err and "nothing was saved" in err
        assert _settings(settings_db, "voice_v2_user_settings") == before
        assert len(ok_json("data", "backups", "--source", settings_db)) == 1

        code, _out, err = cli(
            "data", "convert-settings", "--convert", "team_settings:nope", "--source", settings_db
        )
        assert code == 2 and "--convert" in err
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("team_settings", None)


def test_backup_of_settings_tables_restores_them(settings_db: str) -> None:
    made = ok_json(
        "data", "backup", "--table", "user_voice_settings,voice_v2_user_settings",
        "--source", settings_db,
    )  # fmt: skip
    assert made["tables"] == {"user_voice_settings": 30, "voice_v2_user_settings": 1}
    before = _settings(settings_db, "user_voice_settings")
    engine = sa.create_engine(settings_db)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM user_voice_settings")
    engine.dispose()
    bootstrap(Settings(database_url=settings_db), migrate=True).close()  # audits the restore
    out = ok_json("--db", settings_db, "data", "restore", made["id"], "--yes", "--source",
                  settings_db)  # fmt: skip
    assert out["checksum_verified"] is True
    assert _settings(settings_db, "user_voice_settings") == before

    code, _out, err = cli("data", "backup", "--table", "no_such_table", "--source", settings_db)
    assert code == 2 and "no_such_table" in err


@pytest.fixture
def redis_ns() -> Iterator[tuple[Any, str]]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        message = f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}); start it"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message + " or set SWITCHOVER_TEST_REDIS_URL")
    prefix = f"swo-sunset-{uuid.uuid4().hex[:8]}"
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_delete_keys_counts_confirms_and_deletes_only_the_pattern(
    redis_ns: tuple[Any, str],
) -> None:
    r, p = redis_ns
    for i in range(1500):  # more than one SCAN batch
        r.set(f"{p}:voice:cache:{i}", "x")
    r.hset(f"{p}:voice:cache:hash", mapping={"a": "1"})
    keep = [
        f"{p}:voice:cachet",
        f"{p}:voice_v2:cache:1",
        f"{p}:voice:metrics:1",
        f"{p}x:voice:cache:1",
    ]
    for k in keep:
        r.set(k, "keep")
    pattern = f"{p}:voice:cache:*"

    dry = ok_json("data", "delete-keys", pattern, "--redis", REDIS_URL, "--dry-run")
    assert dry["matched"] == 1501 and dry["deleted"] == 0
    code, _out, err = cli("data", "delete-keys", pattern, "--redis", REDIS_URL)  # no --yes
    assert code == 2 and "--yes" in err
    assert r.exists(f"{p}:voice:cache:7")

    out = ok_json("data", "delete-keys", pattern, "--redis", REDIS_URL, "--yes")
    assert out["deleted"] == 1501
    assert not list(r.scan_iter(match=pattern))
    assert all(r.get(k) == b"keep" for k in keep)

    code, _out, err = cli("data", "delete-keys", "*", "--redis", REDIS_URL, "--yes")
    assert code == 2 and "prefix" in err


def test_backup_keys_and_restore_keys_round_trip(redis_ns: tuple[Any, str], tmp_path: Path) -> None:
    r, p = redis_ns
    r.set(f"{p}:voice:cache:greeting", "¡Hola! 🌮")
    r.hset(f"{p}:voice:cache:menu", mapping={"taco": "pastor"})
    r.rpush(f"{p}:voice:cache:queue", "a", "b")
    r.expire(f"{p}:voice:cache:menu", 5000)
    file = tmp_path / "cache.jsonl"
    made = ok_json(
        "data", "backup-keys", "--redis", REDIS_URL, "--pattern", f"{p}:voice:cache:*",
        "--file", str(file),
    )  # fmt: skip
    assert made["keys"] == 3
    ok_json("data", "delete-keys", f"{p}:voice:cache:*", "--redis", REDIS_URL, "--yes")
    out = ok_json("data", "restore-keys", "--redis", REDIS_URL, "--file", str(file))
    assert out["restored"] == 3
    assert r.get(f"{p}:voice:cache:greeting").decode() == "¡Hola! 🌮"
    assert r.hgetall(f"{p}:voice:cache:menu") == {b"taco": b"pastor"}
    assert r.lrange(f"{p}:voice:cache:queue", 0, -1) == [b"a", b"b"]
    assert 0 < r.ttl(f"{p}:voice:cache:menu") <= 5000

    file.write_text("".join(file.read_text().splitlines(keepends=True)[:-1]))  # damaged
    code, _out, err = cli("data", "restore-keys", "--redis", REDIS_URL, "--file", str(file))
    assert code in (2, 9) and ("damaged" in err or "not a switchover" in err)

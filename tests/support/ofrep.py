"""A real ``switchover serve`` with migrations to evaluate over OFREP, and what the
Python SDK decides for the same callers (the answer every OFREP client must match)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.serving import serving
from switchover import connect
from switchover.bootstrap import bootstrap
from switchover.commands import CreateMigration, Kill, SetFeature, SetPercentage, SetTenant, handle
from switchover.settings import Settings

KEYS = 10_000
FLAG = "voice_v2.stt"


@dataclass(frozen=True)
class Served:
    base: str
    db: str
    tokens: dict[str, str]


def caller(i: int) -> tuple[str, str | None]:
    """Caller ``i``: its key and tenant (acme is allowed, globex denied, most have none)."""
    tenant = "acme" if i % 97 == 0 else "globex" if i % 89 == 0 else None
    return f"user-{i}", tenant


def seed(db: str) -> dict[str, str]:
    """voice_v2 (30 %, stt on, tts off, one tenant each way), legacy_api killed, and
    unleash_import bucketing with an Unleash groupId."""
    app = bootstrap(Settings(database_url=db), migrate=True)
    try:
        run = lambda command: handle(app, command)  # noqa: E731
        run(CreateMigration(migration="voice_v2", features=("stt", "tts"), actor="seed"))
        run(SetPercentage(migration="voice_v2", percentage=30, actor="seed"))
        run(SetFeature(migration="voice_v2", feature="stt", enabled=True, actor="seed"))
        run(SetTenant(migration="voice_v2", tenant="acme", override="allow", actor="seed"))
        run(SetTenant(migration="voice_v2", tenant="globex", override="deny", actor="seed"))
        run(CreateMigration(migration="legacy_api", actor="seed"))
        run(SetPercentage(migration="legacy_api", percentage=100, actor="seed"))
        run(Kill(migration="legacy_api", actor="seed"))
        run(
            CreateMigration(
                migration="unleash_import", group="Checkout.Flow", stickiness="userId", actor="seed"
            )
        )
        run(SetPercentage(migration="unleash_import", percentage=50, actor="seed"))
        return {
            role: app.tokens.create(f"{role}-bot", role, actor="seed")
            for role in ("viewer", "worker")
        }
    finally:
        app.close()


def python_sides(db: str, flag: str = FLAG, keys: int = KEYS) -> list[bool]:
    """True where the Python SDK puts caller ``i`` on the candidate."""
    migration, _, feature = flag.partition(".")
    with connect(db, background=False) as client:
        handle_ = client.migration(migration)
        out = []
        for i in range(keys):
            key, tenant = caller(i)
            ctx = {"user_id": key} if tenant is None else {"user_id": key, "tenant_id": tenant}
            out.append(handle_.decide(feature or None, ctx).candidate)
        return out


@contextmanager
def ofrep_server(tmp: Path) -> Iterator[Served]:
    db = f"sqlite:///{tmp / 'store.db'}"
    tokens = seed(db)
    with serving(db, tmp, "--no-demo", "--no-controller") as base:
        yield Served(base, db, tokens)

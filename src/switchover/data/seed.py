"""`switchover data seed-demo`: realistic v1 data, awkward cases included.

Deterministic for a given seed. Besides ordinary configs in Spanish, English and
Portuguese, it writes the cases a real v1 table has: null and empty prompts, unicode
(accents, emoji, CJK), prompts of 50 KB, configs whose tenant does not exist, duplicate
configs (same tenant and name, another id), languages written ``es_MX``/``EN-us``, calls
with legacy outcomes (``COMPLETED``), no duration, or already-canonical outcomes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from switchover.data import schema as s
from switchover.data.source import Progress, Source, no_progress
from switchover.errors import ConflictError, ValidationError

_BUSINESSES = [
    ("Clínica Dental Sonrisa", "es-MX"),
    ("Taquería El Güero", "es-MX"),
    ("Bright Smile Dental", "en-US"),
    ("Pizzaria Bella Nápoles", "pt-BR"),
    ("Hotel Mar Azul", "es"),
    ("Café 東京 Sakura ☕", "en"),
    ("Auto Service Pro", "en-US"),
    ("Spa Relax 🌿", "es-MX"),
]
_LANG_VARIANTS = ["es_MX", "EN-us", "es-mx", None, "pt_br"]
_VOICES = ["alloy", "nova", "shimmer", "es-MX-DaliaNeural", "en-US-JennyNeural", None]
_ROLES = [
    "Eres la recepcionista virtual de {biz}. Atiende las llamadas entrantes con amabilidad.",
    "You are the receptionist of {biz}. Answer incoming calls and help callers.",
    "Llamarás a los clientes de {biz} para dar seguimiento a su campaña de recordatorios.",
    "You make outbound follow-up calls for {biz} and also answer incoming questions.",
]
_TASKS = [
    "- Agenda citas y confirma la fecha y hora.",
    "- Book appointments and confirm the time.",
    "- Transfer to a human agent when the caller asks.",
    "- Responde preguntas frecuentes sobre horarios y precios.",
    "- Take orders and read them back.",
    "- Envía un recordatorio por WhatsApp.",
    "-   ",
    "- Nunca compartas datos de otros pacientes 🙏",
]
_STATUSES = ["completed"] * 14 + ["failed", "no-answer", "busy", "voicemail", "transferred", None]
_OUTCOMES = [None] * 12 + ["COMPLETED", "Transferred", "completed", "no answer"]


def _prompt(rng: random.Random, biz: str) -> str | None:
    roll = rng.random()
    if roll < 0.01:
        return None
    if roll < 0.02:
        return ""
    lines = [rng.choice(_ROLES).format(biz=biz)]
    if rng.random() < 0.6:
        lines.append(f"Saludo: ¡Hola! Bienvenido a {biz}.")
    lines.extend(rng.sample(_TASKS, rng.randint(1, 4)))
    if rng.random() < 0.4:
        lines.append("Farewell: Thanks for calling, goodbye!")
    return "\n".join(lines)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def seed_demo(
    source: Source,
    *,
    configs: int,
    calls: int,
    tenants: int | None = None,
    users: int = 100,
    seed: int = 7,
    now: datetime,
    progress: Progress = no_progress,
    chunk: int = 5000,
) -> dict[str, int]:
    """Create the tables if needed and add the demo rows; refuses a non-empty table."""
    for field, value in (("configs", configs), ("calls", calls), ("users", users)):
        if value < 0:
            raise ValidationError(f"--{field} must be 0 or more, not {value}", field=field)
    if calls and not configs:
        raise ValidationError("--calls needs at least one config (--configs)", field="calls")
    n_tenants = tenants if tenants is not None else max(3, configs // 20)
    if n_tenants < 1:
        raise ValidationError("--tenants must be at least 1", field="tenants")
    source.create_source_tables()
    source.ensure_own()
    with source.connect() as conn:
        for table in (s.tenants, s.configs, s.calls, s.legacy_settings):
            if source.scalar(conn, f"SELECT COUNT(*) FROM {table.name}"):
                raise ConflictError(
                    f"{table.name} in {source.where} already has rows: seed-demo only fills "
                    "an empty database (use a new --source file)"
                )
    with source.begin() as conn:
        return _fill(source, conn, configs, calls, n_tenants, users, seed, now, progress, chunk)


def _fill(
    source: Source,
    conn: Any,
    configs: int,
    calls: int,
    n_tenants: int,
    users: int,
    seed: int,
    now: datetime,
    progress: Progress,
    chunk: int,
) -> dict[str, int]:
    """Everything in the caller's transaction: a failed seed leaves the tables empty."""
    rng = random.Random(seed)
    start = now - timedelta(days=180)
    tenant_rows = [
        (f"t{i:05d}", f"{_BUSINESSES[i % len(_BUSINESSES)][0]} #{i}", _iso(start))
        for i in range(n_tenants)
    ]
    _insert(source, conn, s.tenants, tenant_rows)

    orphan_every = 200
    dup_every = 100
    big_every = 1000
    config_ids: list[str] = []
    tenant_of: list[str] = []
    rows: list[tuple[Any, ...]] = []
    done = 0
    for i in range(configs):
        cid = f"cfg{i:07d}"
        biz, lang = _BUSINESSES[i % len(_BUSINESSES)]
        if i % orphan_every == 199:
            tenant = f"t_missing_{i:05d}"
        else:
            tenant = tenant_rows[rng.randrange(n_tenants)][0]
        prompt = _prompt(rng, biz)
        if i % big_every == 500:
            prompt = (prompt or "") + "\n" + ("Detalle del menú: tacos al pastor 🌮. " * 1400)
        language: str | None = lang if rng.random() > 0.1 else rng.choice(_LANG_VARIANTS)
        created = _iso(start + timedelta(minutes=i))
        name = f"{biz} · agent {i}"
        row = (cid, tenant, name, prompt, rng.choice(_VOICES), language, rng.random() > 0.05)
        rows.append((*row, created, created, "v1" if rng.random() < 0.7 else None))
        config_ids.append(cid)
        tenant_of.append(tenant)
        if i % dup_every == 50:
            # the same config written twice, as a retrying v1 admin form did
            dup = f"cfg{i:07d}d"
            rows.append((dup, *row[1:], created, created, "v1"))
            config_ids.append(dup)
            tenant_of.append(tenant)
        if len(rows) >= chunk:
            _insert(source, conn, s.configs, rows)
            done += len(rows)
            progress("configs", done, None)
            rows = []
    _insert(source, conn, s.configs, rows)
    done += len(rows)
    progress("configs", done, done)

    rows = []
    for j in range(calls):
        k = rng.randrange(len(config_ids))
        cid = config_ids[k]
        status = rng.choice(_STATUSES)
        duration: float | None = round(rng.lognormvariate(4.0, 0.9), 1)
        if status in ("failed", "no-answer", "busy") or rng.random() < 0.02:
            duration = None if rng.random() < 0.5 else 0.0
        latency = round(rng.lognormvariate(6.2, 0.35), 1)
        rows.append(
            (
                f"call{j:08d}",
                tenant_of[k],
                cid,
                _iso(start + timedelta(seconds=j * 7)),
                duration,
                latency,
                status,
                rng.choice(_OUTCOMES),
                "v1",
            )
        )
        if len(rows) >= chunk:
            _insert(source, conn, s.calls, rows)
            progress("calls", j + 1, calls)
            rows = []
    _insert(source, conn, s.calls, rows)
    progress("calls", calls, calls)

    settings = [
        (f"user{u:06d}", f'{{"voice":"nova","speed":1.0,"language":"es-MX","n":{u}}}', _iso(now))
        for u in range(users)
    ]
    _insert(source, conn, s.legacy_settings, settings)
    _insert(source, conn, s.v2_settings, settings)
    return {
        "tenants": n_tenants,
        "configs": len(config_ids),
        "calls": calls,
        "users": users,
        "orphan_configs": sum(1 for i in range(configs) if i % orphan_every == 199),
        "duplicate_configs": sum(1 for i in range(configs) if i % dup_every == 50),
    }


def _insert(source: Source, conn: Any, table: Any, rows: list[tuple[Any, ...]]) -> None:
    """Rows give the table's first columns in order (v1 configs stop before the v2 ones)."""
    if not rows:
        return
    names = [c.name for c in table.columns][: len(rows[0])]
    marks = ", ".join("?" for _ in names)
    source.executemany(
        conn, f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", rows
    )

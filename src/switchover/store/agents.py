"""Persistence for the agent registry: agents, encrypted keys, campaigns, phone numbers.

Functions over a :class:`~switchover.store.repository.Tx`, so a service composes them in
one unit of work. Keys are stored as ciphertext only; this module never sees plaintext.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from switchover.core.agents import Agent, Campaign, CampaignAgent, PhoneNumber
from switchover.store import tables as t
from switchover.store.repository import Tx, _utc

_AGENT_COLUMNS = (
    "name",
    "is_active",
    "system_prompt",
    "personality",
    "voice_id",
    "llm_provider",
    "llm_model",
    "temperature",
    "max_concurrent_calls",
    "livekit_agent_name",
    "tts_provider",
    "stt_provider",
    "livekit_url",
)


def _agent(row: Any) -> Agent:
    return Agent(
        id=row.id,
        name=row.name,
        is_active=bool(row.is_active),
        system_prompt=row.system_prompt,
        personality=row.personality,
        voice_id=row.voice_id,
        llm_provider=row.llm_provider,
        llm_model=row.llm_model,
        temperature=None if row.temperature is None else float(row.temperature),
        max_concurrent_calls=row.max_concurrent_calls,
        livekit_agent_name=row.livekit_agent_name,
        tts_provider=row.tts_provider,
        stt_provider=row.stt_provider,
        livekit_url=row.livekit_url,
        updated_at=_utc(row.updated_at),
        updated_by=row.updated_by,
    )


# --- agents ------------------------------------------------------------------------------


def get_agent(tx: Tx, agent_id: str) -> Agent | None:
    row = tx.conn.execute(sa.select(t.agents).where(t.agents.c.id == agent_id)).first()
    return _agent(row) if row is not None else None


def list_agents(tx: Tx) -> list[Agent]:
    return [_agent(r) for r in tx.conn.execute(sa.select(t.agents).order_by(t.agents.c.id))]


def agent_ids(tx: Tx) -> set[str]:
    return set(tx.conn.execute(sa.select(t.agents.c.id)).scalars())


def upsert_agent(tx: Tx, agent: Agent, at: datetime, actor: str) -> bool:
    """Create or replace the agent's fields; True when it was created."""
    values = {name: getattr(agent, name) for name in _AGENT_COLUMNS}
    values.update(updated_at=at, updated_by=actor)
    result = tx.conn.execute(t.agents.update().where(t.agents.c.id == agent.id).values(**values))
    if result.rowcount == 1:
        return False
    tx.conn.execute(t.agents.insert().values(id=agent.id, created_at=at, **values))
    return True


def set_active(tx: Tx, agent_id: str, active: bool, at: datetime, actor: str) -> bool:
    result = tx.conn.execute(
        t.agents.update()
        .where(t.agents.c.id == agent_id)
        .values(is_active=active, updated_at=at, updated_by=actor)
    )
    return result.rowcount == 1


def delete_agent(tx: Tx, agent_id: str) -> bool:
    tx.conn.execute(t.agent_keys.delete().where(t.agent_keys.c.agent_id == agent_id))
    return tx.conn.execute(t.agents.delete().where(t.agents.c.id == agent_id)).rowcount == 1


# --- keys (ciphertext) -------------------------------------------------------------------


def key_ciphertexts(tx: Tx, agent_id: str) -> dict[str, str]:
    rows = tx.conn.execute(
        sa.select(t.agent_keys.c.kind, t.agent_keys.c.ciphertext).where(
            t.agent_keys.c.agent_id == agent_id
        )
    )
    return {r.kind: r.ciphertext for r in rows}


def keys_set(tx: Tx) -> dict[str, tuple[str, ...]]:
    """Per agent, the kinds of key it has (no ciphertext read)."""
    out: dict[str, list[str]] = {}
    rows = tx.conn.execute(
        sa.select(t.agent_keys.c.agent_id, t.agent_keys.c.kind).order_by(t.agent_keys.c.kind)
    )
    for r in rows:
        out.setdefault(r.agent_id, []).append(r.kind)
    return {k: tuple(v) for k, v in out.items()}


def set_key(tx: Tx, agent_id: str, kind: str, ciphertext: str, at: datetime) -> None:
    tx.conn.execute(
        t.agent_keys.delete()
        .where(t.agent_keys.c.agent_id == agent_id)
        .where(t.agent_keys.c.kind == kind)
    )
    tx.conn.execute(
        t.agent_keys.insert().values(
            agent_id=agent_id, kind=kind, ciphertext=ciphertext, updated_at=at
        )
    )


def clear_key(tx: Tx, agent_id: str, kind: str) -> bool:
    result = tx.conn.execute(
        t.agent_keys.delete()
        .where(t.agent_keys.c.agent_id == agent_id)
        .where(t.agent_keys.c.kind == kind)
    )
    return result.rowcount == 1


# --- campaigns ---------------------------------------------------------------------------


def _members(tx: Tx, campaign_ids: list[str] | None = None) -> dict[str, list[CampaignAgent]]:
    q = sa.select(t.campaign_agents).order_by(
        t.campaign_agents.c.campaign_id, t.campaign_agents.c.position
    )
    if campaign_ids is not None:
        q = q.where(t.campaign_agents.c.campaign_id.in_(campaign_ids))
    out: dict[str, list[CampaignAgent]] = {}
    for r in tx.conn.execute(q):
        out.setdefault(r.campaign_id, []).append(CampaignAgent(r.agent_id, bool(r.is_primary)))
    return out


def get_campaign(tx: Tx, campaign_id: str) -> Campaign | None:
    row = tx.conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id)).first()
    if row is None:
        return None
    members = _members(tx, [campaign_id]).get(campaign_id, [])
    return Campaign(row.id, row.name, tuple(members))


def list_campaigns(tx: Tx) -> list[Campaign]:
    members = _members(tx)
    rows = tx.conn.execute(sa.select(t.campaigns).order_by(t.campaigns.c.id))
    return [Campaign(r.id, r.name, tuple(members.get(r.id, []))) for r in rows]


def upsert_campaign(tx: Tx, campaign: Campaign, at: datetime, actor: str) -> bool:
    """Create or replace the campaign and its agents; True when it was created."""
    result = tx.conn.execute(
        t.campaigns.update()
        .where(t.campaigns.c.id == campaign.id)
        .values(name=campaign.name, updated_at=at, updated_by=actor)
    )
    created = result.rowcount != 1
    if created:
        tx.conn.execute(
            t.campaigns.insert().values(
                id=campaign.id, name=campaign.name, created_at=at, updated_at=at, updated_by=actor
            )
        )
    tx.conn.execute(
        t.campaign_agents.delete().where(t.campaign_agents.c.campaign_id == campaign.id)
    )
    if campaign.agents:
        tx.conn.execute(
            t.campaign_agents.insert(),
            [
                {
                    "campaign_id": campaign.id,
                    "agent_id": m.agent_id,
                    "is_primary": m.is_primary,
                    "position": i,
                }
                for i, m in enumerate(campaign.agents)
            ],
        )
    return created


def delete_campaign(tx: Tx, campaign_id: str) -> bool:
    tx.conn.execute(
        t.campaign_agents.delete().where(t.campaign_agents.c.campaign_id == campaign_id)
    )
    tx.conn.execute(
        t.phone_numbers.update()
        .where(t.phone_numbers.c.campaign_id == campaign_id)
        .values(campaign_id=None)
    )
    result = tx.conn.execute(t.campaigns.delete().where(t.campaigns.c.id == campaign_id))
    return result.rowcount == 1


def campaigns_of_agent(tx: Tx, agent_id: str) -> list[str]:
    return list(
        tx.conn.execute(
            sa.select(t.campaign_agents.c.campaign_id)
            .where(t.campaign_agents.c.agent_id == agent_id)
            .order_by(t.campaign_agents.c.campaign_id)
        ).scalars()
    )


def membership(tx: Tx, campaign_id: str, agent_id: str) -> tuple[bool, bool | None]:
    """(the campaign exists, the agent's is_primary in it or None when not a member)."""
    exists = tx.conn.execute(
        sa.select(t.campaigns.c.id).where(t.campaigns.c.id == campaign_id)
    ).first()
    if exists is None:
        return False, None
    row = tx.conn.execute(
        sa.select(t.campaign_agents.c.is_primary)
        .where(t.campaign_agents.c.campaign_id == campaign_id)
        .where(t.campaign_agents.c.agent_id == agent_id)
    ).first()
    return True, None if row is None else bool(row.is_primary)


# --- phone numbers -----------------------------------------------------------------------


def get_number(tx: Tx, number: str) -> PhoneNumber | None:
    row = tx.conn.execute(
        sa.select(t.phone_numbers).where(t.phone_numbers.c.number == number)
    ).first()
    return PhoneNumber(row.number, row.campaign_id, row.label) if row is not None else None


def list_numbers(tx: Tx) -> list[PhoneNumber]:
    rows = tx.conn.execute(sa.select(t.phone_numbers).order_by(t.phone_numbers.c.number))
    return [PhoneNumber(r.number, r.campaign_id, r.label) for r in rows]


def upsert_number(tx: Tx, number: PhoneNumber, at: datetime) -> bool:
    values = {"campaign_id": number.campaign_id, "label": number.label, "updated_at": at}
    result = tx.conn.execute(
        t.phone_numbers.update().where(t.phone_numbers.c.number == number.number).values(**values)
    )
    if result.rowcount == 1:
        return False
    tx.conn.execute(t.phone_numbers.insert().values(number=number.number, **values))
    return True


def delete_number(tx: Tx, number: str) -> bool:
    result = tx.conn.execute(t.phone_numbers.delete().where(t.phone_numbers.c.number == number))
    return result.rowcount == 1

"""The agent registry: validated changes in one transaction each, and the runtime config."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from switchover.agents.keyring import Keyring
from switchover.core.agents import (
    AGENT_FIELDS,
    KEY_KINDS,
    Agent,
    AgentChange,
    Campaign,
    PhoneNumber,
    normalize_number,
    parse_agent,
    parse_campaign,
    parse_keys,
    parse_phone_number,
    runtime_config,
    runtime_config_answer,
)
from switchover.core.clock import Clock, SystemClock
from switchover.core.dispatch import CallRequest, route_inbound
from switchover.errors import (
    ConflictError,
    InactiveError,
    NotFoundError,
    SecretKeyError,
    ValidationError,
)
from switchover.store import agents as repo
from switchover.store.repository import Store

access_log = logging.getLogger("switchover.agents.access")
AUDIT_SUBJECT = "@agents"
"""The audit log's subject for agent registry changes: no migration can have this name."""


@dataclass(frozen=True, slots=True)
class AgentView:
    agent: Agent
    keys_set: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return self.agent.to_dict(self.keys_set)


@dataclass
class ImportResult:
    created: dict[str, int] = field(
        default_factory=lambda: {"agents": 0, "campaigns": 0, "phone_numbers": 0}
    )
    updated: dict[str, int] = field(
        default_factory=lambda: {"agents": 0, "campaigns": 0, "phone_numbers": 0}
    )
    keys_set: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "keys_set": self.keys_set}


class AgentService:
    def __init__(
        self, store: Store, clock: Clock | None = None, keyring: Keyring | None = None
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.keyring = keyring if keyring is not None else Keyring.from_env()
        self.hot_seconds = 0.0
        """Set by the HTTP server (1 s): see :meth:`hot_config`."""
        self._hot: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}

    def _changed(self) -> None:
        self._hot.clear()

    def _audit(
        self,
        tx: Any,
        action: str,
        actor: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        """Every registry change in the audit log (subject ``@agents``), in the change's
        own transaction; key values never, only which keys are set."""
        tx.add_audit(
            migration=AUDIT_SUBJECT,
            action=action,
            actor=actor,
            at=self.clock.now(),
            reason="",
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
            version=0,
        )

    def _agent_view(self, tx: Any, agent_id: str) -> dict[str, Any] | None:
        agent = repo.get_agent(tx, agent_id)
        if agent is None:
            return None
        return agent.to_dict(tuple(sorted(repo.key_ciphertexts(tx, agent_id))))

    # --- agents --------------------------------------------------------------------------

    def list(self) -> list[AgentView]:
        with self.store.read() as tx:
            keys = repo.keys_set(tx)
            return [AgentView(a, keys.get(a.id, ())) for a in repo.list_agents(tx)]

    def get(self, agent_id: str) -> AgentView:
        with self.store.read() as tx:
            agent = repo.get_agent(tx, agent_id)
            if agent is None:
                raise self._no_agent(agent_id)
            return AgentView(agent, tuple(sorted(repo.key_ciphertexts(tx, agent_id))))

    def put(self, data: Mapping[str, Any], *, actor: str) -> AgentView:
        """Create or replace an agent from plain data; ``keys`` given are set or cleared."""
        change = parse_agent(data)
        ciphertexts = self._encrypted(change)
        self._changed()
        with self.store.transaction() as tx:
            before = self._agent_view(tx, change.agent.id)
            self._write_agent(tx, change, ciphertexts, actor)
            self._audit(tx, "agent_put", actor, before, self._agent_view(tx, change.agent.id))
        return self.get(change.agent.id)

    def set_active(self, agent_id: str, active: bool, *, actor: str) -> AgentView:
        self._changed()
        with self.store.transaction() as tx:
            before = self._agent_view(tx, agent_id)
            if not repo.set_active(tx, agent_id, active, self.clock.now(), actor):
                raise self._no_agent(agent_id)
            action = "agent_activate" if active else "agent_deactivate"
            self._audit(tx, action, actor, before, self._agent_view(tx, agent_id))
        return self.get(agent_id)

    def delete(self, agent_id: str, *, actor: str = "switchover") -> None:
        self._changed()
        with self.store.transaction() as tx:
            before = self._agent_view(tx, agent_id)
            used = repo.campaigns_of_agent(tx, agent_id)
            if used:
                raise ConflictError(
                    f"agent {agent_id!r} is in campaign(s) {', '.join(used)}: remove it from "
                    "them first (or deactivate it instead)",
                    field="agent_id",
                )
            if not repo.delete_agent(tx, agent_id):
                raise self._no_agent(agent_id)
            self._audit(tx, "agent_delete", actor, before, None)

    def set_key(
        self, agent_id: str, kind: str, value: str | None, *, actor: str = "switchover"
    ) -> AgentView:
        """Set (or with ``None`` clear) one key of an agent."""
        set_keys, clear = parse_keys({kind: value})
        ciphertexts = {k: self.keyring.encrypt(v) for k, v in set_keys.items()}
        self._changed()
        with self.store.transaction() as tx:
            if repo.get_agent(tx, agent_id) is None:
                raise self._no_agent(agent_id)
            for k, c in ciphertexts.items():
                repo.set_key(tx, agent_id, k, c, self.clock.now())
            for k in clear:
                repo.clear_key(tx, agent_id, k)
            action = "agent_key_clear" if value is None else "agent_key_set"
            self._audit(tx, action, actor, {"agent_id": agent_id}, {"key": kind})
        return self.get(agent_id)

    def revealed_keys(self, agent_id: str, *, actor: str = "switchover") -> dict[str, str]:
        """The agent's keys in clear, for an explicit reveal: audited (which keys, by whom)."""
        with self.store.transaction() as tx:
            ciphertexts = repo.key_ciphertexts(tx, agent_id)
            self._audit(
                tx,
                "agent_key_reveal",
                actor,
                None,
                {"agent_id": agent_id, "keys": sorted(ciphertexts)},
            )
        return {kind: self.keyring.decrypt(c) for kind, c in ciphertexts.items()}

    def _encrypted(self, change: AgentChange) -> dict[str, str]:
        return {kind: self.keyring.encrypt(v) for kind, v in change.set_keys.items()}

    def _write_agent(
        self, tx: Any, change: AgentChange, ciphertexts: Mapping[str, str], actor: str
    ) -> bool:
        now = self.clock.now()
        created = repo.upsert_agent(tx, change.agent, now, actor)
        for kind, c in ciphertexts.items():
            repo.set_key(tx, change.agent.id, kind, c, now)
        for kind in change.clear_keys:
            repo.clear_key(tx, change.agent.id, kind)
        return created

    @staticmethod
    def _no_agent(agent_id: str) -> NotFoundError:
        return NotFoundError(
            f"no agent {agent_id!r}: list them with 'switchover agents list'", field="agent_id"
        )

    # --- campaigns -----------------------------------------------------------------------

    def campaigns(self) -> list[Campaign]:
        with self.store.read() as tx:
            return repo.list_campaigns(tx)

    def campaign(self, campaign_id: str) -> Campaign:
        with self.store.read() as tx:
            c = repo.get_campaign(tx, campaign_id)
        if c is None:
            raise self._no_campaign(campaign_id)
        return c

    def put_campaign(
        self,
        campaign_id: str,
        name: str | None,
        agents: Sequence[str],
        primary: str | None,
        *,
        actor: str,
    ) -> Campaign:
        if primary is not None and primary not in agents:
            raise ValidationError(
                f"primary agent {primary!r} is not one of the campaign's agents "
                f"({', '.join(agents) or 'none'}): add it to --agents",
                field="primary",
            )
        campaign = parse_campaign(
            {
                "id": campaign_id,
                "name": name or campaign_id,
                "agents": [{"agent_id": a, "is_primary": a == primary} for a in agents],
            }
        )
        self._changed()
        with self.store.transaction() as tx:
            self._check_members(tx, [campaign], set())
            old = repo.get_campaign(tx, campaign_id)
            repo.upsert_campaign(tx, campaign, self.clock.now(), actor)
            self._audit(
                tx, "campaign_put", actor, old.to_dict() if old else None, campaign.to_dict()
            )
        return self.campaign(campaign_id)

    def delete_campaign(self, campaign_id: str, *, actor: str = "switchover") -> None:
        self._changed()
        with self.store.transaction() as tx:
            old = repo.get_campaign(tx, campaign_id)
            if not repo.delete_campaign(tx, campaign_id):
                raise self._no_campaign(campaign_id)
            self._audit(tx, "campaign_delete", actor, old.to_dict() if old else None, None)

    def _check_members(self, tx: Any, campaigns: Sequence[Campaign], extra: set[str]) -> None:
        known = repo.agent_ids(tx) | extra
        for c in campaigns:
            for m in c.agents:
                if m.agent_id not in known:
                    raise ValidationError(
                        f"campaign {c.id!r} names agent {m.agent_id!r}, which does not exist: "
                        "create the agent first (or list it in the same import file)",
                        field="agents",
                    )

    @staticmethod
    def _no_campaign(campaign_id: str) -> NotFoundError:
        return NotFoundError(
            f"no campaign {campaign_id!r}: list them with 'switchover agents campaign list'",
            field="campaign_id",
        )

    # --- phone numbers -------------------------------------------------------------------

    def numbers(self) -> list[PhoneNumber]:
        with self.store.read() as tx:
            return repo.list_numbers(tx)

    def put_number(
        self,
        number: str,
        campaign_id: str | None,
        label: str = "",
        *,
        actor: str = "switchover",
    ) -> PhoneNumber:
        record = parse_phone_number({"number": number, "campaign_id": campaign_id, "label": label})
        self._changed()
        with self.store.transaction() as tx:
            if record.campaign_id is not None and repo.get_campaign(tx, record.campaign_id) is None:
                raise self._no_campaign(record.campaign_id)
            old = repo.get_number(tx, record.number)
            repo.upsert_number(tx, record, self.clock.now())
            self._audit(tx, "number_put", actor, old.to_dict() if old else None, record.to_dict())
        return record

    def delete_number(self, number: str, *, actor: str = "switchover") -> None:
        normalized = normalize_number(number)
        self._changed()
        with self.store.transaction() as tx:
            old = repo.get_number(tx, normalized)
            if not repo.delete_number(tx, normalized):
                raise NotFoundError(f"no phone number {normalized}", field="number")
            self._audit(tx, "number_delete", actor, old.to_dict() if old else None, None)

    # --- what a worker reads -------------------------------------------------------------

    def hot_config(self, agent_id: str, campaign_id: str | None, *, reader: str = "-") -> Any:
        """The answer from the last ``hot_seconds`` if there is one, else None (no I/O).

        A server answering many workers reads each config from the store at most once a
        second; changes made through this process clear it at once.
        """
        hit = self._hot.get((agent_id, campaign_id))
        if hit is None or hit[0] < self.clock.monotonic():
            return None
        self._log_access(agent_id, campaign_id, reader)
        return runtime_config_answer(hit[1], self.clock.now())

    def _log_access(self, agent_id: str, campaign_id: str | None, reader: str) -> None:
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "runtime config fetched for agent %s%s by %s",
                agent_id,
                f" (campaign: {campaign_id})" if campaign_id else "",
                reader,
            )

    def runtime_config(
        self, agent_id: str, campaign_id: str | None = None, *, reader: str = "-"
    ) -> dict[str, Any]:
        """Seed 000 step 2.1's answer. 404 unknown agent or campaign, 400 inactive agent.

        Writes one access log line (agent, campaign, reader): never a key.
        """
        with self.store.read() as tx:
            agent = repo.get_agent(tx, agent_id)
            if agent is None:
                raise self._no_agent(agent_id)
            if not agent.is_active:
                raise InactiveError(
                    f"agent {agent_id!r} is not active: activate it with "
                    f"'switchover agents activate {agent_id}'",
                    field="agent_id",
                )
            is_primary: bool | None = None
            if campaign_id is not None:
                exists, is_primary = repo.membership(tx, campaign_id, agent_id)
                if not exists:
                    raise NotFoundError(f"no campaign {campaign_id!r}", field="campaignId")
                if is_primary is None:
                    raise NotFoundError(
                        f"agent {agent_id!r} is not in campaign {campaign_id!r}: add it with "
                        f"'switchover agents campaign set {campaign_id} --agents …'",
                        field="campaignId",
                    )
            ciphertexts = repo.key_ciphertexts(tx, agent_id)
        keys = {kind: self.keyring.decrypt(c) for kind, c in ciphertexts.items()}
        config = runtime_config(agent, keys, campaign_id=campaign_id, is_primary=is_primary)
        if self.hot_seconds > 0:
            if len(self._hot) > 10_000:
                self._hot.clear()
            self._hot[(agent_id, campaign_id)] = (self.clock.monotonic() + self.hot_seconds, config)
        self._log_access(agent_id, campaign_id, reader)
        return runtime_config_answer(config, self.clock.now())

    def route_inbound(self, number: str) -> CallRequest:
        """The call metadata for an inbound call to ``number`` (seed 000 step 2.2)."""
        normalized = normalize_number(number)
        with self.store.read() as tx:
            record = repo.get_number(tx, normalized)
            numbers = {normalized: record} if record is not None else {}
            campaigns: dict[str, Campaign] = {}
            if record is not None and record.campaign_id is not None:
                c = repo.get_campaign(tx, record.campaign_id)
                if c is not None:
                    campaigns[c.id] = c
        return route_inbound(normalized, numbers, campaigns)

    # --- import --------------------------------------------------------------------------

    def import_data(
        self, data: Any, *, actor: str, env: Mapping[str, str] | None = None
    ) -> ImportResult:
        """Agents, campaigns and phone numbers from one document, all or nothing.

        Existing records with the same id are replaced, so importing a file again is safe.
        ``{"env": "VAR"}`` key references are read from ``env``: the CLI passes the
        environment of the operator who runs it. Without ``env`` (an HTTP caller) they
        are refused: a server never reads its own environment on a caller's behalf, or
        any operator could read its secrets back through a runtime config.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(
                'the import file must be a JSON object with "agents", "campaigns" and '
                '"phone_numbers" lists',
                field="file",
            )
        unknown = sorted(set(data) - {"agents", "campaigns", "phone_numbers"})
        if unknown:
            raise ValidationError(
                f"unknown top-level field(s) {', '.join(unknown)}; use agents, campaigns, "
                "phone_numbers",
                field=unknown[0],
            )
        sealed = [self._sealed_keys(item, i) for i, item in enumerate(_listed(data, "agents"))]
        changes = [
            self._parse_imported_agent(item, i, env)
            for i, item in enumerate(_unsealed(_listed(data, "agents")))
        ]
        campaigns = [
            parse_campaign(item, where=f"campaigns[{i}]: ")
            for i, item in enumerate(_listed(data, "campaigns"))
        ]
        numbers = [
            parse_phone_number(item, where=f"phone_numbers[{i}]: ")
            for i, item in enumerate(_listed(data, "phone_numbers"))
        ]
        _unique([c.agent.id for c in changes], "agents", "agent id")
        _unique([c.id for c in campaigns], "campaigns", "campaign id")
        _unique([n.number for n in numbers], "phone_numbers", "number")
        encrypted = [{**self._encrypted(c), **s} for c, s in zip(changes, sealed, strict=True)]
        result = ImportResult()
        now = self.clock.now()
        self._changed()
        with self.store.transaction() as tx:
            self._check_members(tx, campaigns, {c.agent.id for c in changes})
            for change, ciphertexts in zip(changes, encrypted, strict=True):
                created = self._write_agent(tx, change, ciphertexts, actor)
                (result.created if created else result.updated)["agents"] += 1
                result.keys_set += len(ciphertexts)
            for campaign in campaigns:
                created = repo.upsert_campaign(tx, campaign, now, actor)
                (result.created if created else result.updated)["campaigns"] += 1
            in_file = {c.id for c in campaigns}
            for number in numbers:
                cid = number.campaign_id
                if cid is not None and cid not in in_file and repo.get_campaign(tx, cid) is None:
                    raise ValidationError(
                        f"phone number {number.number} names campaign {cid!r}, which does not "
                        "exist: add it to the file's campaigns",
                        field="phone_numbers",
                    )
                created = repo.upsert_number(tx, number, now)
                (result.created if created else result.updated)["phone_numbers"] += 1
            self._audit(
                tx,
                "import",
                actor,
                None,
                {
                    **result.to_dict(),
                    "agents": [c.agent.id for c in changes],
                    "campaigns": [c.id for c in campaigns],
                    "phone_numbers": [n.number for n in numbers],
                },
            )
        return result

    def _sealed_keys(self, item: Any, i: int) -> dict[str, str]:
        """``{"encrypted": token}`` key values (what ``export_data`` writes), kept as they
        are once this process's keyring has decrypted them."""
        keys = item.get("keys") if isinstance(item, Mapping) else None
        out: dict[str, str] = {}
        for kind, value in (keys or {}).items() if isinstance(keys, Mapping) else ():
            if isinstance(value, Mapping) and set(value) == {"encrypted"}:
                token = value["encrypted"]
                if not isinstance(token, str) or kind not in KEY_KINDS:
                    raise ValidationError(
                        f"agents[{i}]: keys.{kind} must be a known key kind with a token "
                        'string, as written by "agents export"',
                        field="keys",
                    )
                try:
                    self.keyring.decrypt(token)
                except SecretKeyError:
                    raise SecretKeyError(
                        f"agents[{i}]: keys.{kind} was encrypted with another "
                        "SWITCHOVER_SECRET_KEY: import with the key the file was exported "
                        "with (or list it after yours, comma-separated); nothing was imported",
                        field="SWITCHOVER_SECRET_KEY",
                    ) from None
                out[kind] = token
        return out

    def export_data(self, *, actor: str) -> dict[str, Any]:
        """Every agent (keys as their stored ciphertexts, ``{"encrypted": token}``),
        campaign and phone number, read in one transaction, in the shape ``import_data``
        reads: importing the file gives back the same registry. Audited."""
        with self.store.transaction() as tx:
            agents = []
            for agent in repo.list_agents(tx):
                item = {name: getattr(agent, name) for name in AGENT_FIELDS}
                tokens = repo.key_ciphertexts(tx, agent.id)
                if tokens:
                    item["keys"] = {k: {"encrypted": tokens[k]} for k in sorted(tokens)}
                agents.append(item)
            data = {
                "agents": agents,
                "campaigns": [c.to_dict() for c in repo.list_campaigns(tx)],
                "phone_numbers": [n.to_dict() for n in repo.list_numbers(tx)],
            }
            self._audit(
                tx, "export", actor, None,
                {"agents": [a["id"] for a in agents], "keys": sum(len(a.get("keys", {}))
                 for a in agents)},
            )  # fmt: skip
        return data

    @staticmethod
    def _parse_imported_agent(item: Any, i: int, env: Mapping[str, str] | None) -> AgentChange:
        where = f"agents[{i}]: "
        if isinstance(item, Mapping) and "keys" in item:
            keys = item.get("keys") or {}
            if env is None:
                _refuse_env_references(keys, where)
            set_keys, clear = parse_keys(keys, where=where, env=env)
            change = parse_agent({k: v for k, v in item.items() if k != "keys"}, where=where)
            return AgentChange(change.agent, set_keys, clear)
        return parse_agent(item, where=where)


def _unsealed(items: list[Any]) -> list[Any]:
    """The agents without their ``{"encrypted": …}`` keys (read by ``_sealed_keys``)."""
    out = []
    for item in items:
        keys = item.get("keys") if isinstance(item, Mapping) else None
        if isinstance(keys, Mapping):
            plain = {
                k: v
                for k, v in keys.items()
                if not (isinstance(v, Mapping) and set(v) == {"encrypted"})
            }
            item = {**item, "keys": plain}
        out.append(item)
    return out


def _refuse_env_references(keys: Any, where: str) -> None:
    if not isinstance(keys, Mapping):
        return
    for kind, value in keys.items():
        if isinstance(value, Mapping) and "env" in value:
            raise ValidationError(
                f"{where}keys.{kind} is an environment reference; the server does not read "
                "its own environment for a caller: send the key's value, or import the file "
                "with 'switchover agents import FILE', which reads the variable where you "
                "run it",
                field=f"keys.{kind}",
            )


def _listed(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name) or []
    if not isinstance(value, list):
        raise ValidationError(f"{name} must be a list", field=name)
    return value


def _unique(values: list[str], name: str, what: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValidationError(f"{name}: {what} {v!r} appears twice", field=name)
        seen.add(v)

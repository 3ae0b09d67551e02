"""The agent registry's nouns and the runtime config a core worker fetches (seed 000 step 2.1).

An agent is one voice persona (prompt, voice, models); a campaign groups agents, one of
them primary; a phone number sends inbound calls to a campaign. The runtime config is
what one multi-tenant worker needs to become that agent for one call: every field has
the seed's default, and provider keys are ``None`` when the agent has none of its own,
so the worker uses its environment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from switchover.errors import ValidationError

CACHE_HINT = timedelta(minutes=5)
"""How far ahead ``cached_until`` points (seed 000: "5 min cache hint")."""

LLM_PROVIDERS = ("openai", "anthropic", "google", "groq", "mistral")
TTS_PROVIDERS = ("cartesia", "elevenlabs", "openai", "deepgram", "rime")
STT_PROVIDERS = ("assemblyai", "deepgram", "openai", "cartesia")

KEY_KINDS = ("llm_api_key", "tts_api_key", "stt_api_key", "livekit_api_key", "livekit_api_secret")
"""Secrets stored encrypted per agent. ``livekit_url`` is not a secret and is a column."""

DEFAULTS: Mapping[str, Any] = {
    "livekit_agent_name": "core-voice-worker",
    "system_prompt": "You are a helpful AI assistant.",
    "voice_id": "default",
    "llm_provider": "openai",
    "llm_model": "gpt-4o-mini",
    "temperature": 0.7,
    "tts_provider": "cartesia",
    "stt_provider": "assemblyai",
    "max_concurrent_calls": 3,
}
"""The seed's defaults for fields an agent leaves empty."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_TEXT_FIELDS = {
    "name": 200,
    "system_prompt": 20_000,
    "personality": 2_000,
    "voice_id": 200,
    "llm_model": 100,
    "livekit_agent_name": 200,
    "livekit_url": 500,
}
AGENT_FIELDS = (
    "id",
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


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    is_active: bool = True
    system_prompt: str | None = None
    personality: str | None = None
    voice_id: str | None = None
    llm_provider: str | None = None
    llm_model: str | None = None
    temperature: float | None = None
    max_concurrent_calls: int | None = None
    livekit_agent_name: str | None = None
    tts_provider: str | None = None
    stt_provider: str | None = None
    livekit_url: str | None = None
    updated_at: datetime | None = None
    updated_by: str = ""

    def to_dict(self, keys_set: tuple[str, ...] = ()) -> dict[str, Any]:
        """The agent as stored, with which keys are set (never their values)."""
        out = {name: getattr(self, name) for name in AGENT_FIELDS}
        out["keys_set"] = sorted(keys_set)
        out["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        out["updated_by"] = self.updated_by
        return out


@dataclass(frozen=True, slots=True)
class CampaignAgent:
    agent_id: str
    is_primary: bool = False


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    agents: tuple[CampaignAgent, ...] = ()
    """In the order they were given: "the campaign's first agent" is the first here."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "agents": [{"agent_id": a.agent_id, "is_primary": a.is_primary} for a in self.agents],
        }


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    number: str
    campaign_id: str | None = None
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "campaign_id": self.campaign_id, "label": self.label}


@dataclass(frozen=True, slots=True)
class AgentChange:
    """A validated agent and what to do with its keys: set these, clear those."""

    agent: Agent
    set_keys: Mapping[str, str] = field(default_factory=dict)
    clear_keys: tuple[str, ...] = ()


# --- validation --------------------------------------------------------------------------


def validate_id(value: Any, what: str, field_name: str = "id") -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ValidationError(
            f"{what} {value!r} is not a valid id: use 1-64 letters, digits, '_', '.', ':', '-', "
            "starting with a letter or digit",
            field=field_name,
        )
    return value


def _text(data: Mapping[str, Any], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{where}{name} must be a string or null", field=name)
    value = value.strip()
    limit = _TEXT_FIELDS[name]
    if len(value) > limit:
        raise ValidationError(f"{where}{name} is longer than {limit} characters", field=name)
    return value or None


def _choice(data: Mapping[str, Any], name: str, choices: tuple[str, ...], where: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if value not in choices:
        raise ValidationError(
            f"{where}{name} {value!r} is not known: use one of {', '.join(choices)}", field=name
        )
    return str(value)


def parse_agent(data: Mapping[str, Any], *, where: str = "") -> AgentChange:
    """An agent from plain data (an import file, an API body); ``where`` prefixes errors.

    ``keys`` maps a kind in KEY_KINDS to a value (set it) or ``None`` (clear it); kinds not
    given are left as they are. Unknown fields are refused, so a typo is not lost silently.
    """
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where}an agent must be an object", field="agents")
    unknown = sorted(set(data) - set(AGENT_FIELDS) - {"keys"})
    if unknown:
        raise ValidationError(
            f"{where}unknown field(s) {', '.join(unknown)}; agent fields are "
            f"{', '.join(AGENT_FIELDS)}, keys",
            field=unknown[0],
        )
    agent_id = validate_id(data.get("id"), f"{where}agent id")
    name = _text(data, "name", where)
    if not name:
        raise ValidationError(f"{where}name is required (a label for people)", field="name")
    is_active = data.get("is_active", True)
    if not isinstance(is_active, bool):
        raise ValidationError(f"{where}is_active must be true or false", field="is_active")
    temperature = data.get("temperature")
    if temperature is not None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not math.isfinite(temperature)
            or not 0 <= temperature <= 2
        ):
            raise ValidationError(
                f"{where}temperature must be a number from 0 to 2", field="temperature"
            )
        temperature = float(temperature)
    max_calls = data.get("max_concurrent_calls")
    if max_calls is not None and (
        isinstance(max_calls, bool) or not isinstance(max_calls, int) or not 1 <= max_calls <= 1000
    ):
        raise ValidationError(
            f"{where}max_concurrent_calls must be a whole number from 1 to 1000",
            field="max_concurrent_calls",
        )
    livekit_url = _text(data, "livekit_url", where)
    if livekit_url is not None and not livekit_url.startswith(("ws://", "wss://")):
        raise ValidationError(
            f"{where}livekit_url must start with wss:// (or ws:// for a local server)",
            field="livekit_url",
        )
    agent = Agent(
        id=agent_id,
        name=name,
        is_active=is_active,
        system_prompt=_text(data, "system_prompt", where),
        personality=_text(data, "personality", where),
        voice_id=_text(data, "voice_id", where),
        llm_provider=_choice(data, "llm_provider", LLM_PROVIDERS, where),
        llm_model=_text(data, "llm_model", where),
        temperature=temperature,
        max_concurrent_calls=max_calls,
        livekit_agent_name=_text(data, "livekit_agent_name", where),
        tts_provider=_choice(data, "tts_provider", TTS_PROVIDERS, where),
        stt_provider=_choice(data, "stt_provider", STT_PROVIDERS, where),
        livekit_url=livekit_url,
    )
    set_keys, clear_keys = parse_keys(data.get("keys") or {}, where=where)
    return AgentChange(agent, set_keys, clear_keys)


def parse_keys(
    keys: Mapping[str, Any], *, where: str = "", env: Mapping[str, str] | None = None
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Key values to set and kinds to clear. A value ``{"env": "VAR"}`` is read from ``env``."""
    if not isinstance(keys, Mapping):
        raise ValidationError(f"{where}keys must be an object", field="keys")
    set_keys: dict[str, str] = {}
    clear: list[str] = []
    for kind, value in keys.items():
        if kind not in KEY_KINDS:
            raise ValidationError(
                f"{where}key {kind!r} is not known: use one of {', '.join(KEY_KINDS)}",
                field="keys",
            )
        if isinstance(value, Mapping) and set(value) == {"env"}:
            var = value["env"]
            found = (env or {}).get(var) if isinstance(var, str) else None
            if not found:
                raise ValidationError(
                    f"{where}keys.{kind} reads the environment variable {var!r}, which is not "
                    "set: export it before importing",
                    field="keys",
                )
            value = found
        if value is None:
            clear.append(kind)
        elif isinstance(value, str) and value.strip():
            set_keys[kind] = value.strip()
        else:
            raise ValidationError(
                f'{where}keys.{kind} must be a non-empty string, {{"env": "VAR"}}, or null '
                "(to clear it)",
                field="keys",
            )
    return set_keys, tuple(clear)


# --- runtime config ----------------------------------------------------------------------


def runtime_config(
    agent: Agent,
    keys: Mapping[str, str],
    *,
    campaign_id: str | None = None,
    is_primary: bool | None = None,
) -> dict[str, Any]:
    """Seed 000 step 2.1's config: the agent's values, else the seed's defaults.

    A temperature of 0 is kept (the seed's ``||`` would have made it 0.7).
    """

    def pick(name: str) -> Any:
        value = getattr(agent, name)
        return DEFAULTS[name] if value is None else value

    return {
        "agent_id": agent.id,
        "name": agent.name,
        "livekit_agent_name": pick("livekit_agent_name"),
        "system_prompt": pick("system_prompt"),
        "personality": agent.personality,
        "voice_id": pick("voice_id"),
        "llm_provider": pick("llm_provider"),
        "llm_model": pick("llm_model"),
        "temperature": pick("temperature"),
        "llm_api_key": keys.get("llm_api_key"),
        "tts_provider": pick("tts_provider"),
        "tts_api_key": keys.get("tts_api_key"),
        "stt_provider": pick("stt_provider"),
        "stt_api_key": keys.get("stt_api_key"),
        "livekit_url": agent.livekit_url,
        "livekit_api_key": keys.get("livekit_api_key"),
        "livekit_api_secret": keys.get("livekit_api_secret"),
        "max_concurrent_calls": pick("max_concurrent_calls"),
        "campaign_id": campaign_id,
        "is_primary": is_primary,
    }


def runtime_config_answer(config: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The endpoint's whole answer: ``success``, ``config``, ``cached_until`` (now + 5 min)."""
    until = now + CACHE_HINT
    return {
        "success": True,
        "config": dict(config),
        "cached_until": until.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


ENV_FOR_KEY = {
    "livekit_api_key": "LIVEKIT_API_KEY",
    "livekit_api_secret": "LIVEKIT_API_SECRET",
}


def env_var_for(kind: str, config: Mapping[str, Any]) -> str:
    """The environment variable a worker falls back to for a key the agent lacks.

    Provider keys follow the provider: ``openai`` -> ``OPENAI_API_KEY``, ``cartesia`` ->
    ``CARTESIA_API_KEY``; LiveKit's are ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and
    ``LIVEKIT_API_SECRET``.
    """
    if kind == "livekit_url":
        return "LIVEKIT_URL"
    if kind in ENV_FOR_KEY:
        return ENV_FOR_KEY[kind]
    provider = str(config.get(kind.replace("_api_key", "_provider")) or "")
    return f"{provider.upper()}_API_KEY"


def with_env_keys(
    config: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The config with missing keys filled from ``env``, and where each key came from.

    Sources are ``agent`` (the registry), ``env:VAR`` or ``missing``: values never leave
    this function except in the returned config.
    """
    out = dict(config)
    sources: dict[str, str] = {}
    for kind in (*KEY_KINDS, "livekit_url"):
        if out.get(kind):
            sources[kind] = "agent"
            continue
        var = env_var_for(kind, out)
        value = env.get(var)
        out[kind] = value or None
        sources[kind] = f"env:{var}" if value else "missing"
    return out, sources


def parse_campaign(data: Mapping[str, Any], *, where: str = "") -> Campaign:
    """A campaign from plain data: ``id``, ``name``, ``agents`` ([{agent_id, is_primary}])."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where}a campaign must be an object", field="campaigns")
    unknown = sorted(set(data) - {"id", "name", "agents"})
    if unknown:
        raise ValidationError(
            f"{where}unknown field(s) {', '.join(unknown)}; campaign fields are id, name, agents",
            field=unknown[0],
        )
    campaign_id = validate_id(data.get("id"), f"{where}campaign id")
    name = data.get("name") or campaign_id
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationError(
            f"{where}name must be a string of at most 200 characters", field="name"
        )
    raw_agents = data.get("agents") or []
    if not isinstance(raw_agents, list):
        raise ValidationError(f"{where}agents must be a list", field="agents")
    members: list[CampaignAgent] = []
    for i, item in enumerate(raw_agents):
        if isinstance(item, str):
            item = {"agent_id": item}
        if not isinstance(item, Mapping) or set(item) - {"agent_id", "is_primary"}:
            raise ValidationError(
                f'{where}agents[{i}] must be an agent id or {{"agent_id", "is_primary"}}',
                field="agents",
            )
        agent_id = validate_id(item.get("agent_id"), f"{where}agents[{i}].agent_id", "agents")
        primary = item.get("is_primary", False)
        if not isinstance(primary, bool):
            raise ValidationError(
                f"{where}agents[{i}].is_primary must be true or false", field="agents"
            )
        if any(m.agent_id == agent_id for m in members):
            raise ValidationError(f"{where}agent {agent_id!r} is listed twice", field="agents")
        members.append(CampaignAgent(agent_id, primary))
    if sum(m.is_primary for m in members) > 1:
        raise ValidationError(
            f"{where}more than one agent is primary: mark exactly one (or none: the first "
            "agent then takes inbound calls)",
            field="agents",
        )
    return Campaign(campaign_id, name.strip() or campaign_id, tuple(members))


def parse_phone_number(data: Mapping[str, Any], *, where: str = "") -> PhoneNumber:
    """A phone number from plain data: ``number``, ``campaign_id`` (inbound), ``label``."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where}a phone number must be an object", field="phone_numbers")
    unknown = sorted(set(data) - {"number", "campaign_id", "label"})
    if unknown:
        raise ValidationError(
            f"{where}unknown field(s) {', '.join(unknown)}; phone number fields are number, "
            "campaign_id, label",
            field=unknown[0],
        )
    campaign_id = data.get("campaign_id")
    if campaign_id is not None:
        validate_id(campaign_id, f"{where}campaign_id", "campaign_id")
    label = data.get("label") or ""
    if not isinstance(label, str) or len(label) > 200:
        raise ValidationError(
            f"{where}label must be a string of at most 200 characters", field="label"
        )
    return PhoneNumber(normalize_number(data.get("number")), campaign_id, label)


_NUMBER_JUNK = re.compile(r"[\s().\-/]")
_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")


def normalize_number(raw: str) -> str:
    """A phone number with spaces, dashes, dots and brackets removed; ``00`` becomes ``+``."""
    if not isinstance(raw, str):
        raise ValidationError("a phone number must be a string", field="number")
    number = _NUMBER_JUNK.sub("", raw.strip())
    if number.startswith("00"):
        number = "+" + number[2:]
    if not _NUMBER.match(number):
        raise ValidationError(
            f"phone number {raw!r} is not valid: use E.164, e.g. +14155550100", field="number"
        )
    return number


def masked(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with every key value replaced by ``"<set>"``: safe to print or log."""
    return {k: ("<set>" if k in KEY_KINDS and v else v) for k, v in config.items()}

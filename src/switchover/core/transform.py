"""The v1 → v2 voice-agent config transform of seed 003 §3.3, pure and deterministic.

A v1 config is flat: a free-text ``prompt``, ``voice_id`` and ``language``. A v2 config
is structured by domain. Every v2 field is derived from the v1 row alone (see
docs/data.md for the table):

- ``voice_config``: ``{voice_id, language}``; a missing voice is ``"default"``, a missing
  language ``"en"``, and the language is normalised to ``ll`` or ``ll-RR``.
- ``personality``: the prompt split into ``base_prompt`` (what is left),
  ``special_instructions`` (its bullet lines, empty ones dropped), ``greeting_message``
  and ``farewell_message`` (a ``Greeting:``/``Saludo:`` or ``Farewell:``/``Despedida:``
  line, else a default in the config's language naming the agent).
- ``capabilities``: the typed capabilities whose keywords the prompt mentions, in
  :data:`CAPABILITIES` order.
- ``assistant_type``: ``outbound`` when the prompt only has outbound cues, ``hybrid``
  when it has both, else ``inbound`` (v1 agents answered calls).
- ``schema_version`` ``"v2"``, ``migrated_at`` (the run's clock), ``migrated_from`` ``"v1"``.

The v1 columns are left as they are, so the legacy code path keeps working while the
rollout moves traffic to v2.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

ASSISTANT_TYPES = ("inbound", "outbound", "hybrid")

CAPABILITIES: dict[str, tuple[str, ...]] = {
    "appointment_booking": ("appointment", "schedul", "book", "cita", "agend", "reserv"),
    "call_transfer": ("transfer", "transfier", "human agent", "agente humano"),
    "faq": ("faq", "question", "pregunta", "informaci", "information"),
    "order_taking": ("order", "pedido", "orden"),
    "reminders": ("remind", "recordatorio", "recordar"),
    "payments": ("payment", "pago", "invoice", "factura"),
    "messaging": ("sms", "whatsapp", "text message", "mensaje"),
    "lead_qualification": ("lead", "qualif", "prospect", "calific"),
    "surveys": ("survey", "encuesta", "feedback"),
}

_OUTBOUND_CUES = (
    "outbound",
    "call the customer",
    "call customers",
    "follow up",
    "follow-up",
    "campaign",
    "campaña",
    "llamar al cliente",
    "llamar a los clientes",
    "seguimiento",
    "cold call",
)
_INBOUND_CUES = (
    "inbound",
    "answer",
    "incoming",
    "receptionist",
    "reception",
    "atender",
    "atiende",
    "recibir llamadas",
    "recepcionista",
    "contesta",
)

_GREETING = re.compile(r"^\s*(?:greeting|saludo|bienvenida)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_FAREWELL = re.compile(r"^\s*(?:farewell|goodbye|despedida)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_BULLET_MARKS = frozenset("-*•")
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}|\d{3}))?$")

_DEFAULT_GREETING = {
    "es": "¡Hola! Gracias por llamar a {name}. ¿En qué puedo ayudarte?",
    "en": "Hello! Thank you for calling {name}. How can I help you?",
    "pt": "Olá! Obrigado por ligar para {name}. Como posso ajudar?",
    "fr": "Bonjour ! Merci d'avoir appelé {name}. Comment puis-je vous aider ?",
}
_DEFAULT_FAREWELL = {
    "es": "Gracias por llamar. ¡Que tengas un excelente día!",
    "en": "Thank you for calling. Have a great day!",
    "pt": "Obrigado por ligar. Tenha um ótimo dia!",
    "fr": "Merci de votre appel. Bonne journée !",
}

DEFAULT_VOICE = "default"
DEFAULT_LANGUAGE = "en"

V1_FIELDS = ("id", "tenant_id", "name", "prompt", "voice_id", "language", "enabled")
"""The v1 columns a transform reads."""
V2_FIELDS = (
    "assistant_type",
    "voice_config",
    "personality",
    "capabilities",
    "schema_version",
    "migrated_at",
    "migrated_from",
)
"""The columns a transform returns; a plugged-in transform must return all of them."""

Transform = Callable[[Mapping[str, Any], str], Mapping[str, Any]]
"""``transform(v1_row, migrated_at_iso) -> v2 fields``."""


@functools.lru_cache(maxsize=4096)
def normalize_language(value: str | None) -> str | None:
    """``es_mx``/``ES-mx`` → ``es-MX``; ``None`` when it is not a language tag at all."""
    if value is None:
        return None
    m = _LANGUAGE.match(value.strip())
    if m is None:
        return None
    lang, region = m.group(1).lower(), m.group(2)
    return f"{lang}-{region.upper()}" if region else lang


def split_prompt(prompt: str) -> dict[str, Any]:
    """The prompt's greeting, farewell and bullet instructions, and what is left."""
    greeting = farewell = None
    instructions: list[str] = []
    rest: list[str] = []
    marks = _BULLET_MARKS
    for line in prompt.splitlines():
        stripped = line.lstrip()
        if stripped[:1] in marks:
            item = stripped[1:].strip()
            if item:
                instructions.append(item)
            continue
        if ":" in line:
            if greeting is None and (m := _GREETING.match(line)):
                greeting = m.group(1) or None
                continue
            if farewell is None and (m := _FAREWELL.match(line)):
                farewell = m.group(1) or None
                continue
        rest.append(line)
    return {
        "base_prompt": "\n".join(rest).strip(),
        "special_instructions": instructions,
        "greeting_message": greeting,
        "farewell_message": farewell,
    }


_CAPABILITY_ITEMS = tuple(CAPABILITIES.items())


def _mentions(low: str, words: tuple[str, ...]) -> bool:
    for w in words:  # noqa: SIM110  (a loop: faster than any() over a generator here)
        if w in low:
            return True
    return False


def _capabilities(low: str) -> list[str]:
    """:func:`capabilities_of` of text already lowered: one loop, no call per
    capability (the transform's hottest code: 9 capabilities, 36 words, every row)."""
    found = []
    for cap, words in _CAPABILITY_ITEMS:
        for w in words:
            if w in low:
                found.append(cap)
                break
    return found


def _assistant_type(low: str) -> str:
    outbound = _mentions(low, _OUTBOUND_CUES)
    inbound = _mentions(low, _INBOUND_CUES)
    if outbound and inbound:
        return "hybrid"
    return "outbound" if outbound else "inbound"


def capabilities_of(text: str) -> list[str]:
    return _capabilities(text.lower())


def assistant_type_of(text: str) -> str:
    return _assistant_type(text.lower())


def _default_greeting(language: str, name: str) -> str:
    template = _DEFAULT_GREETING.get(language, _DEFAULT_GREETING["en"])
    if not name:  # "… calling {name}." reads wrong without a name: drop that clause
        template = re.sub(r" (?:a|to|para|d'avoir appelé)? ?\{name\}", "", template)
    return template.format(name=name)


def to_v2(row: Mapping[str, Any], migrated_at: str) -> dict[str, Any]:
    """The v2 fields of one v1 config row (the default transform)."""
    prompt = row.get("prompt") or ""
    language = normalize_language(row.get("language")) or DEFAULT_LANGUAGE
    parts = split_prompt(prompt)
    low = prompt.lower()
    base = language.split("-", 1)[0]
    name = (row.get("name") or "").strip()
    personality = {
        "base_prompt": parts["base_prompt"],
        "special_instructions": parts["special_instructions"],
        "greeting_message": parts["greeting_message"] or _default_greeting(base, name),
        "farewell_message": parts["farewell_message"]
        or _DEFAULT_FAREWELL.get(base, _DEFAULT_FAREWELL["en"]),
    }
    return {
        "assistant_type": _assistant_type(low),
        "voice_config": {"voice_id": row.get("voice_id") or DEFAULT_VOICE, "language": language},
        "personality": personality,
        "capabilities": _capabilities(low),
        "schema_version": "v2",
        "migrated_at": migrated_at,
        "migrated_from": "v1",
    }


def check_v2(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with a transform's output, as ``(field, how to fix)`` pairs."""
    problems: list[tuple[str, str]] = []
    missing = [f for f in V2_FIELDS if f not in fields]
    for f in missing:
        problems.append((f, "the transform must return it"))
    if missing:
        return problems
    if fields["assistant_type"] not in ASSISTANT_TYPES:
        problems.append(("assistant_type", f"must be one of {', '.join(ASSISTANT_TYPES)}"))
    voice = fields["voice_config"]
    if not isinstance(voice, Mapping) or not voice.get("voice_id") or not voice.get("language"):
        problems.append(("voice_config", "must be an object with voice_id and language"))
    person = fields["personality"]
    if not isinstance(person, Mapping) or not isinstance(person.get("base_prompt"), str):
        problems.append(("personality", "must be an object with a base_prompt string"))
    caps = fields["capabilities"]
    if not isinstance(caps, list) or not all(isinstance(c, str) and c for c in caps):
        problems.append(("capabilities", "must be a list of non-empty strings"))
    if fields["schema_version"] != "v2":
        problems.append(("schema_version", 'must be "v2"'))
    return problems

"""The v1 → v2 voice-agent config transform of seed 003 §3.3, field by field."""

from __future__ import annotations

import copy
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from switchover.core.transform import (
    CAPABILITIES,
    V1_FIELDS,
    V2_FIELDS,
    check_v2,
    normalize_language,
    to_v2,
)
from switchover.data.migrate import load_transform
from switchover.errors import ValidationError

AT = "2026-01-01T00:00:00Z"


def v1(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "cfg1",
        "tenant_id": "t1",
        "name": "Clínica Sonrisa",
        "prompt": "You are the receptionist of Clínica Sonrisa.",
        "voice_id": "nova",
        "language": "en-US",
        "enabled": True,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    row.update(kw)
    return row


# --- personality: greeting, farewell, special instructions --------------------------------


def test_greeting_farewell_and_bullets_are_lifted_out_of_the_prompt() -> None:
    prompt = "\n".join(
        [
            "You are the receptionist of Acme Dental.",
            "Greeting: Hi, Acme Dental here, how can I help?",
            "- Book appointments and confirm the time.",
            "-   ",
            "* Transfer to a human agent when asked.",
            "• Never share other patients' data.",
            "-",
            "Be warm and brief.",
            "Farewell: Thanks for calling Acme, bye!",
        ]
    )
    p = to_v2(v1(prompt=prompt), AT)["personality"]
    assert p == {
        "base_prompt": "You are the receptionist of Acme Dental.\nBe warm and brief.",
        "special_instructions": [
            "Book appointments and confirm the time.",
            "Transfer to a human agent when asked.",
            "Never share other patients' data.",
        ],
        "greeting_message": "Hi, Acme Dental here, how can I help?",
        "farewell_message": "Thanks for calling Acme, bye!",
    }


def test_spanish_saludo_and_despedida_lines_any_case_and_spacing() -> None:
    prompt = (
        "Eres la recepcionista de Taquería El Güero.\n"
        "  SALUDO :  ¡Hola! Bienvenido a El Güero 🌮  \n"
        "despedida:¡Gracias por tu pedido, hasta pronto!"
    )
    p = to_v2(v1(prompt=prompt, language="es-MX"), AT)["personality"]
    assert p["greeting_message"] == "¡Hola! Bienvenido a El Güero 🌮"
    assert p["farewell_message"] == "¡Gracias por tu pedido, hasta pronto!"
    assert p["base_prompt"] == "Eres la recepcionista de Taquería El Güero."
    assert p["special_instructions"] == []


def test_only_the_first_greeting_line_is_the_greeting_and_no_text_is_lost() -> None:
    prompt = "Greeting: first\nGreeting: second\nFarewell: bye one\nFarewell: bye two"
    p = to_v2(v1(prompt=prompt), AT)["personality"]
    assert (p["greeting_message"], p["farewell_message"]) == ("first", "bye one")
    assert p["base_prompt"] == "Greeting: second\nFarewell: bye two"


@pytest.mark.parametrize(
    ("language", "greeting", "farewell"),
    [
        (
            "es-MX",
            "¡Hola! Gracias por llamar a Spa Relax 🌿. ¿En qué puedo ayudarte?",
            "Gracias por llamar. ¡Que tengas un excelente día!",
        ),
        (
            "es_mx",
            "¡Hola! Gracias por llamar a Spa Relax 🌿. ¿En qué puedo ayudarte?",
            "Gracias por llamar. ¡Que tengas un excelente día!",
        ),
        (
            "en-US",
            "Hello! Thank you for calling Spa Relax 🌿. How can I help you?",
            "Thank you for calling. Have a great day!",
        ),
        (
            "pt-BR",
            "Olá! Obrigado por ligar para Spa Relax 🌿. Como posso ajudar?",
            "Obrigado por ligar. Tenha um ótimo dia!",
        ),
        (
            "fr",
            "Bonjour ! Merci d'avoir appelé Spa Relax 🌿. Comment puis-je vous aider ?",
            "Merci de votre appel. Bonne journée !",
        ),
        # a language without its own default speaks English
        (
            "de-DE",
            "Hello! Thank you for calling Spa Relax 🌿. How can I help you?",
            "Thank you for calling. Have a great day!",
        ),
    ],
)
def test_default_greeting_and_farewell_speak_the_configs_language_and_name_the_agent(
    language: str, greeting: str, farewell: str
) -> None:
    out = to_v2(v1(name="  Spa Relax 🌿 ", prompt="Be kind.", language=language), AT)
    assert out["personality"]["greeting_message"] == greeting
    assert out["personality"]["farewell_message"] == farewell


def test_an_empty_greeting_line_falls_back_to_the_default_and_is_not_left_in_the_prompt() -> None:
    out = to_v2(v1(name="Acme", prompt="Greeting:\nBe kind.\nFarewell:   "), AT)
    p = out["personality"]
    assert p["greeting_message"] == "Hello! Thank you for calling Acme. How can I help you?"
    assert p["farewell_message"] == "Thank you for calling. Have a great day!"
    assert p["base_prompt"] == "Be kind."


# --- capabilities ---------------------------------------------------------------------


def test_capabilities_from_english_keywords_in_the_documented_order() -> None:
    prompt = (
        "Run a short survey at the end. Qualify leads. Send an SMS confirmation. "
        "Take payments. Send reminders. Take orders. Answer questions. "
        "Transfer to a human agent. Book appointments."
    )
    assert to_v2(v1(prompt=prompt), AT)["capabilities"] == list(CAPABILITIES)


def test_capabilities_from_spanish_keywords() -> None:
    prompt = (
        "Agenda citas, transfiere a un agente humano, responde preguntas frecuentes, "
        "toma pedidos, envía recordatorios, cobra los pagos, manda mensajes, califica "
        "prospectos y haz encuestas de satisfacción."
    )
    assert to_v2(v1(prompt=prompt, language="es-MX"), AT)["capabilities"] == list(CAPABILITIES)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Schedule a cleaning for the caller.", ["appointment_booking"]),
        ("Reserva una mesa para la cena.", ["appointment_booking"]),
        ("Si lo piden, pasa con un agente humano.", ["call_transfer"]),
        ("Envía un recordatorio por WhatsApp.", ["reminders", "messaging"]),
        ("Manda la FACTURA al cliente.", ["payments"]),
        ("Be friendly and concise.", []),
    ],
)
def test_each_capability_is_found_by_its_keywords(prompt: str, expected: list[str]) -> None:
    assert to_v2(v1(prompt=prompt), AT)["capabilities"] == expected


# --- assistant type -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("You are the receptionist. Answer incoming calls.", "inbound"),
        ("Eres la recepcionista virtual. Atiende las llamadas.", "inbound"),
        ("You make outbound calls to remind customers.", "outbound"),
        ("Llamarás a los clientes para dar seguimiento a su pedido.", "outbound"),
        ("Run the spring campaign: cold call every lead.", "outbound"),
        ("You make outbound follow-up calls and also answer incoming questions.", "hybrid"),
        ("Atiende llamadas entrantes y da seguimiento a la campaña.", "hybrid"),
        # v1 agents answered calls: no cue at all means inbound
        ("Be friendly and concise.", "inbound"),
    ],
)
def test_assistant_type_inbound_outbound_or_hybrid(prompt: str, expected: str) -> None:
    assert to_v2(v1(prompt=prompt), AT)["assistant_type"] == expected


# --- awkward prompts --------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [None, "", "   \n\n  "])
def test_null_and_empty_prompts_give_a_complete_valid_v2_config(prompt: str | None) -> None:
    out = to_v2(v1(name="Hotel Mar Azul", prompt=prompt, language="es"), AT)
    assert out["personality"] == {
        "base_prompt": "",
        "special_instructions": [],
        "greeting_message": "¡Hola! Gracias por llamar a Hotel Mar Azul. ¿En qué puedo ayudarte?",
        "farewell_message": "Gracias por llamar. ¡Que tengas un excelente día!",
    }
    assert out["capabilities"] == []
    assert out["assistant_type"] == "inbound"
    assert check_v2(out) == []


def test_unicode_survives_exactly() -> None:
    prompt = "\n".join(
        [
            "Café 東京 Sakura ☕: sé amable 🙏",
            "- Pregunta por alergias (ñ, ü, é)",
            "Saludo: こんにちは!",
        ]
    )
    out = to_v2(v1(name="Café 東京", prompt=prompt), AT)
    p = out["personality"]
    assert p["base_prompt"] == "Café 東京 Sakura ☕: sé amable 🙏"
    assert p["special_instructions"] == ["Pregunta por alergias (ñ, ü, é)"]
    assert p["greeting_message"] == "こんにちは!"
    # and it round-trips through the JSON the migration stores
    assert orjson.loads(orjson.dumps(out)) == out


def test_a_50_kb_prompt_is_kept_whole() -> None:
    menu = "Detalle del menú: tacos al pastor 🌮. " * 1400
    assert len(menu.encode()) > 50_000
    prompt = f"Eres la recepcionista de El Güero.\n- Toma pedidos.\n{menu}"
    out = to_v2(v1(prompt=prompt, language="es-MX"), AT)
    p = out["personality"]
    assert p["base_prompt"] == f"Eres la recepcionista de El Güero.\n{menu}".strip()
    assert p["special_instructions"] == ["Toma pedidos."]
    assert out["capabilities"] == ["order_taking"]
    assert check_v2(out) == []


# --- voice_config: language and voice --------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("es_MX", "es-MX"),
        ("EN-us", "en-US"),
        ("es-mx", "es-MX"),
        (" pt_br ", "pt-BR"),
        ("ES", "es"),
        ("es-419", "es-419"),
        ("en-US", "en-US"),
        ("klingon!!", None),
        ("english", None),
        ("es-MX-x", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_language(raw: str | None, expected: str | None) -> None:
    assert normalize_language(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("es_MX", "es-MX"), ("EN-us", "en-US"), ("klingon!!", "en"), (None, "en"), ("", "en")],
)
def test_voice_config_language_is_normalised_and_garbage_becomes_english(
    raw: str | None, expected: str
) -> None:
    assert to_v2(v1(language=raw), AT)["voice_config"]["language"] == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, "default"), ("", "default"), ("nova", "nova")]
)
def test_a_missing_voice_is_default(raw: str | None, expected: str) -> None:
    assert to_v2(v1(voice_id=raw), AT)["voice_config"] == {
        "voice_id": expected,
        "language": "en-US",
    }


# --- the shape of the output ----------------------------------------------------------


def test_output_is_exactly_the_v2_fields_with_migration_metadata() -> None:
    row = v1(prompt="Answer incoming calls.\n- Book appointments.")
    before = copy.deepcopy(row)
    out = to_v2(row, AT)
    assert set(out) == set(V2_FIELDS)  # the v1 columns are not rewritten
    assert (out["schema_version"], out["migrated_at"], out["migrated_from"]) == ("v2", AT, "v1")
    assert row == before  # the input row is not modified
    assert to_v2(row, AT) == out  # deterministic


def test_only_the_v1_fields_it_documents_are_read_and_none_is_required() -> None:
    full = v1(prompt="Outbound campaign.\nSaludo: Hola")
    reduced = {k: full[k] for k in V1_FIELDS}
    assert to_v2(reduced, AT) == to_v2(full, AT)
    bare = to_v2({}, AT)
    assert check_v2(bare) == []
    assert bare["voice_config"] == {"voice_id": "default", "language": "en"}
    assert bare["personality"]["greeting_message"] == (
        "Hello! Thank you for calling. How can I help you?"
    )


# --- a plugged-in transform ----------------------------------------------------------------


def test_check_v2_accepts_the_built_in_output() -> None:
    assert check_v2(to_v2(v1(), AT)) == []


def test_check_v2_names_every_missing_field() -> None:
    assert check_v2({"assistant_type": "inbound"}) == [
        (f, "the transform must return it") for f in V2_FIELDS if f != "assistant_type"
    ]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"assistant_type": "robot"}, "assistant_type", "inbound, outbound, hybrid"),
        ({"voice_config": {"voice_id": "nova"}}, "voice_config", "voice_id and language"),
        ({"voice_config": "nova/en"}, "voice_config", "voice_id and language"),
        ({"personality": {"greeting_message": "hi"}}, "personality", "base_prompt"),
        ({"personality": {"base_prompt": None}}, "personality", "base_prompt"),
        ({"capabilities": "faq"}, "capabilities", "list of non-empty strings"),
        ({"capabilities": ["faq", ""]}, "capabilities", "list of non-empty strings"),
        ({"schema_version": "v3"}, "schema_version", '"v2"'),
    ],
)
def test_check_v2_names_the_bad_field_and_the_fix(
    change: dict[str, Any], field: str, words: str
) -> None:
    out = {**to_v2(v1(), AT), **change}
    problems = check_v2(out)
    assert [f for f, _ in problems] == [field]
    assert words in problems[0][1]


def test_load_transform_defaults_to_the_built_in() -> None:
    assert load_transform(None) is to_v2
    assert load_transform("") is to_v2


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("nodots", "package.module:function"),
        ("json:no_such_function", "cannot be imported"),
        ("no_such_module_7f3a.transform", "cannot be imported"),
        ("json.__doc__", "is not a function"),
    ],
)
def test_load_transform_errors_name_the_transform_field(path: str, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        load_transform(path)
    assert err.value.field == "transform"
    assert words in err.value.message
    assert repr(path) in err.value.message


def test_load_transform_imports_a_teams_own_function_in_both_spellings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"team_transform_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from switchover.core.transform import to_v2\n"
        "def shout(row, migrated_at):\n"
        "    out = to_v2(row, migrated_at)\n"
        "    out['capabilities'] = ['faq', 'shouting']\n"
        "    return out\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        for path in (f"{module}:shout", f"{module}.shout"):
            fn = load_transform(path)
            out = fn(v1(), AT)
            assert out["capabilities"] == ["faq", "shouting"]
            assert check_v2(out) == []
    finally:
        sys.modules.pop(module, None)

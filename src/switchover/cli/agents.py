"""CLI: the agent registry (agents, keys, campaigns, phone numbers) and what workers read."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from switchover.cli import render
from switchover.cli.common import By, Json, app_of, esc, handled, who
from switchover.core.agents import AGENT_FIELDS, KEY_KINDS, masked
from switchover.errors import NotFoundError, ValidationError

agents_app = typer.Typer(
    help="Agents, their keys, campaigns and phone numbers: what one core worker serves (seed 000).",
    no_args_is_help=True,
)
campaign_app = typer.Typer(help="Campaigns: groups of agents, one primary.", no_args_is_help=True)
number_app = typer.Typer(help="Phone numbers and their inbound campaign.", no_args_is_help=True)
key_app = typer.Typer(
    help="An agent's provider keys (encrypted with $SWITCHOVER_SECRET_KEY).", no_args_is_help=True
)
agents_app.add_typer(campaign_app, name="campaign")
agents_app.add_typer(number_app, name="number")
agents_app.add_typer(key_app, name="key")

AgentId = Annotated[str, typer.Argument(help="The agent's id.", show_default=False)]
Reveal = Annotated[
    bool,
    typer.Option("--reveal-keys", help="Print key values instead of <set> (they are secrets)."),
]


def _agents(ctx: typer.Context) -> Any:
    return app_of(ctx, migrate=True).agents


def _agent_out(view: Any, as_json: bool, title: str | None = None) -> None:
    data = view.to_dict()
    if as_json:
        render.emit_json(data)
        return
    table = Table(title=esc(title or f"agent {data['id']}"), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in data.items():
        table.add_row(esc(k), "-" if v in (None, [], "") else esc(v))
    render.console.print(table)


# --- import and listing --------------------------------------------------------------------


@agents_app.command("import")
@handled
def agents_import(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="A JSON file (docs/worker.md, examples/agents.json).")
    ],
    by: By = None,
    as_json: Json = False,
) -> None:
    """Create or replace agents, campaigns and phone numbers from one file, all or nothing."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file", field="file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"{path}: cannot be read ({type(exc).__name__})", field="file"
        ) from None
    except ValueError as exc:
        raise ValidationError(f"{path}: not valid JSON ({exc})", field="file") from None
    # {"env": "VAR"} key references are read here, from the operator's environment
    result = _agents(ctx).import_data(data, actor=who(by), env=os.environ)
    if as_json:
        render.emit_json(result.to_dict())
        return
    parts = [
        f"{kind}: {result.created[kind]} created, {result.updated[kind]} updated"
        for kind in ("agents", "campaigns", "phone_numbers")
    ]
    render.console.print(
        esc(f"imported {path}: " + "; ".join(parts) + f"; {result.keys_set} keys set")
    )


@agents_app.command("export")
@handled
def agents_export(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A new JSON file to write the backup to.")],
    by: By = None,
    as_json: Json = False,
) -> None:
    """Back up every agent, campaign and phone number to FILE, keys as their encrypted
    tokens (seed 000's "backup database"); `agents import FILE` restores it exactly."""
    if path.exists():
        raise ValidationError(f"{path} exists: give a new file name", field="file")
    data = _agents(ctx).export_data(actor=who(by))
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            f"{path}: cannot be written ({type(exc).__name__})", field="file"
        ) from None
    counts = {k: len(v) for k, v in data.items()}
    keys = sum(len(a.get("keys", {})) for a in data["agents"])
    if as_json:
        render.emit_json({"file": str(path), **counts, "keys": keys})
        return
    render.console.print(
        esc(
            f"exported {counts['agents']} agents ({keys} keys, encrypted), "
            f"{counts['campaigns']} campaigns, {counts['phone_numbers']} phone numbers to {path}"
        )
    )


@agents_app.command("list")
@handled
def agents_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List agents (which keys are set, never their values)."""
    views = _agents(ctx).list()
    if as_json:
        render.emit_json([v.to_dict() for v in views])
        return
    table = Table(title="agents")
    table.add_column("id", no_wrap=True, overflow="fold", min_width=25)  # ids are copied whole
    for col in ("name", "active", "llm", "tts / stt", "keys set", "updated"):
        table.add_column(col)
    for v in views:
        a = v.agent
        table.add_row(
            esc(a.id),
            esc(a.name),
            "yes" if a.is_active else "[red]no[/red]",
            esc(f"{a.llm_provider or 'openai'} {a.llm_model or 'gpt-4o-mini'}"),
            esc(f"{a.tts_provider or 'cartesia'} / {a.stt_provider or 'assemblyai'}"),
            esc(", ".join(k.replace("_api", "").replace("_key", "") for k in v.keys_set) or "-"),
            esc(f"{a.updated_at:%Y-%m-%d %H:%M} by {a.updated_by}") if a.updated_at else "-",
        )
    render.console.print(table)


@agents_app.command("show")
@handled
def agents_show(
    ctx: typer.Context, agent_id: AgentId, reveal: Reveal = False, as_json: Json = False
) -> None:
    """One agent, with which keys are set (values only with --reveal-keys)."""
    service = _agents(ctx)
    view = service.get(agent_id)
    if reveal:
        data = {**view.to_dict(), "keys": service.revealed_keys(agent_id, actor=who(None))}
        if as_json:
            render.emit_json(data)
        else:
            _agent_out(view, False)
            for kind, value in data["keys"].items():
                print(f"{kind}={value}")
        return
    _agent_out(view, as_json)


# --- changing agents -----------------------------------------------------------------------


def _opt(help_text: str) -> Any:
    return typer.Option(help=help_text, show_default=False)


@agents_app.command("set")
@handled
def agents_set(
    ctx: typer.Context,
    agent_id: AgentId,
    name: Annotated[str | None, _opt("A label for people (required for a new agent).")] = None,
    system_prompt: Annotated[str | None, _opt("The system prompt.")] = None,
    personality: Annotated[str | None, _opt("A personality note.")] = None,
    voice_id: Annotated[str | None, _opt("The TTS voice.")] = None,
    llm_provider: Annotated[str | None, _opt("openai, anthropic, google, groq, mistral.")] = None,
    llm_model: Annotated[str | None, _opt("e.g. gpt-4o-mini.")] = None,
    temperature: Annotated[float | None, _opt("0 to 2.")] = None,
    max_concurrent_calls: Annotated[int | None, _opt("Calls this agent takes at once.")] = None,
    livekit_agent_name: Annotated[
        str | None, _opt("Its per-agent deployment's LiveKit agent name (legacy side).")
    ] = None,
    tts_provider: Annotated[
        str | None, _opt("cartesia, elevenlabs, openai, deepgram, rime.")
    ] = None,
    stt_provider: Annotated[str | None, _opt("assemblyai, deepgram, openai, cartesia.")] = None,
    livekit_url: Annotated[str | None, _opt("wss://… when not the worker's LIVEKIT_URL.")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Take calls or not.")
    ] = None,
    by: By = None,
    as_json: Json = False,
) -> None:
    """Create an agent, or change the fields given (the others stay). Keys: 'agents key set'."""
    service = _agents(ctx)
    given = {
        "name": name,
        "system_prompt": system_prompt,
        "personality": personality,
        "voice_id": voice_id,
        "llm_provider": llm_provider,
        "llm_model": llm_model,
        "temperature": temperature,
        "max_concurrent_calls": max_concurrent_calls,
        "livekit_agent_name": livekit_agent_name,
        "tts_provider": tts_provider,
        "stt_provider": stt_provider,
        "livekit_url": livekit_url,
        "is_active": active,
    }
    try:
        current = service.get(agent_id).agent
        data = {f: getattr(current, f) for f in AGENT_FIELDS}
    except NotFoundError:
        data = {"id": agent_id}
    data.update({k: v for k, v in given.items() if v is not None})
    data["id"] = agent_id
    _agent_out(service.put(data, actor=who(by)), as_json)


def _activation(active: bool) -> Any:
    def command(
        ctx: typer.Context, agent_id: AgentId, by: By = None, as_json: Json = False
    ) -> None:
        _agent_out(_agents(ctx).set_active(agent_id, active, actor=who(by)), as_json)

    command.__doc__ = (
        "Let the agent take calls again."
        if active
        else "Stop the agent taking calls: its runtime config answers 400."
    )
    return handled(command)


agents_app.command("activate")(_activation(True))
agents_app.command("deactivate")(_activation(False))


@agents_app.command("delete")
@handled
def agents_delete(ctx: typer.Context, agent_id: AgentId, as_json: Json = False) -> None:
    """Delete an agent and its keys (refused while a campaign lists it)."""
    _agents(ctx).delete(agent_id, actor=who(None))
    if as_json:
        render.emit_json({"deleted": agent_id})
    else:
        render.console.print(esc(f"agent {agent_id!r} deleted"))


@agents_app.command("keygen")
@handled
def agents_keygen(as_json: Json = False) -> None:
    """Print a new Fernet key for SWITCHOVER_SECRET_KEY (keep it secret, keep it safe)."""
    from switchover.agents.keyring import generate_key

    key = generate_key()
    if as_json:
        render.emit_json({"SWITCHOVER_SECRET_KEY": key})
    else:
        print(key)


KindArg = Annotated[
    str, typer.Argument(help=f"One of: {', '.join(KEY_KINDS)}.", show_default=False)
]


@key_app.command("set")
@handled
def key_set(
    ctx: typer.Context,
    agent_id: AgentId,
    kind: KindArg,
    from_env: Annotated[
        str | None,
        typer.Option(
            "--from-env",
            help="Read the value from this environment variable (default: one line of stdin).",
            show_default=False,
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Store one key for an agent, encrypted. The value never goes on the command line."""
    if from_env is not None:
        value = os.environ.get(from_env, "")
        if not value:
            raise ValidationError(f"environment variable {from_env!r} is not set", field="from-env")
    else:
        value = sys.stdin.readline().strip()
        if not value:
            raise ValidationError(
                "no value on stdin: pipe the key in, or use --from-env VAR", field="value"
            )
    _agent_out(_agents(ctx).set_key(agent_id, kind, value, actor=who(None)), as_json)


@key_app.command("clear")
@handled
def key_clear(ctx: typer.Context, agent_id: AgentId, kind: KindArg, as_json: Json = False) -> None:
    """Remove one key: the worker then uses its environment's."""
    _agent_out(_agents(ctx).set_key(agent_id, kind, None, actor=who(None)), as_json)


# --- what workers read ---------------------------------------------------------------------


@agents_app.command("runtime-config")
@handled
def agents_runtime_config(
    ctx: typer.Context,
    agent_id: AgentId,
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="The call's campaign id.", show_default=False)
    ] = None,
    reveal: Reveal = False,
    as_json: Json = False,
) -> None:
    """What GET /api/v1/agents/ID/runtime-config answers (keys masked unless revealed)."""
    answer = _agents(ctx).runtime_config(agent_id, campaign, reader="cli")
    if not reveal:
        answer = {**answer, "config": masked(answer["config"])}
    if as_json:
        render.emit_json(answer)
        return
    table = Table(
        title=esc(f"runtime config of {agent_id} (cached until {answer['cached_until']})")
    )
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in answer["config"].items():
        table.add_row(esc(k), "null" if v is None else esc(v))
    render.console.print(table)


@agents_app.command("route")
@handled
def agents_route(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The dialled number, e.g. +14155550100.")],
    as_json: Json = False,
) -> None:
    """Which campaign and agent take an inbound call to NUMBER (or why none does)."""
    call = _agents(ctx).route_inbound(number)
    if as_json:
        render.emit_json(call.to_dict())
    else:
        render.console.print(
            esc(f"{call.phone_number} -> campaign {call.campaign_id} -> agent {call.agent_id}")
        )


# --- campaigns and numbers -----------------------------------------------------------------


@campaign_app.command("set")
@handled
def campaign_set(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument(help="The campaign's id.")],
    agents: Annotated[
        str, typer.Option("--agents", help="Comma-separated agent ids, in order.")
    ] = "",
    primary: Annotated[
        str | None,
        typer.Option("--primary", help="The agent that takes inbound calls.", show_default=False),
    ] = None,
    name: Annotated[str | None, _opt("A label for people.")] = None,
    by: By = None,
    as_json: Json = False,
) -> None:
    """Create or replace a campaign and its agents."""
    ids = [a.strip() for a in agents.split(",") if a.strip()]
    c = _agents(ctx).put_campaign(campaign_id, name, ids, primary, actor=who(by))
    if as_json:
        render.emit_json(c.to_dict())
    else:
        members = ", ".join(a.agent_id + (" (primary)" if a.is_primary else "") for a in c.agents)
        render.console.print(esc(f"campaign {c.id} ({c.name}): {members or 'no agents'}"))


@campaign_app.command("list")
@handled
def campaign_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List campaigns and their agents."""
    items = _agents(ctx).campaigns()
    if as_json:
        render.emit_json([c.to_dict() for c in items])
        return
    table = Table(title="campaigns")
    for col in ("id", "name", "agents"):
        table.add_column(col)
    for c in items:
        members = ", ".join(a.agent_id + (" (primary)" if a.is_primary else "") for a in c.agents)
        table.add_row(esc(c.id), esc(c.name), esc(members or "-"))
    render.console.print(table)


@campaign_app.command("delete")
@handled
def campaign_delete(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument(help="The campaign's id.")],
    as_json: Json = False,
) -> None:
    """Delete a campaign; its phone numbers keep no inbound campaign."""
    _agents(ctx).delete_campaign(campaign_id, actor=who(None))
    if as_json:
        render.emit_json({"deleted": campaign_id})
    else:
        render.console.print(esc(f"campaign {campaign_id!r} deleted"))


@number_app.command("set")
@handled
def number_set(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="E.164, e.g. +14155550100.")],
    campaign: Annotated[
        str | None,
        typer.Option("--campaign", help="The campaign that takes its inbound calls."),
    ] = None,
    label: Annotated[str, typer.Option("--label", help="A label for people.")] = "",
    as_json: Json = False,
) -> None:
    """Register a phone number and its inbound campaign."""
    n = _agents(ctx).put_number(number, campaign, label, actor=who(None))
    if as_json:
        render.emit_json(n.to_dict())
    else:
        render.console.print(esc(f"{n.number} -> campaign {n.campaign_id or '-'}"))


@number_app.command("list")
@handled
def number_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List phone numbers and their inbound campaigns."""
    items = _agents(ctx).numbers()
    if as_json:
        render.emit_json([n.to_dict() for n in items])
        return
    table = Table(title="phone numbers")
    for col in ("number", "inbound campaign", "label"):
        table.add_column(col)
    for n in items:
        table.add_row(esc(n.number), esc(n.campaign_id or "-"), esc(n.label or "-"))
    render.console.print(table)


@number_app.command("delete")
@handled
def number_delete(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The number.")],
    as_json: Json = False,
) -> None:
    """Forget a phone number."""
    _agents(ctx).delete_number(number, actor=who(None))
    if as_json:
        render.emit_json({"deleted": number})
    else:
        render.console.print(esc(f"{number} deleted"))

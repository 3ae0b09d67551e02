"""CLI: ``switchover proxy``, a reverse proxy that cuts a webhook service over by migration.

Options and ``--config FILE`` (YAML: the same names, plus ``routes``) are merged, the
options winning; see docs/proxy.md.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from switchover.cli.common import Json, esc, handled, state_of

_YAML_PATHS = {
    "signature_header": "signature.header",
    "signature_secret_env": "signature.secret_env",
    "connect_timeout": "timeouts.connect",
    "candidate_timeout": "timeouts.candidate",
    "legacy_timeout": "timeouts.legacy",
    "max_body_bytes": "limits.max_body_bytes",
    "max_concurrency": "limits.max_concurrency",
    "drain_delay": "drain.delay",
    "drain_timeout": "drain.timeout",
}
"""Fields whose option is flat and whose place in the YAML file is nested."""


def _opt(help_text: str, *names: str, **kw: Any) -> Any:
    return typer.Option(*names, help=help_text, show_default=False, **kw)


@handled
def proxy(
    ctx: typer.Context,
    migration: Annotated[
        str | None, _opt("The migration that splits the traffic.", "--migration")
    ] = None,
    legacy: Annotated[
        str | None, _opt("Legacy's base URL, e.g. http://127.0.0.1:3000.", "--legacy")
    ] = None,
    candidate: Annotated[
        str | None, _opt("Candidate's base URL, e.g. http://127.0.0.1:8000.", "--candidate")
    ] = None,
    key: Annotated[
        str | None,
        _opt(
            "Where the stickiness key is: json:FIELD[.FIELD], header:NAME, query:NAME or "
            "path:INDEX (0 is the first path segment).",
            "--key",
        ),
    ] = None,
    tenant: Annotated[
        str | None,
        _opt("Where the tenant is (same forms as --key), for tenant overrides.", "--tenant"),
    ] = None,
    feature: Annotated[
        str | None,
        _opt(
            "Decide by this feature of the migration (default: the migration alone).", "--feature"
        ),
    ] = None,
    operation: Annotated[
        str | None,
        _opt("Operation name the requests are recorded under (default: webhook).", "--operation"),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8090,
    signature_secret_env: Annotated[
        str | None,
        _opt(
            "Check an HMAC-SHA256 signature of each body with the secret in this environment "
            "variable (e.g. WEBHOOK_SECRET); a bad or missing one is refused with 401.",
            "--signature-secret-env",
        ),
    ] = None,
    signature_header: Annotated[
        str | None,
        _opt(
            "Header holding the signature: the hex digest, with or without sha256= "
            "(default X-Signature).",
            "--signature-header",
        ),
    ] = None,
    repeat_safe: Annotated[
        bool | None,
        _opt(
            "Every request may be repeated on legacy after the candidate failed (connect error, "
            "timeout, 5xx). Default: only GET, HEAD and OPTIONS; routes can say so in --config.",
            "--repeat-safe/--no-repeat-safe",
        ),
    ] = None,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="Shadow mode: legacy answers every request; the candidate gets a "
            "copy and its answer is compared (status and JSON body).",
        ),
    ] = False,
    shadow_sample: Annotated[
        float | None,
        _opt(
            "Fraction of requests copied to the candidate in shadow mode (default 1).",
            "--shadow-sample",
        ),
    ] = None,
    outcome_header: Annotated[
        str | None,
        _opt(
            "Response header with outcome counters, e.g. 'booked=1' (default "
            "X-Switchover-Outcome); removed before the answer reaches the caller.",
            "--outcome-header",
        ),
    ] = None,
    candidate_timeout: Annotated[
        float | None,
        _opt("Seconds the candidate has to answer (default 10).", "--candidate-timeout"),
    ] = None,
    legacy_timeout: Annotated[
        float | None, _opt("Seconds legacy has to answer (default 30).", "--legacy-timeout")
    ] = None,
    max_body_bytes: Annotated[
        int | None,
        _opt(
            "Largest request body accepted; larger ones get 413 (default 1048576).",
            "--max-body-bytes",
        ),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        _opt("Requests forwarded at once; more get 503 (default 256).", "--max-concurrency"),
    ] = None,
    drain_delay: Annotated[
        float | None,
        _opt(
            "Seconds after SIGTERM with readiness 503 before the listener closes (default 0).",
            "--drain-delay",
        ),
    ] = None,
    drain_timeout: Annotated[
        float | None,
        _opt(
            "Seconds requests in flight have to finish after SIGTERM (default 30).",
            "--drain-timeout",
        ),
    ] = None,
    config: Annotated[
        str | None,
        _opt("YAML file with these settings and a list of routes (see docs/proxy.md).", "--config"),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Check the configuration, print it, and exit without serving."
        ),
    ] = False,
    flush_interval: Annotated[
        float,
        typer.Option(
            "--flush-interval", min=0.1, help="Seconds between writes of the recorded calls."
        ),
    ] = 5.0,
    progress_interval: Annotated[
        float,
        typer.Option(
            "--progress-interval", min=0, help="Seconds between progress log lines (0: none)."
        ),
    ] = 30.0,
    as_json: Json = False,
) -> None:
    """Reverse proxy for a webhook service: split its traffic by the migration, check
    signatures, fall back to legacy, shadow, and record every request."""
    from switchover.proxy.config import load_yaml, parse

    options: dict[str, Any] = {
        "migration": migration,
        "legacy": legacy,
        "candidate": candidate,
        "key": key,
        "tenant": tenant,
        "feature": feature,
        "operation": operation,
        "signature_secret_env": signature_secret_env,
        "signature_header": signature_header,
        "repeat_safe": repeat_safe,
        "mode": "shadow" if shadow else None,
        "shadow_sample": shadow_sample,
        "outcome_header": outcome_header,
        "candidate_timeout": candidate_timeout,
        "legacy_timeout": legacy_timeout,
        "max_body_bytes": max_body_bytes,
        "max_concurrency": max_concurrency,
        "drain_delay": drain_delay,
        "drain_timeout": drain_timeout,
    }
    given = {k for k, v in options.items() if v is not None}
    data = load_yaml(config) if config else {}
    for name in given:
        path = _YAML_PATHS.get(name)
        if path is None or name.startswith("signature_"):
            data[name] = options[name]
        else:
            section, _, leaf = path.partition(".")
            nested = data.get(section)
            data[section] = {**(nested if isinstance(nested, dict) else {}), leaf: options[name]}

    def label(field: str) -> str:
        if field in given or not config:
            top = field.split(".")[0].split("[")[0]
            return "--" + ("shadow" if top == "mode" else top).replace("_", "-")
        return f"{config}: {_YAML_PATHS.get(field, field)}"

    cfg = parse(data, label=label)
    if check:
        _print_config(cfg.describe(), as_json)
        return
    _run(ctx, cfg, host, port, flush_interval, progress_interval, as_json)


def _print_config(described: dict[str, Any], as_json: bool) -> None:
    from switchover.cli import render

    if as_json:
        render.emit_json({"ok": True, "config": described})
        return
    render.console.print(
        f"proxy for [bold]{esc(described['migration'])}[/bold]: legacy {esc(described['legacy'])}"
        f", candidate {esc(described['candidate'])}"
    )
    sig = described["signature"]
    if sig:
        render.console.print(
            f"  signature: {esc(sig['header'])}, HMAC-{sig['algorithm'].upper()} "
            f"({sig['encoding']}) with the secret in ${esc(sig['secret_env'])}"
        )
    safe = ", ".join(described["safe_methods"])
    for r in described["routes"]:
        repeat = {True: "all", False: "none"}.get(r["repeat_safe"], safe)
        methods = ",".join(r["methods"]) if r["methods"] else "any method"
        render.console.print(
            f"  route {esc(r['path'])} ({methods}) -> operation {esc(r['operation'])}, "
            f"key {esc(r['key'])}, {r['mode']}, safe to repeat: {repeat}"
        )


def _run(
    ctx: typer.Context,
    cfg: Any,
    host: str,
    port: int,
    flush_interval: float,
    progress_interval: float,
    as_json: bool,
) -> None:
    import json
    import sys

    from switchover.errors import NotFoundError
    from switchover.proxy.app import ProxyApp
    from switchover.proxy.server import configure_logging, serve
    from switchover.sdk.client import connect
    from switchover.store.engine import redact_url

    configure_logging()  # the client's first lines are JSON too
    url = state_of(ctx).settings().database_url
    client = connect(url, flush_interval=flush_interval)
    try:
        if client.health()["loaded"] and client.compiled(cfg.migration) is None:
            raise NotFoundError(
                f"`migration` {cfg.migration!r} is not in the store at {redact_url(url)}; "
                "create it with switchover migration create",
                field="migration",
            )
        app = ProxyApp(cfg, client, progress_interval=progress_interval)
        started = {
            "event": "listening",
            "url": f"http://{host}:{port}",
            "store": redact_url(url),
            "migration": cfg.migration,
            "ready": f"http://{host}:{port}/_switchover/readyz",
        }
        if as_json:
            print(json.dumps(started), flush=True)
        else:
            print(
                f"switchover proxy for {cfg.migration} on http://{host}:{port} "
                f"(legacy {cfg.legacy}, candidate {cfg.candidate}); store {redact_url(url)}",
                file=sys.stderr,
                flush=True,
            )
        serve(app, host, port)
    finally:
        client.close()

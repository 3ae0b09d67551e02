"""``switchover proxy`` as a user runs it: its configuration errors, and a real process
that drains on SIGTERM."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_servers import NAME, SECRET, fresh_store, upstreams, wait_for
from typer.testing import CliRunner

from support.serving import clean_env, free_port
from switchover.bootstrap import bootstrap
from switchover.cli.main import app as cli
from switchover.settings import Settings


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env or {})


def said(res: Any) -> str:
    """stderr with Rich's line wrapping undone."""
    return " ".join(res.stderr.split())


BASE = (
    "proxy",
    "--migration",
    NAME,
    "--legacy",
    "http://127.0.0.1:3000",
    "--candidate",
    "http://127.0.0.1:8000",
)


def test_check_prints_the_configuration_without_the_secret() -> None:
    res = run(
        *BASE,
        "--key",
        "json:contact_id",
        "--signature-secret-env",
        "WEBHOOK_SECRET",
        "--check",
        "--json",
        env={"WEBHOOK_SECRET": SECRET},
    )
    assert res.exit_code == 0, res.output
    described = json.loads(res.stdout)["config"]
    assert described["routes"][0]["key"] == "json:contact_id"
    assert described["signature"]["header"] == "X-Signature"
    assert described["signature"]["secret_env"] == "WEBHOOK_SECRET"
    assert SECRET not in res.output


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("--check",), {}, "--key"),
        (("--key", "jsn:contact_id", "--check"), {}, "--key"),
        (("--key", "path:first", "--check"), {}, "--key"),
        (
            ("--key", "json:id", "--signature-secret-env", "WEBHOOK_SECRET", "--check"),
            {},
            "--signature-secret-env",
        ),
        (("--key", "json:id", "--max-body-bytes", "0", "--check"), {}, "--max-body-bytes"),
        (("--key", "json:id", "--candidate-timeout", "-1", "--check"), {}, "--candidate-timeout"),
        (
            (
                "--key",
                "json:id",
                "--signature-header",
                "X Sig",
                "--signature-secret-env",
                "S",
                "--check",
            ),
            {"S": "x"},
            "--signature-header",
        ),
    ],
)
def test_a_bad_option_is_refused_naming_it(
    args: tuple[str, ...], env: dict[str, str], named: str
) -> None:
    res = run(*BASE, *args, env=env)
    assert res.exit_code == 2, res.output
    assert named in said(res)
    assert "Traceback" not in res.output


def test_a_bad_url_names_the_option() -> None:
    res = run(
        "proxy",
        "--migration",
        NAME,
        "--legacy",
        "ftp://x",
        "--candidate",
        "http://127.0.0.1:1",
        "--key",
        "json:id",
        "--check",
    )
    assert res.exit_code == 2
    assert "--legacy" in said(res) and "http(s)://" in said(res)


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("routes:\n  - {path: /hooks}\n", "routes[0].key"),
        ("routes:\n  - {path: hooks, key: json:id}\n", "routes[0].path"),
        ("routes:\n  - {path: /h, key: json:id, mode: mirror}\n", "routes[0].mode"),
        ("routes:\n  - {path: /h, key: json:id, methods: [FETCH]}\n", "routes[0].methods"),
        ("key: json:id\nlimits: {max_body: 10}\n", "limits"),
        ("key: json:id\nsignature: {secret_env: S, algorithm: md5}\n", "signature.algorithm"),
        ("key: json:id\ntimeouts: {candidate: fast}\n", "timeouts.candidate"),
        ("key: [json\n", "not valid YAML"),
    ],
)
def test_a_bad_config_file_is_refused_naming_the_file_and_field(
    tmp_path: Path, yaml_text: str, named: str
) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml_text)
    res = run(*BASE, "--config", str(path), "--check", env={"S": "x"})
    assert res.exit_code == 2, res.output
    # Rich breaks a long path wherever the line ends (the width differs between a
    # terminal and a test worker): compare with every space and line break taken out
    tight = "".join(res.stderr.split())
    assert named.replace(" ", "") in tight
    assert "proxy.yaml:" in tight or "proxy.yamlis" in tight


def test_options_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "migration: other\nlegacy: http://127.0.0.1:1\ncandidate: http://127.0.0.1:2\n"
        "key: header:X-Contact\nlimits: {max_concurrency: 5}\n"
        "routes:\n  - {path: /hooks/ghl, methods: [POST], key: json:contact_id, "
        "repeat_safe: true, operation: inbound}\n"
    )
    res = run(*BASE, "--config", str(path), "--max-concurrency", "7", "--check", "--json")
    assert res.exit_code == 0, res.output
    described = json.loads(res.stdout)["config"]
    assert described["migration"] == NAME
    assert described["limits"]["max_concurrency"] == 7
    assert [r["operation"] for r in described["routes"]] == ["inbound", "webhook"]
    assert described["routes"][0]["repeat_safe"] is True


def test_an_unknown_migration_is_refused_at_start(tmp_path: Path) -> None:
    url = fresh_store(tmp_path)
    res = run("--db", url, *BASE, "--key", "json:id")
    assert res.exit_code == 3, res.output
    assert "switchover migration create" in said(res)


def test_sigterm_drains_requests_in_flight_then_flushes_and_exits_0(tmp_path: Path) -> None:
    url = fresh_store(tmp_path)
    a = bootstrap(Settings(database_url=url))
    a.rollout.create(NAME, stickiness="contact_id", actor="alice")
    port = free_port()
    with upstreams() as (legacy, _candidate, lu, cu):
        legacy.delay = 2.0
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "switchover.cli.main",
                "--db",
                url,
                "proxy",
                "--migration",
                NAME,
                "--legacy",
                lu,
                "--candidate",
                cu,
                "--key",
                "json:contact_id",
                "--port",
                str(port),
                "--drain-delay",
                "1",
                "--signature-secret-env",
                "WEBHOOK_SECRET",
                "--progress-interval",
                "0.5",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(WEBHOOK_SECRET=SECRET),
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _answers(base + "/_switchover/readyz"), timeout=30)
            body = b'{"contact_id": "c-1"}'
            sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            answers: list[httpx.Response] = []
            slow = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(
                        base + "/hook", content=body, headers={"X-Signature": sig}, timeout=10
                    )
                )
            )
            slow.start()
            wait_for(lambda: len(legacy.seen) == 1)
            proc.send_signal(signal.SIGTERM)
            wait_for(lambda: _status(base + "/_switchover/readyz") == 503)  # draining
            slow.join(10)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert answers and answers[0].status_code == 200
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[0])["event"] == "listening"
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # JSON lines only
    events = [line.get("event") for line in lines]
    assert "drain_started" in events and "proxy_stopped" in events
    progress = [line for line in lines if line.get("event") == "progress"]
    assert progress and progress[-1]["side.legacy"] == 1  # counts while it ran
    assert SECRET not in err and "contact_id" not in err
    window = a.metrics.window(NAME, last=timedelta(minutes=10))
    assert window.sides["legacy"].calls == 1  # flushed on the way out
    a.close()


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.TransportError:
        return None


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False

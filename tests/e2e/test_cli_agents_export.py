"""``agents export FILE`` (seed 000's "backup database: full backup of all agent
configurations"): keys stay encrypted in the file, and ``agents import FILE`` into an
empty store gives back the same registry, exported again byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.fernet import Fernet
from typer.testing import CliRunner

from switchover.cli.main import app as cli_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "agents.json"
SECRET = "sk-export-greeting-secret-91"
KEY = Fernet.generate_key().decode()


def cli(db: str, *args: str, key: str = KEY) -> tuple[int, str, str]:
    env = {
        "SWITCHOVER_DATABASE_URL": None,
        "SWITCHOVER_SECRET_KEY": key,
        "GREETING_OPENAI_API_KEY": SECRET,
    }
    result = CliRunner().invoke(cli_app, ["--db", db, *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_export_keeps_keys_encrypted_and_import_round_trips_exactly(
    db_url: str, tmp_path: Path
) -> None:
    code, _out, err = cli(db_url, "agents", "import", str(EXAMPLE))
    assert code == 0, err
    code, _out, err = cli(db_url, "agents", "key", "set", "cmgr3b1xk000139du8h2kq7pz",
                          "tts_api_key", "--from-env", "GREETING_OPENAI_API_KEY")  # fmt: skip
    assert code == 0, err
    first = tmp_path / "agents-backup.json"
    code, out, err = cli(db_url, "agents", "export", str(first), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["agents"], summary["keys"]) == (4, 2)
    text = first.read_text(encoding="utf-8")
    assert SECRET not in text
    data = json.loads(text)
    sealed = data["agents"][0]["keys"]["llm_api_key"]["encrypted"]
    assert Fernet(KEY.encode()).decrypt(sealed.encode()).decode() == SECRET

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, _out, err = cli(fresh, "agents", "import", str(first))
    assert code == 0, err
    second = tmp_path / "again.json"
    code, _out, err = cli(fresh, "agents", "export", str(second))
    assert code == 0, err
    assert second.read_bytes() == first.read_bytes()
    code, out, _err = cli(fresh, "agents", "show", "cmgr32z4q000039dudjfah00c",
                          "--reveal-keys", "--json")  # fmt: skip
    assert json.loads(out)["keys"] == {"llm_api_key": SECRET}

    # another secret key cannot read the tokens: refused, nothing imported
    other = f"sqlite:///{tmp_path / 'other.db'}"
    code, _out, err = cli(other, "agents", "import", str(first), key=Fernet.generate_key().decode())
    assert code == 8 and "another SWITCHOVER_SECRET_KEY" in err
    code, out, _err = cli(other, "agents", "list", "--json")
    assert json.loads(out) == []

    code, _out, err = cli(db_url, "agents", "export", str(first))  # never overwrites
    assert code == 2 and "exists" in err

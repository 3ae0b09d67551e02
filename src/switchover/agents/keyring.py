"""Provider keys encrypted at rest with Fernet; the key comes from the environment.

``SWITCHOVER_SECRET_KEY`` holds one Fernet key, or several separated by commas to
rotate: the first encrypts, every one decrypts (``MultiFernet``). Generate one with
``switchover agents keygen``. Without it, agents without keys still work; storing or
reading a key fails with a message that says what to set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from switchover.errors import SecretKeyError

ENV_VAR = "SWITCHOVER_SECRET_KEY"


def generate_key() -> str:
    return Fernet.generate_key().decode()


class Keyring:
    """Parses its keys on first use, so a bad key breaks only what needs it."""

    def __init__(self, keys: list[str] | None = None) -> None:
        self._keys = [k.strip() for k in keys or [] if k.strip()]
        self._fernet: MultiFernet | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Keyring:
        raw = (env if env is not None else os.environ).get(ENV_VAR, "")
        return cls([k for k in raw.split(",") if k.strip()])

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def _require(self) -> MultiFernet:
        if self._fernet is not None:
            return self._fernet
        if not self._keys:
            raise SecretKeyError(
                f"{ENV_VAR} is not set, so agent keys cannot be stored or read: generate a key "
                f"with 'switchover agents keygen' and export {ENV_VAR} for the CLI and the server",
                field=ENV_VAR,
            )
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in self._keys])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                f"{ENV_VAR} is not a valid Fernet key (32 url-safe base64-encoded bytes): "
                "generate one with 'switchover agents keygen'",
                field=ENV_VAR,
            ) from exc
        return self._fernet

    def encrypt(self, plaintext: str) -> str:
        return self._require().encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._require().decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"a stored agent key cannot be decrypted with this process's {ENV_VAR} (read "
                "when it started): it was encrypted with another key. Start the server "
                f"with the {ENV_VAR} the key was stored with, or list the old key after the "
                "new one (comma-separated) to rotate",
                field=ENV_VAR,
            ) from None

"""The LiveKit plugin each provider a runtime config names, built with the agent's own
key and model (the worker's environment fills a key the agent has not got).

Every provider in ``core.agents`` (LLM_PROVIDERS, TTS_PROVIDERS, STT_PROVIDERS) has its
plugin in the ``livekit`` extra and the image. A provider whose plugin is not installed
fails the job with :class:`ProviderMissing`, naming the package to install: a job is
never sent silently to LiveKit Inference, which a self-hosted LiveKit does not have.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from switchover.errors import SwitchoverError

PLUGINS: dict[str, tuple[str, str]] = {
    "openai": ("livekit.plugins.openai", "livekit-plugins-openai"),
    "anthropic": ("livekit.plugins.anthropic", "livekit-plugins-anthropic"),
    "google": ("livekit.plugins.google", "livekit-plugins-google"),
    "groq": ("livekit.plugins.groq", "livekit-plugins-groq"),
    "mistral": ("livekit.plugins.mistralai", "livekit-plugins-mistralai"),
    "cartesia": ("livekit.plugins.cartesia", "livekit-plugins-cartesia"),
    "elevenlabs": ("livekit.plugins.elevenlabs", "livekit-plugins-elevenlabs"),
    "deepgram": ("livekit.plugins.deepgram", "livekit-plugins-deepgram"),
    "rime": ("livekit.plugins.rime", "livekit-plugins-rime"),
    "assemblyai": ("livekit.plugins.assemblyai", "livekit-plugins-assemblyai"),
}
"""provider -> (module, the PyPI package that brings it)."""

VOICE_ARGUMENT = {
    "cartesia": "voice",
    "elevenlabs": "voice_id",
    "openai": "voice",
    "deepgram": "model",
    "rime": "speaker",
}
"""How each TTS plugin names the voice the agent's ``voice_id`` picks."""


class ProviderMissing(SwitchoverError):
    """The agent's provider has no plugin installed in this worker."""

    code = "provider_missing"
    exit_code = 2
    http_status = 422

    @property
    def label(self) -> str:
        return self.code


def plugin(kind: str, provider: str) -> Any:
    """The plugin module for ``provider``, or :class:`ProviderMissing` naming its package."""
    if provider not in PLUGINS:
        raise ProviderMissing(
            f"the agent's {kind}_provider {provider!r} has no LiveKit plugin known to "
            f"switchover: use one of {', '.join(sorted(PLUGINS))}",
            field=f"{kind}_provider",
        )
    module, package = PLUGINS[provider]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ProviderMissing(
            f"the agent's {kind}_provider is {provider!r} but {package} is not installed in "
            f"this worker: pip install {package} (or 'switchover[livekit]', which has them all)",
            field=f"{kind}_provider",
        ) from None


def _given(**kwargs: Any) -> dict[str, Any]:
    """What the config sets; a plugin reads its own environment variable for the rest."""
    return {k: v for k, v in kwargs.items() if v is not None}


def build_llm(config: dict[str, Any]) -> Any:
    mod = plugin("llm", config["llm_provider"])
    return mod.LLM(
        **_given(
            model=config["llm_model"],
            api_key=config.get("llm_api_key"),
            temperature=config.get("temperature"),
        )
    )


def build_tts(config: dict[str, Any]) -> Any:
    provider = config["tts_provider"]
    mod = plugin("tts", provider)
    kwargs = _given(api_key=config.get("tts_api_key"))
    voice = config.get("voice_id")
    if voice and voice != "default":
        kwargs[VOICE_ARGUMENT.get(provider, "voice")] = voice
    return mod.TTS(**kwargs)


def build_stt(config: dict[str, Any]) -> Any:
    mod = plugin("stt", config["stt_provider"])
    return mod.STT(**_given(api_key=config.get("stt_api_key")))


Builder = Callable[[dict[str, Any]], Any]


def preload() -> dict[str, bool]:
    """Import every installed plugin now, on the main thread (LiveKit registers plugins
    only there, and jobs run on threads); per provider, whether it is installed."""
    installed: dict[str, bool] = {}
    for provider, (module, _package) in PLUGINS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            installed[provider] = False
        else:
            installed[provider] = True
    return installed

"""switchover inside LiveKit Agents (``pip install 'switchover[livekit]'``).

``MigratingSTT``, ``MigratingLLM`` and ``MigratingTTS`` are livekit-agents' own
``stt.STT``, ``llm.LLM`` and ``tts.TTS`` over a legacy and a candidate instance: hand
them to an ``AgentSession`` as you would any provider. Every request is a route of the
migration (streams included: the candidate may fall back only before its first chunk),
pinned to the call's side, and recorded.

    m = switchover.connect(url).migration("voice_v2")
    call = m.call(ctx.room.name, {"tenant_id": tenant})
    session = AgentSession(
        stt=MigratingSTT(legacy=deepgram.STT(), candidate=assemblyai.STT(), call=call),
        llm=MigratingLLM(legacy=openai.LLM(), candidate=anthropic.LLM(), call=call),
        tts=MigratingTTS(legacy=cartesia.TTS(), candidate=elevenlabs.TTS(), call=call),
    )
"""

from switchover.livekit.llm import MigratingLLM
from switchover.livekit.stt import MigratingSTT
from switchover.livekit.tts import MigratingTTS

__all__ = ["MigratingLLM", "MigratingSTT", "MigratingTTS"]

"""switchover inside Pipecat (``pip install 'switchover[pipecat]'``).

``MigratingSwitcher`` is Pipecat's own ``ServiceSwitcher`` over a legacy and a candidate
service (an LLM or a TTS), switched by the migration: one side per call, fallback to
legacy on a failure or a stall before the first frame, every request recorded.

    m = switchover.connect(url).migration("voice_v2")
    call = m.call(session_id, {"tenant_id": tenant})
    llm = MigratingSwitcher(legacy=OpenAILLMService(…), candidate=AnthropicLLMService(…),
                            call=call, operation="llm")
    pipeline = Pipeline([transport.input(), stt, user_aggregator, llm, tts, …])
"""

from switchover.pipecat.switcher import PROFILES, MigratingSwitcher, MigrationStrategy, Profile

__all__ = ["PROFILES", "MigratingSwitcher", "MigrationStrategy", "Profile"]

"""The example migration of seed 004, created by ``make run`` on an empty store."""

from __future__ import annotations

from switchover.core.migration import Migration
from switchover.rollout.service import RolloutService

EXAMPLE_NAME = "voice_v2"
EXAMPLE_FEATURES = ("stt", "tts", "langgraph_integration", "caching")


def ensure_example(rollout: RolloutService) -> Migration | None:
    """Create ``voice_v2`` when the store has no migration at all; None otherwise."""
    if rollout.list():
        return None
    return rollout.create(
        EXAMPLE_NAME,
        features=EXAMPLE_FEATURES,
        stickiness="user_id",
        description="Legacy voice service to voice_v2 (seed 004): STT/TTS behind a router",
        legacy_label="app/services/voice",
        candidate_label="voice_v2",
        actor="switchover",
        reason="example migration created on first run",
    )

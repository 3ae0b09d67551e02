"""What an audit row shows as changed."""

from switchover.core.changes import changed_fields


def test_changed_fields_one_level_deep_without_bookkeeping() -> None:
    before = {"percentage": 5, "features": {"stt": False, "tts": True}, "version": 3, "gone": 1}
    after = {"percentage": 25, "features": {"stt": True, "tts": True}, "version": 4}
    assert changed_fields(before, after) == [
        ("percentage", 5, 25),
        ("features.stt", False, True),
        ("gone", 1, None),
    ]
    assert changed_fields(after, after) == []

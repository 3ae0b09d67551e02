"""Targets by kind name: an unknown kind or option is refused with the valid names."""

from __future__ import annotations

import pytest

from switchover.control.notify import (
    KINDS,
    MemoryTarget,
    NoopTarget,
    Notifier,
    WebhookTarget,
    make_target,
)
from switchover.errors import ValidationError

from .notes import note


def test_every_kind_is_made_by_name() -> None:
    assert list(KINDS) == ["memory", "noop", "webhook"]
    assert isinstance(make_target("memory"), MemoryTarget)
    assert isinstance(make_target("noop"), NoopTarget)
    with Notifier() as shared:
        hook = make_target("webhook", url="https://example.com/h", events=["hold"], notifier=shared)
        assert isinstance(hook, WebhookTarget)
        assert hook.webhook.events == frozenset({"hold"}) and hook.notifier is shared


@pytest.mark.parametrize("kind", ["slack", "Webhook", "", "webhooks", None])
def test_an_unknown_kind_lists_the_known_ones_and_never_guesses(kind: object) -> None:
    with pytest.raises(ValidationError) as info:
        make_target(kind)  # type: ignore[arg-type]
    assert info.value.field == "kind"
    assert f"{kind!r} is unknown" in info.value.message
    assert "use one of: memory, noop, webhook" in info.value.message


def test_unknown_options_and_bad_values_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="takes no options; got url"):
        make_target("noop", url="https://example.com")
    with pytest.raises(ValidationError, match="takes only url, secret, events, notifier; got uri"):
        make_target("webhook", uri="https://example.com")
    with pytest.raises(ValidationError, match="needs an http"):
        make_target("webhook", url="ftp://example.com/h")
    with pytest.raises(ValidationError, match="unknown notification events"):
        make_target("webhook", url="https://example.com/h", events=["done"])


def test_a_made_target_works() -> None:
    memory = make_target("memory")
    memory.send(note())
    assert isinstance(memory, MemoryTarget) and memory.notifications() == [note()]

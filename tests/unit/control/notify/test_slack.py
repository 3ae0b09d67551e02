"""The Slack format: what Slack renders, within its limits, plus the machine-readable copy."""

from __future__ import annotations

import json
from datetime import datetime
from types import MappingProxyType

from switchover.control.notify import MAX_FIELDS, Notification, slack_payload
from switchover.control.notify.slack import slack_body

from .notes import AT, REASONS, note


def test_payload_has_headline_facts_and_reasons() -> None:
    payload = slack_payload(note(verdict_id="v-42"))
    assert payload["text"] == "⏩ voice_v2: advanced canary (1 %) → pilot (10 %)"
    section, facts, context = payload["blocks"]
    assert section["text"]["text"].startswith("⏩ *voice_v2* · Phase change (P2)\n")
    assert [f["text"] for f in facts["fields"]] == [
        "*Phase*\npilot",
        "*Percentage*\n10%",
        "*Severity*\nP2",
        "*Verdict id*\nv-42",
    ]
    assert [e["text"] for e in context["elements"]] == [f"• {r}" for r in REASONS]


def test_no_reasons_means_no_context_block_and_facts_are_capped() -> None:
    many = {f"extra_{i}": i for i in range(20)}
    payload = slack_payload(note("hold", reasons=None, **many))
    assert [b["type"] for b in payload["blocks"]] == ["section", "section"]
    assert len(payload["blocks"][1]["fields"]) == MAX_FIELDS


def test_body_is_the_payload_as_utf8_json_even_for_huge_ints() -> None:
    assert json.loads(slack_body(note())) == slack_payload(note())
    huge = note(count=2**80)  # beyond what orjson encodes
    assert json.loads(slack_body(huge))["switchover"]["fields"]["count"] == 2**80


def test_payload_is_json_safe_capped_and_escaped() -> None:
    odd = Notification(
        event="rollback",
        migration="voice_v2",
        text="rolled back <!channel> & co",
        at=datetime(2025, 3, 4, 12, 30),  # naive: taken as UTC
        severity="P0",
        fields=MappingProxyType(
            {
                "reasons": [f"check {i} failed" for i in range(15)],
                "when": AT,
                "tags": {"b", "a"},
                "blob": object(),
                7: "non-string key",
            }
        ),
    )
    payload = slack_payload(odd)
    decoded = json.loads(json.dumps(payload))  # plain JSON, no default= needed
    assert decoded["text"] == "⏪ rolled back &lt;!channel&gt; &amp; co"
    elements = decoded["blocks"][2]["elements"]
    assert len(elements) == 10
    assert elements[-1]["text"] == "• … and 6 more"
    data = decoded["switchover"]
    assert data["at"] == "2025-03-04T12:30:00+00:00"
    assert len(data["fields"]["reasons"]) == 15  # the machine-readable copy is complete
    assert data["fields"]["tags"] == ["a", "b"]
    assert data["fields"]["when"] == "2025-03-04T12:30:00+00:00"
    assert data["fields"]["7"] == "non-string key"
    assert data["fields"]["blob"].startswith("<object object")

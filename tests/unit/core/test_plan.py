"""The plan parser as a user meets it: the example plans, the gate grammar, the errors.

Every error is checked for the three things docs/plans.md promises: the file's name, the
path of the field that is wrong, and what to write instead.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from switchover.core.plan import (
    Gate,
    Plan,
    TargetSpec,
    check_features,
    load_plan,
    parse_gate,
    parse_plan,
)
from switchover.errors import ValidationError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "plans"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))

H = 3600.0
D = 86400.0
W = 7 * D


def example(name: str) -> Plan:
    path = EXAMPLES / name
    return load_plan(path.read_text(encoding="utf-8"), path.name)


def load(text: str, source: str = "plan.yaml") -> Plan:
    return load_plan(textwrap.dedent(text), source)


def error(text: str, source: str = "plan.yaml") -> ValidationError:
    with pytest.raises(ValidationError) as info:
        load(text, source)
    return info.value


MINIMAL = """\
plan: demo
phases:
  - name: a
    percentage: 10
    duration: 1h
"""


# --- the example plans ---------------------------------------------------------------------


def test_there_is_one_example_per_seed_and_a_quick_demo() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {
        "seed-000-core-worker.yaml",
        "seed-001-feature-by-feature.yaml",
        "seed-002-langgraph-cutover.yaml",
        "seed-003-voice-agent-v2.yaml",
        "seed-004-voice-v2.yaml",
        "quick-demo.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_plan_parses(path: Path) -> None:
    plan = load_plan(path.read_text(encoding="utf-8"), path.name)
    assert plan.phases
    assert plan.phases[-1].percentage == 100
    assert plan.description


SCHEDULES: dict[str, list[tuple[int, float]]] = {
    # seed 000 Step 5.1: Day 1-2 10 %, Day 3-4 50 %, Day 5-7 100 %
    "seed-000-core-worker.yaml": [(10, 2 * D), (50, 2 * D), (100, 3 * D)],
    # seed 001: one flag a week for a 10 % canary cohort, then everything for everyone
    "seed-001-feature-by-feature.yaml": [(10, W)] * 5 + [(100, W)],
    # seed 002: 10 % days 1-3, then 25/50/75/90 daily, then 100 % watched 24 h
    "seed-002-langgraph-cutover.yaml": [
        (10, 3 * D),
        (25, D),
        (50, D),
        (75, D),
        (90, D),
        (100, 24 * H),
    ],
    # seed 003 §5.2: 5/10/25 watched 24 h, 50/75 watched 48 h, then 100 %
    "seed-003-voice-agent-v2.yaml": [
        (5, 24 * H),
        (10, 24 * H),
        (25, 24 * H),
        (50, 48 * H),
        (75, 48 * H),
        (100, 48 * H),
    ],
    # seed 004 M3.1: canary 1 % 3 d, pilot 10 % 5 d, beta 30 % 7 d, production 100 % 14 d
    "seed-004-voice-v2.yaml": [(1, 3 * D), (10, 5 * D), (30, 7 * D), (100, 14 * D)],
    "quick-demo.yaml": [(5, 180.0), (25, 180.0), (50, 240.0), (100, 300.0)],
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_example_schedule_matches_its_seed(name: str) -> None:
    plan = example(name)
    assert [(p.percentage, p.duration) for p in plan.phases] == SCHEDULES[name]


def test_seed_004_phases_features_gates_and_regression_guardrails() -> None:
    plan = example("seed-004-voice-v2.yaml")
    assert [p.name for p in plan.phases] == ["canary", "pilot", "beta", "production"]
    assert [p.features for p in plan.phases] == [
        ("stt",),
        ("stt", "tts"),
        ("stt", "tts", "caching"),
        ("stt", "tts", "caching", "langgraph_integration"),
    ]
    assert [[g.text for g in p.gates] for p in plan.phases] == [
        ["error_rate < 2%", "p95 < 2000ms"],
        ["error_rate < 1%", "p95 < 1500ms"],
        ["error_rate < 0.5%", "p95 < 1000ms", "outcome.cache_hit > 80%"],
        ["error_rate < 0.1%", "p95 < 800ms"],
    ]
    assert [g.text for g in plan.guardrails] == ["p95_ratio <= 1.2", "error_ratio <= 1.5"]
    assert [p.requires_approval for p in plan.phases] == [False, False, False, True]
    assert plan.features() == ["stt", "tts", "caching", "langgraph_integration"]
    assert (plan.interval, plan.window) == (300.0, H)


def test_seed_004_fits_the_example_migration_of_a_first_run() -> None:
    """The README's tour applies this plan to the voice_v2 that `make run` creates."""
    from switchover.demo import EXAMPLE_FEATURES

    check_features(example("seed-004-voice-v2.yaml"), list(EXAMPLE_FEATURES))


def test_seed_003_signs_off_before_100_percent() -> None:
    plan = example("seed-003-voice-agent-v2.yaml")
    assert [p.requires_approval for p in plan.phases] == [False] * 5 + [True]
    assert plan.features() == []


def test_seed_002_rollback_triggers_and_success_criteria() -> None:
    plan = example("seed-002-langgraph-cutover.yaml")
    assert [g.text for g in plan.guardrails] == [
        "error_rate < 5%",
        "p95 < 3000ms",
        "outcome.routing_failure < 10%",
        "outcome_drop.booked <= 2%",
        "score_drop.csat <= 0.2",
    ]
    for phase in plan.phases:
        assert [g.text for g in phase.gates] == [
            "p95 < 2000ms",
            "error_rate < 1%",
            "outcome.routing_failure < 5%",
        ]
    assert plan.bake == 2 * D  # Node.js on standby until the decommission (days 9-10)


def test_seed_000_gates_guardrails_and_campaign_stickiness() -> None:
    plan = example("seed-000-core-worker.yaml")
    assert [(g.text, g.action) for g in plan.guardrails] == [
        ("error_rate < 5%", "abort"),
        ("total_failure_rate < 5%", "abort"),
        ("p95 < 3000ms", "rollback"),
    ]
    for phase in plan.phases:
        assert [g.text for g in phase.gates] == ["error_rate < 1%", "p95 < 2000ms"]
    text = (EXAMPLES / "seed-000-core-worker.yaml").read_text(encoding="utf-8")
    assert "--stickiness campaign_id" in text


def test_seed_001_turns_on_one_more_flag_each_week_and_writes_out_the_matrix() -> None:
    plan = example("seed-001-feature-by-feature.yaml")
    flags = [
        "telemetry",
        "voucher_creation",
        "whatsapp_integration",
        "ai_responses",
        "ai_realtime",
        "voucher_redemption",
    ]
    assert [p.features for p in plan.phases] == [tuple(flags[: i + 1]) for i in range(6)]
    assert plan.matrix.to_dict() == {
        "p0": {"error_rate": 0.5, "p95_ms": 30_000.0},
        "p1": {"error_rate": 0.1, "p95_ms": 10_000.0},
        "p2": {"error_rate": 0.05, "p95_ms": 5_000.0},
        # "Disable all features immediately" names the AI flags only
        "p0_keep": ["telemetry", "voucher_creation", "voucher_redemption"],
    }
    text = (EXAMPLES / "seed-001-feature-by-feature.yaml").read_text(encoding="utf-8")
    assert re.search(r"^matrix:\n\s+p0:", text, re.M), "the matrix must be written out"


def _uncommented_notify(text: str) -> str | None:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# notify:"):
            block = [line[2:]]
            for following in lines[i + 1 :]:
                if not following.startswith("#   "):
                    break
                block.append(following[2:])
            return "\n".join(block) + "\n"
    return None


def test_a_commented_notify_example_works_once_uncommented() -> None:
    found = 0
    for path in EXAMPLE_FILES:
        text = path.read_text(encoding="utf-8")
        block = _uncommented_notify(text)
        if block is None:
            continue
        found += 1
        plan = load_plan(text + block, path.name)
        assert plan.notify[0].url_env == "SLACK_WEBHOOK_URL"
        assert plan.notify[0].secret_env == "SWITCHOVER_WEBHOOK_SECRET"
        assert plan.notify[0].url is None
    assert found >= 1


# --- the gate grammar ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "metric", "op", "value", "text"),
    [
        ("p95 < 800ms", "p95", "<", 800.0, "p95 < 800ms"),
        ("p95 < 2s", "p95", "<", 2000.0, "p95 < 2000ms"),
        ("p99<=2.5s", "p99", "<=", 2500.0, "p99 <= 2500ms"),
        ("error_rate < 1%", "error_rate", "<", 0.01, "error_rate < 1%"),
        ("error_rate < 0.5%", "error_rate", "<", 0.005, "error_rate < 0.5%"),
        ("fallback_rate <= 2%", "fallback_rate", "<=", 0.02, ""),
        ("total_failure_rate < 0.1%", "total_failure_rate", "<", 0.001, ""),
        ("p95_ratio <= 1.2", "p95_ratio", "<=", 1.2, "p95_ratio <= 1.2"),
        ("p50_ratio <= 1.1x", "p50_ratio", "<=", 1.1, "p50_ratio <= 1.1"),
        ("error_ratio < 1.5\u00d7", "error_ratio", "<", 1.5, "error_ratio < 1.5"),
        ("outcome.cache_hit > 80%", "outcome.cache_hit", ">", 0.8, "outcome.cache_hit > 80%"),
        ("outcome.failed < 10%", "outcome.failed", "<", 0.1, "outcome.failed < 10%"),
        ("outcome_drop.booked <= 2%", "outcome_drop.booked", "<=", 0.02, ""),
    ],
)
def test_gate_grammar_units(raw: str, metric: str, op: str, value: float, text: str) -> None:
    gate = parse_gate(raw, "gates[0]")
    assert (gate.metric, gate.op, gate.operation, gate.action) == (metric, op, None, "rollback")
    assert gate.value == pytest.approx(value)
    assert gate.text == (text or raw)


def test_gate_rate_as_a_fraction() -> None:
    gate = parse_gate("fallback_rate <= 0.02", "gates[0]")
    assert (gate.value, gate.text) == (0.02, "fallback_rate <= 2%")


def test_gate_kinds() -> None:
    kinds = {
        raw: parse_gate(raw, "g").kind
        for raw in (
            "error_rate < 1%",
            "p95 < 1s",
            "outcome.x > 1%",
            "p95_ratio <= 1.2",
            "error_ratio <= 1.5",
            "outcome_drop.x <= 1%",
        )
    }
    assert list(kinds.values()) == [
        "rate",
        "latency",
        "outcome",
        "latency_ratio",
        "rate_ratio",
        "outcome_drop",
    ]


def test_gate_on_operation() -> None:
    gate = parse_gate("outcome.cache_hit > 80% on tts", "gates[0]")
    assert (gate.metric, gate.operation, gate.text) == (
        "outcome.cache_hit",
        "tts",
        "outcome.cache_hit > 80% on tts",
    )


def test_gate_mapping_form_with_action_and_operation() -> None:
    gate = parse_gate({"gate": "p95 < 3s", "action": "abort", "operation": "stt"}, "guardrails[0]")
    assert gate == Gate("p95", "<", 3000.0, "stt", "abort", "p95 < 3000ms on stt")
    hold = parse_gate({"gate": "error_rate < 1%", "action": "hold"}, "guardrails[1]")
    assert (hold.action, hold.operation) == ("hold", None)
    assert parse_gate({"gate": "p95 < 1s"}, "g").action == "rollback"


def test_gate_mapping_form_in_a_plan() -> None:
    plan = load(
        MINIMAL
        + """\
guardrails:
  - gate: error_rate < 5%
    action: abort
  - error_ratio <= 1.5
"""
    )
    assert [(g.text, g.action) for g in plan.guardrails] == [
        ("error_rate < 5%", "abort"),
        ("error_ratio <= 1.5", "rollback"),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"gate": "p95 < 1s", "action": "panic"}, "g.action: 'panic' is not one of rollback"),
        ({"gate": "p95 < 1s", "when": "x"}, "unknown key(s) ['when']; a gate has gate"),
        ({"action": "hold"}, "missing 'gate:', for example gate:"),
        ("p95 fast", 'is not a gate; write "METRIC OP VALUE [on OPERATION]"'),
        ("p95 < 800", "'800' is not a latency; write it with a unit: 800ms or 2.5s"),
        ("p95_ratio <= -1", "is not a ratio; write a positive number such as 1.2"),
        ("p95_ratio <= 0", "is not a ratio; write a positive number such as 1.2"),
    ],
)
def test_gate_grammar_errors(raw: Any, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_gate(raw, "g")
    assert expected in info.value.message


# --- defaults ------------------------------------------------------------------------------


def test_defaults() -> None:
    plan = load(MINIMAL)
    assert (plan.interval, plan.window, plan.recent) == (60.0, 3600.0, 120.0)
    assert (plan.min_samples, plan.confidence, plan.tolerance) == (100, 0.98, 0.1)
    assert plan.alpha == pytest.approx(0.02)
    assert (plan.guardrails, plan.notify, plan.operation, plan.description) == ((), (), None, "")
    assert plan.matrix.to_dict() == {
        "p0": {"error_rate": 0.5, "p95_ms": 30_000.0},
        "p1": {"error_rate": 0.1, "p95_ms": 10_000.0},
        "p2": {"error_rate": 0.05, "p95_ms": 5_000.0},
    }
    phase = plan.phases[0]
    assert (phase.features, phase.gates, phase.requires_approval) == (None, (), False)


def test_empty_features_list_means_every_feature_off() -> None:
    plan = load(MINIMAL + "    features: []\n")
    assert plan.phases[0].features == ()


def test_confidence_as_a_percentage() -> None:
    assert load(MINIMAL + "confidence: 95%\n").confidence == pytest.approx(0.95)


# --- errors name the file, the field and what to write -------------------------------------


def assert_error(exc: ValidationError, source: str, path: str, *hints: str) -> None:
    assert exc.message.startswith(f"{source}: {path}"), exc.message
    assert exc.field == path
    for hint in hints:
        assert hint in exc.message, exc.message


def test_missing_phases() -> None:
    exc = error("plan: demo\n", "rollout.yaml")
    assert_error(exc, "rollout.yaml", "phases", "a plan needs at least one phase")
    exc = error("plan: demo\nphases: []\n")
    assert_error(exc, "plan.yaml", "phases", "at least one phase")


def test_missing_plan_name() -> None:
    exc = error("phases:\n  - {name: a, percentage: 10, duration: 1h}\n")
    assert_error(exc, "plan.yaml", "plan", "write e.g. plan: voice_v2_rollout")


def test_percentage_must_not_shrink() -> None:
    exc = error(
        """\
        plan: demo
        phases:
          - {name: a, percentage: 10, duration: 1h}
          - {name: b, percentage: 5, duration: 1h}
        """
    )
    assert_error(
        exc,
        "plan.yaml",
        "phases[1].percentage",
        "5 is lower than the phase before (10); phases only grow",
    )


@pytest.mark.parametrize("value", ["0", "101", "'10%'", "10.5", "true"])
def test_percentage_is_a_whole_number_from_1_to_100(value: str) -> None:
    exc = error(f"plan: demo\nphases:\n  - {{name: a, percentage: {value}, duration: 1h}}\n")
    assert_error(exc, "plan.yaml", "phases[0].percentage", "must be a whole number from 1 to 100")


def test_percentage_written_with_a_percent_sign_is_quoted_back() -> None:
    exc = error("plan: demo\nphases:\n  - {name: a, percentage: 10%, duration: 1h}\n")
    assert "got '10%'" in exc.message


def test_duplicate_phase_names() -> None:
    exc = error(
        """\
        plan: demo
        phases:
          - {name: a, percentage: 10, duration: 1h}
          - {name: a, percentage: 20, duration: 1h}
        """
    )
    assert_error(exc, "plan.yaml", "phases[1].name", "'a' is used twice; name phases uniquely")


def test_bad_phase_name() -> None:
    exc = error("plan: demo\nphases:\n  - {name: Canary Phase, percentage: 10, duration: 1h}\n")
    assert_error(exc, "plan.yaml", "phases[0].name", "lowercase letters, digits")


def test_unknown_key_in_a_phase_lists_the_allowed_ones() -> None:
    exc = error("plan: demo\nphases:\n  - {name: a, percentage: 10, duraton: 1h}\n")
    assert_error(exc, "plan.yaml", "phases[0].duraton", "unknown key; allowed here:", "duration")


def test_unknown_top_level_key() -> None:
    exc = error(MINIMAL + "guardrail: ['error_rate < 5%']\n")
    assert_error(exc, "plan.yaml", "guardrail", "unknown key; allowed here:", "guardrails")


def test_missing_duration() -> None:
    exc = error("plan: demo\nphases:\n  - {name: a, percentage: 10}\n")
    assert_error(exc, "plan.yaml", "phases[0].duration", "missing; write the minimum time", "3d")


@pytest.mark.parametrize("value", ["3 days", "3", "'72'", "1y", "-1h"])
def test_bad_duration(value: str) -> None:
    exc = error(f"plan: demo\nphases:\n  - {{name: a, percentage: 10, duration: {value}}}\n")
    assert_error(
        exc,
        "plan.yaml",
        "phases[0].duration",
        "is not a duration; write a number and a unit: 90s, 15m, 24h, 3d, 2w",
    )


def test_zero_duration() -> None:
    exc = error("plan: demo\nphases:\n  - {name: a, percentage: 10, duration: 0s}\n")
    assert_error(exc, "plan.yaml", "phases[0].duration", "must be longer than 0s")


def test_window_shorter_than_a_minute() -> None:
    exc = error(MINIMAL + "window: 30s\n")
    assert_error(exc, "plan.yaml", "window", "at least 1m (data is per minute)")


@pytest.mark.parametrize(
    ("gate", "hint"),
    [
        ("error_rate > 5%", "error_rate is lower-is-better: write it with < or <="),
        ("p95 >= 2s", "p95 is lower-is-better: write it with < or <=, e.g. p95 < 2s"),
        ("p95_ratio > 1.2", "p95_ratio is lower-is-better"),
        ("outcome_drop.booked > 2%", "outcome_drop.booked is lower-is-better"),
    ],
)
def test_lower_is_better_metric_with_greater_than(gate: str, hint: str) -> None:
    exc = error(MINIMAL + f"guardrails: ['{gate}']\n")
    assert_error(exc, "plan.yaml", "guardrails[0]", hint)


def test_unknown_metric_lists_the_known_ones() -> None:
    exc = error(
        """\
        plan: demo
        phases:
          - name: a
            percentage: 10
            duration: 1h
            gates: ["error_rate < 1%", "latency < 2s"]
        """
    )
    assert_error(
        exc,
        "plan.yaml",
        "phases[0].gates[1]",
        "unknown metric 'latency'",
        "p95",
        "outcome.NAME",
        "outcome_drop.NAME",
    )


@pytest.mark.parametrize("value", ["120%", "1.5", "-1%", "five%"])
def test_bad_rate(value: str) -> None:
    exc = error(MINIMAL + f"guardrails: ['error_rate < {value}']\n")
    assert_error(
        exc,
        "plan.yaml",
        "guardrails[0] (error_rate)",
        "is not a rate; write a percentage (2%) or a fraction (0.02)",
    )
    assert exc.field == "guardrails[0] (error_rate)"


def test_bad_yaml_gives_the_line() -> None:
    exc = error(
        """\
        plan: demo
        phases:
          - name: a
            percentage: 10
            duration: [1h
        """,
        "broken.yaml",
    )
    assert exc.message.startswith("broken.yaml: ")
    assert re.search(r"at line \d+, column \d+", exc.message), exc.message
    line = int(re.search(r"at line (\d+)", exc.message).group(1))  # type: ignore[union-attr]
    assert line >= 5


def test_bad_yaml_tab_indentation_gives_the_line() -> None:
    exc = error("plan: demo\nphases:\n\t- name: a\n")
    assert exc.message.startswith("plan.yaml: ")
    assert "at line 3" in exc.message


def test_a_plan_that_is_not_a_mapping() -> None:
    exc = error("- just\n- a list\n")
    assert_error(exc, "plan.yaml", "plan file", "expected a mapping")


def test_notify_with_both_url_and_url_env() -> None:
    exc = error(
        MINIMAL
        + """\
notify:
  - url: https://hooks.example.com/x
    url_env: SLACK_WEBHOOK_URL
"""
    )
    assert_error(
        exc, "plan.yaml", "notify[0]", "give exactly one of url or url_env", "environment variable"
    )


def test_notify_with_neither_url_nor_url_env() -> None:
    exc = error(MINIMAL + "notify:\n  - secret_env: SWITCHOVER_WEBHOOK_SECRET\n")
    assert_error(exc, "plan.yaml", "notify[0]", "give exactly one of url or url_env")


def test_notify_unknown_event_lists_the_known_ones() -> None:
    exc = error(
        MINIMAL
        + """\
notify:
  - url_env: SLACK_WEBHOOK_URL
    events: [rollback, deployed]
"""
    )
    assert_error(
        exc,
        "plan.yaml",
        "notify[0].events[1]",
        "'deployed' is not one of phase_change, hold, rollback, approval_needed, completed",
    )


def test_notify_env_names_and_urls_are_checked() -> None:
    exc = error(MINIMAL + "notify:\n  - url_env: 'https://hooks.slack.com/x'\n")
    assert_error(exc, "plan.yaml", "notify[0].url_env", "is not an environment variable name")
    exc = error(MINIMAL + "notify:\n  - url: ftp://example.com/x\n")
    assert_error(exc, "plan.yaml", "notify[0].url", "must be an http:// or https:// URL")


def test_notify_parses_events_and_env_names() -> None:
    plan = load(
        MINIMAL
        + """\
notify:
  - url_env: SLACK_WEBHOOK_URL
    secret_env: SWITCHOVER_WEBHOOK_SECRET
    events: [rollback, approval_needed]
"""
    )
    assert plan.notify == (
        TargetSpec(
            url_env="SLACK_WEBHOOK_URL",
            secret_env="SWITCHOVER_WEBHOOK_SECRET",
            events=("rollback", "approval_needed"),
        ),
    )


def test_matrix_thresholds_must_not_grow_from_p0_to_p2() -> None:
    exc = error(MINIMAL + "matrix:\n  p2: {error_rate: 20%}\n")
    assert_error(exc, "plan.yaml", "matrix", "thresholds must not grow from p0 to p2")
    exc = error(MINIMAL + "matrix:\n  p1: {p95: 40s}\n")
    assert_error(exc, "plan.yaml", "matrix", "p0 is the most severe")


def test_matrix_rows_default_per_level() -> None:
    plan = load(MINIMAL + "matrix:\n  p2: {error_rate: 2%, p95: 3s}\n")
    assert (plan.matrix.p2.error_rate, plan.matrix.p2.p95_ms) == (0.02, 3000.0)
    assert plan.matrix.p1.error_rate == 0.10


def test_matrix_unknown_level() -> None:
    exc = error(MINIMAL + "matrix:\n  p3: {error_rate: 1%}\n")
    assert_error(exc, "plan.yaml", "matrix.p3", "unknown key; allowed here: p0, p0_keep, p1, p2")


def test_requires_approval_must_be_a_boolean() -> None:
    exc = error(MINIMAL + "    requires_approval: 'yes please'\n")
    assert_error(exc, "plan.yaml", "phases[0].requires_approval", "must be true or false")


# --- check_features ------------------------------------------------------------------------


def test_check_features_names_the_phase_and_the_missing_feature() -> None:
    plan = example("seed-004-voice-v2.yaml")
    check_features(plan, ["stt", "tts", "caching", "langgraph_integration"])
    with pytest.raises(ValidationError) as info:
        check_features(plan, ["stt", "caching", "langgraph_integration"])
    exc = info.value
    assert exc.field == "phases[1].features[1]"
    assert exc.message.startswith(
        "phases[1].features[1] (phase 'pilot'): the migration has no feature 'tts'"
    )
    assert "its features are caching, langgraph_integration, stt" in exc.message


def test_check_features_on_a_migration_without_features() -> None:
    with pytest.raises(ValidationError, match=r"no feature 'stt'; its features are \(none\)"):
        check_features(example("seed-004-voice-v2.yaml"), [])
    check_features(example("seed-003-voice-agent-v2.yaml"), [])


# --- redaction and to_dict -----------------------------------------------------------------

SLACK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/zZ9tokenTOKENtoken"


def test_target_url_is_redacted_unless_revealed() -> None:
    spec = TargetSpec(url=SLACK, secret_env="SWITCHOVER_WEBHOOK_SECRET")
    shown = spec.to_dict()
    assert shown["url"] == "https://hooks.slack.com/…"
    flat = repr(shown)
    for secret in ("T0AAAAAAA", "B0BBBBBBB", "zZ9token", "/services"):
        assert secret not in flat
    assert shown["secret_env"] == "SWITCHOVER_WEBHOOK_SECRET"
    assert spec.to_dict(reveal=True)["url"] == SLACK


def test_target_url_credentials_in_userinfo_are_redacted() -> None:
    shown = TargetSpec(url="https://user:pa55@hooks.example.com:8443/x?token=abc").to_dict()
    assert shown["url"] == "https://hooks.example.com:8443/…"


def test_plan_to_dict_redacts_notify_urls() -> None:
    plan = load(MINIMAL + f"notify:\n  - url: {SLACK}\n  - url_env: SLACK_WEBHOOK_URL\n")
    notify = plan.to_dict()["notify"]
    assert notify[0]["url"] == "https://hooks.slack.com/…"
    assert notify[1] == {
        "url": None,
        "url_env": "SLACK_WEBHOOK_URL",
        "secret_env": None,
        "events": None,
    }
    assert "zZ9token" not in repr(plan.to_dict())
    assert plan.to_dict(reveal=True)["notify"][0]["url"] == SLACK


def _seconds(value: float) -> str:
    return f"{value!r}s"


def _as_source(d: dict[str, Any]) -> dict[str, Any]:
    """Plan.to_dict(reveal=True) written back in the plan file's own terms."""

    def gate(g: dict[str, Any]) -> dict[str, Any]:
        return {"gate": g["gate"], "action": g["action"]}

    def phase(p: dict[str, Any]) -> dict[str, Any]:
        out = {
            "name": p["name"],
            "percentage": p["percentage"],
            "duration": _seconds(p["duration_seconds"]),
            "gates": [gate(g) for g in p["gates"]],
            "requires_approval": p["requires_approval"],
        }
        if p["features"] is not None:
            out["features"] = p["features"]
        return out

    def target(t: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in t.items() if v is not None}

    out = {
        "plan": d["name"],
        "description": d["description"],
        "interval": _seconds(d["interval_seconds"]),
        "window": _seconds(d["window_seconds"]),
        "recent": _seconds(d["recent_seconds"]),
        "min_samples": d["min_samples"],
        "confidence": d["confidence"],
        "tolerance": d["tolerance"],
        "matrix": {
            level: {"error_rate": row["error_rate"], "p95": f"{row['p95_ms']!r}ms"}
            if level != "p0_keep"
            else row
            for level, row in d["matrix"].items()
        },
        "guardrails": [gate(g) for g in d["guardrails"]],
        "phases": [phase(p) for p in d["phases"]],
        "notify": [target(t) for t in d["notify"]],
        "srm": d["srm"],
    }
    if d["bake_seconds"]:
        out["bake"] = _seconds(d["bake_seconds"])
    if d["operation"] is not None:
        out["operation"] = d["operation"]
    return out


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_to_dict_round_trips_every_example(path: Path) -> None:
    plan = load_plan(path.read_text(encoding="utf-8"), path.name)
    assert parse_plan(_as_source(plan.to_dict(reveal=True))) == plan


def test_to_dict_key_values() -> None:
    plan = load(
        """\
        plan: demo
        description: a demo
        interval: 5m
        window: 2h
        recent: 10m
        min_samples: 50
        confidence: 0.99
        tolerance: 0.2
        operation: tts
        matrix:
          p2: {error_rate: 4%, p95: 4s}
        guardrails:
          - {gate: "error_rate < 5%", action: abort}
        notify:
          - url: https://hooks.slack.com/services/T/B/secret
            secret_env: SWITCHOVER_WEBHOOK_SECRET
            events: [rollback]
        phases:
          - name: canary
            percentage: 1
            duration: 3d
            features: [stt]
            gates: ["p95 < 2s on stt"]
          - name: all
            percentage: 100
            duration: 2w
            requires_approval: true
        """
    )
    d = plan.to_dict()
    assert {k: d[k] for k in ("name", "description", "operation", "min_samples")} == {
        "name": "demo",
        "description": "a demo",
        "operation": "tts",
        "min_samples": 50,
    }
    assert (d["interval_seconds"], d["window_seconds"], d["recent_seconds"]) == (300, 7200, 600)
    assert (d["confidence"], d["tolerance"]) == (0.99, 0.2)
    assert d["matrix"]["p2"] == {"error_rate": 0.04, "p95_ms": 4000.0}
    assert d["guardrails"] == [
        {
            "gate": "error_rate < 5%",
            "metric": "error_rate",
            "op": "<",
            "value": 0.05,
            "operation": None,
            "action": "abort",
        }
    ]
    assert d["phases"][0] == {
        "name": "canary",
        "percentage": 1,
        "duration_seconds": 3 * D,
        "features": ["stt"],
        "gates": [
            {
                "gate": "p95 < 2000ms on stt",
                "metric": "p95",
                "op": "<",
                "value": 2000.0,
                "operation": "stt",
                "action": "rollback",
            }
        ],
        "requires_approval": False,
    }
    assert d["phases"][1]["duration_seconds"] == 2 * W
    assert d["phases"][1]["features"] is None
    assert d["phases"][1]["requires_approval"] is True
    assert d["notify"] == [
        {
            "url": "https://hooks.slack.com/…",
            "url_env": None,
            "secret_env": "SWITCHOVER_WEBHOOK_SECRET",
            "events": ["rollback"],
        }
    ]
    assert plan.total_duration() == 3 * D + 2 * W
    assert plan.phase_index("all") == 1
    with pytest.raises(ValidationError, match="has no phase 'beta'; its phases are canary, all"):
        plan.phase_index("beta")

"""Runs the YAML conversation tests in tests/conversations/ (what `brandbot test` runs)."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.testing import collect, run_file
from tests.conftest import ROOT

FILES = collect([ROOT / "tests" / "conversations"])


def test_there_are_conversation_tests():
    assert len(FILES) >= 2


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_conversation_file(path):
    results = run_file(path)
    failures = [f"{r.name}: {line}" for r in results for line in r.failures]
    assert not failures, "\n".join(failures)


def test_a_failing_expectation_is_reported_with_turn_and_reply(tmp_path):
    script = tmp_path / "wrong.yaml"
    script.write_text(
        f"persona: {ROOT / 'tests' / 'data' / 'personas' / 'tiny.yaml'}\n"
        "conversations:\n"
        "  - name: wrong expectation\n"
        "    turns:\n"
        "      - say: 几点开门\n"
        "        expect: {intent: parking, reply: 周日休息, state: chatting}\n",
        encoding="utf-8",
    )
    (result,) = run_file(script)
    assert not result.ok
    assert result.failures == [
        "turn 1 ('几点开门'): reply should contain '周日休息'; got: "
        "欢迎来到小店，tester！ | 营业时间：每天9点到21点",
        "turn 1 ('几点开门'): intent should be 'parking'; got 'hours'",
    ]


def test_a_wait_only_turn_cannot_carry_expectations(tmp_path):
    script = tmp_path / "wait.yaml"
    script.write_text(
        "conversations:\n  - name: w\n    turns:\n      - say: hi\n"
        "      - wait: 1d\n        expect: {intent: parking}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="cannot `expect`"):
        run_file(script)

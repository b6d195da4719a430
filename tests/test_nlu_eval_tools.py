"""`brandbot nlu eval` for operators: per-message results, grouping by a field, the threshold in
use and what other thresholds would give."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bot.cli import main
from bot.nlu import IntentMatcher, Understander, evaluate
from tests.conftest import TINY
from tests.test_nlu import EXAMPLES

ROWS = [
    {"text": "几点开门", "intent": "hours", "cat": "plain"},
    {"text": "jidian kaimen", "intent": "hours", "cat": "pinyin"},
    {"text": "where can i park my car", "intent": "parking", "cat": "plain"},
    {"text": "qzxv wkjp blorf", "intent": None, "cat": "oos"},
    {"text": "what is on the menu", "intent": "booking"},  # deliberately mislabelled
]


def test_results_name_each_message_and_the_rule() -> None:
    report = evaluate(IntentMatcher(EXAMPLES), ROWS, by="cat")
    assert [r["text"] for r in report.results] == [r["text"] for r in ROWS]
    first = report.results[0]
    assert first["expected"] == first["got"] == "hours" and first["right"] is True
    assert first["language"] == "zh" and first["rule"] == "model" and first["cat"] == "plain"
    assert 0.0 <= first["confidence"] <= 1.0
    oos = report.results[3]
    assert oos["got"] is None and oos["rule"] is None and oos["right"] is True
    wrong = report.results[4]
    assert wrong["right"] is False and wrong["got"] != "booking" and wrong["language"] == "en"
    groups = dict(report.groups)
    assert set(groups) == {"plain", "pinyin", "oos", "(missing)"}
    assert groups["plain"].n == 2 and groups["plain"].accuracy == 1.0
    assert groups["(missing)"].accuracy == 0.0
    assert groups["oos"].oos_recall == 1.0


def test_threshold_and_what_if() -> None:
    matcher = IntentMatcher(EXAMPLES)
    report = evaluate(matcher, ROWS, what_if=(0.0, 1.0))
    assert report.threshold == matcher.calibrated_threshold
    assert report.threshold_source == "calibrated"
    tried = dict(report.what_if)
    assert set(tried) == {0.0, 1.0, matcher.calibrated_threshold}
    assert tried[0.0].oos_recall == 0.0  # everything accepted
    assert tried[1.0].in_scope_accuracy == 0.0  # nothing accepted
    # The matcher's own threshold is restored afterwards.
    assert matcher.threshold_source == "calibrated"
    explicit = IntentMatcher(EXAMPLES, threshold=0.5)
    evaluate(explicit, ROWS)
    assert explicit.threshold == 0.5 and explicit.threshold_source == "explicit"


def test_rule_is_read_from_the_understanding_when_it_has_one() -> None:
    class _Ruled:
        def understand(self, text):
            from types import SimpleNamespace

            return SimpleNamespace(intent=None, confidence=0.9, language="zh", rule="negation")

    report = evaluate(_Ruled(), [{"text": "我不想订位", "intent": None}], what_if=())
    assert report.results[0]["rule"] == "negation"
    assert report.threshold is None


def test_cli_json_has_results_and_groups(tmp_path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS[:4]), encoding="utf-8"
    )
    out = CliRunner().invoke(
        main, ["nlu", "eval", "--persona", str(TINY), "--by", "cat", "--json", str(data)]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert len(report["results"]) == 4
    assert {"text", "expected", "got", "confidence", "language", "rule", "cat"} <= set(
        report["results"][0]
    )
    assert set(report["groups"]) == {"plain", "pinyin", "oos"}
    assert report["threshold_source"] == "calibrated" and report["what_if"]
    text = CliRunner().invoke(main, ["nlu", "eval", "-p", str(TINY), "--by", "cat", str(data)])
    assert text.exit_code == 0 and "by cat" in text.output and "threshold" in text.output


def test_understander_bad_input_through_evaluate() -> None:
    from bot.brand import load_brand

    understander: Understander = load_brand(str(TINY)).understander
    rows = [
        {"text": t, "intent": None}
        for t in ("", "🤷", "x" * 10_000, "\x00\x1b[0m", "\ud800", "几点 open 吗 Привет")
    ]
    report = evaluate(understander, rows, what_if=())
    assert report.n == len(rows)

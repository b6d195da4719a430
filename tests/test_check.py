"""`brandbot check`: every problem as path:line:col: field: fix, exit 1."""

from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from tests.conftest import ROOT, TINY


def run_check(*paths: Path):
    return CliRunner().invoke(main, ["check", *map(str, paths)])


def test_shipped_personas_and_dialogs_are_valid():
    result = run_check(ROOT / "personas", ROOT / "dialogs", TINY)
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output


def test_persona_problems_are_located_and_phrased_as_fixes(tmp_path):
    text = TINY.read_text(encoding="utf-8")
    text = text.replace("营业时间：{hours}", "营业时间：{opening_hours}，最便宜")
    text = text.replace(
        "  greet: {zh: [你好呀, 又见面啦], en: [hi again, hello again]}", "  greet: {zh: [你好呀]}"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    result = run_check(broken)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    hours_line = next(i for i, line in enumerate(text.splitlines(), 1) if "opening_hours" in line)
    assert any(
        line.startswith(f"{broken}:{hours_line}:") and "banned word '最便宜'" in line
        for line in lines
    )
    assert any(
        "replies.hours.zh[0]" in line and "no fact 'opening_hours'" in line for line in lines
    )
    assert any("replies.greet" in line and "no en variant" in line for line in lines)


def test_unknown_fields_and_wrong_types(tmp_path):
    text = TINY.read_text(encoding="utf-8").replace(
        "  emoji: none", "  emoji: few\n  catchphrase: [x]"
    )
    text = text.replace("half_life_days: 30", "half_life_days: soon")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    out = run_check(broken).output
    assert "voice.catchphrase: unknown field 'catchphrase'" in out
    assert "voice.emoji: must be 'none', 'light' or 'lots'" in out
    assert "relationship.half_life_days: must be a valid number" in out


def test_yaml_syntax_error(tmp_path):
    broken = tmp_path / "syntax.yaml"
    broken.write_text("id: x\nbrand: [oops\nidentity: {}\n", encoding="utf-8")
    result = run_check(broken)
    assert result.exit_code == 1
    assert f"{broken}:3:" in result.output and "YAML syntax error" in result.output


def test_dialog_problems(tmp_path):
    dialog = tmp_path / "bad.yaml"
    dialog.write_text(
        "id: bad\ninitial: nope\nstates: [a, b]\ntransitions:\n"
        "  - {trigger: t, source: a, dest: c, after: [os.system, {reply: 3}],"
        " conditions: [{stage_at_least: god}]}\n"
        "  - {trigger: t, source: zz, dest: a}\n",
        encoding="utf-8",
    )
    out = run_check(dialog).output
    assert f"{dialog}:2:1: initial: unknown state 'nope'" in out
    assert "transitions[0].dest: unknown state 'c'" in out
    assert "unknown action 'os.system'; dotted import paths are not allowed" in out
    assert "transitions[0].after[1]: action 'reply' needs a name, got 3" in out
    assert "unknown stage 'god'" in out
    assert f"{dialog}:6:" in out and "transitions[1].source: unknown state 'zz'" in out


def test_dialog_trigger_must_be_an_intent_of_its_personas(tmp_path):
    (tmp_path / "personas").mkdir()
    (tmp_path / "dialogs").mkdir()
    persona = TINY.read_text(encoding="utf-8").replace("dialog: default", "dialog: mini")
    (tmp_path / "personas" / "tiny.yaml").write_text(persona, encoding="utf-8")
    (tmp_path / "dialogs" / "mini.yaml").write_text(
        "id: mini\ninitial: a\nstates: [a]\ntransitions:\n"
        "  - {trigger: hours, source: a, dest: a}\n  - {trigger: hoursss, source: a, dest: a}\n",
        encoding="utf-8",
    )
    out = run_check(tmp_path / "dialogs").output
    assert "dialogs/mini.yaml:6:" in out and "unknown trigger 'hoursss'" in out
    assert "unknown trigger 'hours'" not in out  # a real intent of the persona


def test_banned_words_in_facts_and_missing_stage_thresholds(tmp_path):
    text = TINY.read_text(encoding="utf-8")
    text = text.replace("parking: {zh: 门口有5个车位", "parking: {zh: 全城最便宜的停车场")
    text = text.replace("stages: {acquaintance: 3, friend: 8, loyal: 30, advocate: 100}",
                        "stages: {acquaintance: 3, friend: 8}")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    out = run_check(broken).output
    assert "facts.parking.zh: contains the banned word '最便宜'" in out
    assert "relationship.stages: no threshold for loyal, advocate" in out


def test_a_persona_is_reported_even_when_its_dialog_is_checked_first(tmp_path):
    (tmp_path / "personas").mkdir()
    broken = TINY.read_text(encoding="utf-8").replace("  emoji: none", "  emoji: lite")
    (tmp_path / "personas" / "tiny.yaml").write_text(broken, encoding="utf-8")
    out = run_check(ROOT / "dialogs", tmp_path / "personas").output
    assert "voice.emoji: must be 'none', 'light' or 'lots'" in out

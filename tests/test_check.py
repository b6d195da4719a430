"""`brandbot check`: every problem as path:line:col: field: fix, exit 1."""

from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from tests.conftest import ROOT, TINY


def run_check(*paths: Path, lang: str = "en"):
    return CliRunner().invoke(main, ["check", "--lang", lang, *map(str, paths)])


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
    # Reported where the bracket opens, not where PyYAML noticed it.
    assert f"{broken}:2:8: YAML syntax error: the [ opened here is never closed" in result.output
    assert "    2 | brand: [oops\n" in result.output


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
    # No suggestion when nothing is close.
    assert "unknown state 'zz'; use one of: a, b, or '*' for any state\n" in out
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
    assert "(did you mean 'hours'?)" in out
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


def test_from_an_empty_folder_check_says_what_to_do_instead_of_checking_the_install(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "--lang", "en"])
    assert result.exit_code == 2
    assert "no ./personas or ./dialogs folder here" in result.output
    assert "ok:" not in result.output


def test_check_defaults_to_the_working_folder_and_names_each_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("personas").mkdir()
    Path("dialogs").mkdir()
    Path("personas/tiny.yaml").write_text(TINY.read_text(encoding="utf-8"), encoding="utf-8")
    Path("dialogs/default.yaml").write_text(
        (ROOT / "dialogs" / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    Path("personas/broken.yaml").write_text("id: b\nbrand: [x\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--lang", "en"])
    lines = result.output.splitlines()
    assert result.exit_code == 1
    assert "ok: personas/tiny.yaml" in lines and "ok: dialogs/default.yaml" in lines
    assert "1 problem(s): personas/broken.yaml" in lines
    assert str(ROOT / "personas") not in result.output  # not the installed checkout's files


def test_messages_follow_the_locale_or_lang(tmp_path, monkeypatch):
    broken = tmp_path / "p.yaml"
    broken.write_text("id: x\nfacts:\n  hours: 9\n   parking: 5\n", encoding="utf-8")
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    chinese = CliRunner().invoke(main, ["check", str(broken)])
    assert "第 4 行缩进了 3 个空格，而前后的行用的是 2 个" in chinese.output
    english = CliRunner().invoke(main, ["check", "--lang", "en", str(broken)])
    assert "line 4 is indented 3 spaces; the lines around it use 2" in english.output
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.setenv("LC_ALL", "zh_TW.UTF-8")
    # zh_TW (and zh_HK) read Traditional characters: the zh_TW catalog
    assert "YAML 語法錯誤" in CliRunner().invoke(main, ["check", str(broken)]).output
    # The command's choice does not leak into later messages of the same process.
    assert "YAML syntax error" in run_check(broken).output


def test_unknown_fields_suggest_the_name_meant(tmp_path):
    text = TINY.read_text(encoding="utf-8").replace("  emoji: none", "  emojis: none")
    text = text.replace("    keywords: {zh: [营业时间]", "    keyword: {zh: [营业时间]")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    out = run_check(broken).output
    assert "voice.emojis: unknown field 'emojis'" in out and "did you mean 'emoji'?" in out
    assert "intents.hours.keyword: unknown field 'keyword'" in out
    assert "did you mean 'keywords'?" in out
    # Structure problems show their line too; a missing field's parent line is not shown.
    assert out.split("unknown field 'emojis'")[1].splitlines()[2].endswith("|   ^")
    assert "  emojis: none" in out.split("unknown field 'emojis'")[1].splitlines()[1]
    assert "（是不是要写 'emoji'？）" in run_check(broken, lang="zh").output


def test_syntax_errors_in_one_file_and_structure_errors_in_another_in_one_run(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "id: a\nbrand:\n\tzh: x\nidentity: {name: 营业时间: 9点}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        TINY.read_text(encoding="utf-8").replace("  emoji: none", "  emoji: lite"),
        encoding="utf-8")
    out = run_check(tmp_path).output
    assert f"{tmp_path / 'a.yaml'}:3:1: YAML syntax error: line 3 is indented with a tab" in out
    assert f"{tmp_path / 'a.yaml'}:4:" in out
    assert "voice.emoji: must be 'none', 'light' or 'lots'" in out


def test_a_file_saved_with_a_bom_and_windows_line_endings_is_fine(tmp_path):
    saved = tmp_path / "windows.yaml"
    text = TINY.read_text(encoding="utf-8").replace("\n", "\r\n")
    saved.write_bytes("\ufeff".encode() + text.encode("utf-8"))
    result = run_check(saved)
    assert result.exit_code == 0, result.output
    assert f"ok: {saved}" in result.output


def test_hostile_file_names_and_keys_are_shown_escaped(tmp_path):
    # A persona from a pull request: its file name and a quoted key ("\e" is ESC in YAML)
    # carry an OSC sequence (retitles the terminal) and a bidi override. check shows them
    # escaped, on stdout and stderr, like every other command printing foreign text.
    name = "evil\x1b]0;owned\x07\u202e.yaml"
    (tmp_path / name).write_text('id: x\n"\\e]0;pwn\\a\\u202eK": 1\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--lang", "en", str(tmp_path)])
    assert result.exit_code == 1
    for out in (result.output, result.stderr):
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in out, (raw, out)
    assert "evil\\x1b]0;owned\\x07\\u202e.yaml" in result.output
    assert "\\x1b]0;pwn\\x07\\u202eK" in result.output

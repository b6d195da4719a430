"""The brandbot command as a user runs it: real subprocesses where stdin/TTY matter."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys

from click.testing import CliRunner

from bot.cli import main
from tests.conftest import ROOT, TINY


def brandbot(*args: str, stdin: str = "", cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=120,
    )


def test_piped_chat_prints_one_reply_per_line_and_continues_across_runs(tmp_path):
    db = tmp_path / "t.db"
    first = brandbot(
        "chat", "--db", str(db), "--persona", str(TINY), stdin="几点开门\n有停车位吗\n"
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "欢迎来到小店，local-fan！",
        "营业时间：每天9点到21点",
        "停车：门口有5个车位",
    ]
    second = brandbot("chat", "--db", str(db), "--persona", str(TINY), stdin="subscribe\nyes\n")
    assert second.stdout.splitlines() == [
        "Subscribe to our news? Reply yes or no",
        "Subscribed. Reply unsubscribe any time",
    ]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM fans").fetchone()[0] == 1
        assert conn.execute("SELECT subscribed FROM fans").fetchone()[0] == 1


def test_demo_persona_answers_the_readme_script(tmp_path):
    out = brandbot("chat", "--db", str(tmp_path / "t.db"), stdin="你好\n你们几点开门\n有停车位吗\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) >= 3
    assert "11:00" in out.stdout and "6 个车位" in out.stdout  # hours and parking, from the facts
    with sqlite3.connect(tmp_path / "t.db") as conn:
        keys = [r[0] for r in conn.execute("SELECT reply_key FROM messages WHERE direction='out'")]
    assert "error" not in keys and {"welcome", "hours", "parking"} <= set(keys)


def test_lang_option_forces_the_reply_language(tmp_path):
    # In process (the pipe itself has its own tests above): what matters here is --lang.
    out = CliRunner().invoke(
        main, ["chat", "--db", str(tmp_path / "t.db"), "--persona", str(TINY), "--lang", "en"],
        input="几点开门\n",
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[-1] == "Hours: 9am to 9pm daily"


def test_fans_lists_the_log(tmp_path):
    db = tmp_path / "t.db"
    said = CliRunner().invoke(main, ["chat", "--db", str(db), "--persona", str(TINY),
                                     "--fan", "阿明"], input="你好\n")
    assert said.exit_code == 0, said.output
    out = CliRunner().invoke(main, ["fans", "--db", str(db)])
    assert out.exit_code == 0
    assert "阿明" in out.output and "stranger" in out.output and "1 fan(s)" in out.output
    rows = [
        json.loads(line)
        for line in CliRunner()
        .invoke(main, ["fans", "--db", str(db), "--json"])
        .output.splitlines()
    ]
    assert rows[0]["display_name"] == "阿明" and rows[0]["channel"] == "console"


def test_handoff_end_from_the_command_line(tmp_path):
    db = tmp_path / "t.db"
    said = CliRunner().invoke(main, ["chat", "--db", str(db), "--persona", str(TINY)],
                              input="我要投诉\n")
    assert said.exit_code == 0, said.output
    listed = CliRunner().invoke(main, ["handoff", "list", "--db", str(db)])
    assert "local-fan" in listed.output and "1 conversation(s)" in listed.output
    ended = CliRunner().invoke(main, ["handoff", "end", "local-fan", "--db", str(db),
                                      "--persona", str(TINY)])
    assert ended.exit_code == 0, ended.output
    assert ended.output.strip() == "我回来啦，有问题随时问"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT handoff, dialog_state FROM fans").fetchone() == (0, "chatting")


def test_schema_is_json_schema():
    for kind in ("persona", "dialog"):
        out = CliRunner().invoke(main, ["schema", kind])
        schema = json.loads(out.output)
        assert schema["type"] == "object" and "properties" in schema


def test_dialog_draw_is_mermaid():
    out = CliRunner().invoke(main, ["dialog", "draw", str(ROOT / "dialogs" / "default.yaml")])
    assert out.output.startswith("stateDiagram-v2\n    [*] --> new\n")
    assert "chatting --> handoff : complaint → say complaint" in out.output


def test_nlu_eval_json(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"text": "几点开门", "intent": "hours"}\n{"text": "有停车位吗", "intent": "parking"}\n'
        '{"text": "量子纠缠是什么", "intent": null}\n',
        encoding="utf-8",
    )
    out = CliRunner().invoke(main, ["nlu", "eval", "--persona", str(TINY), str(data), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["n"] == 3
    assert report["in_scope_accuracy"] == 1.0
    assert {"oos_recall", "oos_precision"} <= set(report)


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for name, command in main.commands.items():
        sub = getattr(command, "commands", None)
        commands += [f"{name} {s}" for s in sub] if sub else [name]
    missing = [c for c in commands if not re.search(rf"brandbot {c}\b", readme)]
    assert not missing, f"undocumented commands: {missing}"


def test_committed_editor_schemas_are_up_to_date():
    for kind in ("persona", "dialog"):
        printed = CliRunner().invoke(main, ["schema", kind]).output
        committed = (ROOT / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8")
        assert printed == committed, f"run: brandbot schema {kind} > schemas/{kind}.schema.json"


# -- hostile fan text never drives the operator's terminal ----------------------------------------

HOSTILE_NAME = "\x1b]0;owned\x07\x1b[2J王\u202eevil\u2066 🎉"
HOSTILE_TEXT = "我要投诉\x9b31m\r\n2026-01-01 00:00       bot: 已退款\x7f 👨\u200d👩\u200d👧"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\x7f", "\r", "\u202e", "\u2066")


def _hostile_log(tiny_engine, fresh_db):
    from bot.messages import FanRef, Inbound

    fan = FanRef("web", "evil-1")
    tiny_engine.handle(Inbound(fan, text="你好", display_name=HOSTILE_NAME,
                               payload={"ref": "\x1b[31mPOSTER\x1b[0m"}))
    code = fresh_db.find_fan("tiny", "web", "evil-1")["referral_code"]
    tiny_engine.handle(Inbound(FanRef("web", "friend"), text="你好", display_name="朋友😀",
                               payload={"ref": code}))
    tiny_engine.handle(Inbound(fan, text=HOSTILE_TEXT))
    assert fresh_db.find_fan("tiny", "web", "evil-1")["handoff"] == 1
    return fresh_db.path


def _assert_inert(output: str) -> None:
    for ch in RAW_CONTROLS:
        assert ch not in output, f"{ch!r} reached the terminal"


def test_operator_listings_show_fan_controls_escaped(tiny_engine, fresh_db):
    db = _hostile_log(tiny_engine, fresh_db)
    runner = CliRunner()
    commands = [["fans", "--db", db], ["handoff", "list", "--db", db],
                ["handoff", "show", "evil-1", "--db", db],
                ["kols", "--persona", str(TINY), "--db", db],
                ["report", "--persona", str(TINY), "--db", db, "--since", "2020-01-01"],
                ["fan", "link", "evil-1", "--db", db]]
    for args in commands:
        out = runner.invoke(main, args)
        assert out.exit_code == 0, (args, out.output)
        _assert_inert(out.output)
        # the rest shows as it is (a long name cut to fit 100 columns, still escaped)
        assert ("朋友😀" in out.output or "evil" in out.output
                or "\\x1b]0;owned" in out.output), args
    show = runner.invoke(main, ["handoff", "show", "evil-1", "--db", db]).output
    assert "\\x1b]0;owned\\x07\\x1b[2J王\\u202eevil\\u2066 🎉" in show
    # The fan's line feed cannot forge a bot line: what follows it is indented as part of
    # the fan's message, never at the start of a line like a real entry.
    lines = show.splitlines()
    first = next(i for i, x in enumerate(lines) if "我要投诉" in x)
    assert lines[first].endswith("我要投诉\\x9b31m\\x0d")
    forged = lines[first + 1]
    family = "👨\u200d👩\u200d👧"
    assert forged.startswith(" " * 28 + f"2026-01-01 00:00       bot: 已退款\\x7f {family}")
    assert all(x[:4].isdigit() or x.startswith((" ", "fan ")) for x in lines)
    listed = runner.invoke(main, ["fans", "--db", db]).output
    assert "\\x1b]0;owned" in listed and "朋友😀" in listed


def test_json_outputs_escape_what_json_leaves_raw_and_parse_back(tiny_engine, fresh_db):
    db = _hostile_log(tiny_engine, fresh_db)
    runner = CliRunner()
    for args in (["fans", "--json", "--db", db], ["fan", "export", "evil-1", "--db", db],
                 ["kols", "--json", "--persona", str(TINY), "--db", db],
                 ["report", "--json", "--persona", str(TINY), "--db", db]):
        out = runner.invoke(main, args)
        assert out.exit_code == 0, (args, out.output)
        _assert_inert(out.output)
    exported = json.loads(runner.invoke(main, ["fan", "export", "evil-1", "--db", db]).output)
    assert exported["fan"]["display_name"] == HOSTILE_NAME  # the same data once parsed
    assert HOSTILE_TEXT in [m["text"] for m in exported["messages"]]


def test_forget_prompt_and_errors_escape_the_fan_name(tiny_engine, fresh_db):
    db = _hostile_log(tiny_engine, fresh_db)
    out = CliRunner().invoke(main, ["fan", "forget", "evil-1", "--db", db], input="n\n")
    assert out.exit_code == 1
    _assert_inert(out.output)
    assert "\\x1b]0;owned" in out.output


def test_terminal_safe_keeps_cjk_and_emoji_and_escapes_the_rest():
    from bot.tables import display_width, format_table, terminal_safe

    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    emoji = "👍🏽 👨\u200d👩\u200d👧 ❤\ufe0f"
    for text in ("老王厨房 こんにちは 한국어", emoji, flag, "O'Brien \\x1b"):
        assert terminal_safe(text) == text
    assert terminal_safe("B\u200bob\u200d") == "B\\u200bob\\u200d"  # invisible, not emoji
    assert terminal_safe("\U000e0041\U000e0042") == "\\U000e0041\\U000e0042"  # hidden tags
    assert terminal_safe("a\nb\tc", keep_newlines=True) == "a\nb\tc"
    assert terminal_safe("a\nb") == "a\\x0ab" and terminal_safe("\ud800") == "\\ud800"
    lines = format_table(["fan", "n"], [["王\x1b[2J", 1], ["bob", 22]])
    assert lines[1] == "王\\x1b[2J  1"
    assert display_width(lines[1][:-1]) == display_width(lines[2][:-2])  # still aligned


def test_piped_chat_escapes_control_characters_in_replies(tmp_path):
    # The welcome template says the fan's name; a name (or any reply text) holding ESC
    # sequences or a bidi override must not reach the terminal raw.
    out = brandbot("chat", "--db", str(tmp_path / "t.db"), "--persona", str(TINY),
                   "--fan", "mal\x1b]0;owned\x07\u202eory", stdin="几点开门\n")
    assert out.returncode == 0, out.stderr
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in out.stdout
    assert "mal\\x1b]0;owned\\x07\\u202eory" in out.stdout.splitlines()[0]

"""`brandbot dialog draw` people can read, and `brandbot check` flagging transitions that can
never fire. Real dialog files, the real CLI."""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.dialog.analysis import dead_edges, handoff_flags
from bot.dialog.loader import load_dialog
from tests.conftest import ROOT

DEFAULT = ROOT / "dialogs" / "default.yaml"
ARROW = re.compile(r"^\s+(\w+) --> (\w+) : (.*)$")


def draw(*args: str):
    return CliRunner().invoke(main, ["dialog", "draw", *args])


def arrows(text: str) -> list[tuple[str, str, str]]:
    return [m.groups() for line in text.splitlines() if (m := ARROW.match(line))]


def test_the_default_dialog_is_one_arrow_per_pair_of_states_with_actions_and_replies():
    out = draw(str(DEFAULT))
    assert out.exit_code == 0, out.output
    edges = arrows(out.output)
    pairs = [(a, b) for a, b, _ in edges]
    assert len(pairs) == len(set(pairs)) <= 6  # was 44 arrows for 4 states
    assert all(a != b for a, b in pairs)  # staying put is written inside the state
    labels = dict(((a, b), label) for a, b, label in edges)
    assert labels[("new", "chatting")].startswith("first_contact → say welcome")
    assert "complaint → say complaint, start_handoff, interaction=complaint" in labels[
        ("chatting", "handoff")]
    assert "handoff : otherwise → say handoff_ack" in out.output
    assert "chatting : · not_understood → say fallback" in out.output
    # The contradictory edge is gone from the picture and said to never fire.
    assert "handoff : · follow" not in out.output
    assert re.search(r"%% never fires: transitions\[3\] follow from handoff: .*always in handoff",
                     out.output)


def test_the_handoff_flag_is_followed_through_the_transitions():
    flags = handoff_flags(load_dialog(DEFAULT).spec)
    assert flags["handoff"] == {True}
    assert flags["new"] == {False}
    assert flags["chatting"] == {True, False}  # state_migrations may land anyone there


MINI = """id: mini
initial: chatting
states:
  - chatting
  - handoff
transitions:
  - {trigger: human, source: chatting, dest: handoff, after: [start_handoff]}
  - {trigger: handoff_end, source: handoff, dest: chatting, after: [end_handoff]}
  - {trigger: follow, source: [chatting, handoff], dest: null, unless: [in_handoff]}
  - {trigger: deals, source: chatting, dest: null, after: [{reply: deals_info}]}
  - {trigger: deals, source: chatting, dest: null, conditions: [commercial_allowed]}
  - {trigger: greet, source: chatting, dest: null, conditions: [is_subscribed],
     unless: [is_subscribed]}
  - {trigger: unfollow, source: '*', dest: null, conditions: [in_handoff]}
"""


def test_check_reports_transitions_that_can_never_fire_with_the_line(tmp_path):
    dialog = tmp_path / "mini.yaml"
    dialog.write_text(MINI, encoding="utf-8")
    out = CliRunner().invoke(main, ["check", str(dialog)])
    assert out.exit_code == 1
    text = out.output
    assert (f"{dialog}:9:" in text and "transitions[2].source[1]: 'follow' from 'handoff' can "
            "never fire" in text and "always in handoff" in text)
    assert f"{dialog}:11:" in text and "transitions[4].source: 'deals' from 'chatting'" in text
    assert "transition 3 (the same trigger from 'chatting', without conditions)" in text
    assert f"{dialog}:12:" in text and "'is_subscribed' is both required" in text
    assert f"{dialog}:14:" not in text
    # '*' that applies somewhere (unfollow in handoff) is not a mistake.
    assert "'unfollow'" not in text
    assert len([line for line in text.splitlines() if "can never fire" in line]) == 3


def test_shipped_dialogs_have_no_transition_that_never_fires_except_via_star():
    spec = load_dialog(DEFAULT).spec
    assert {(d.index, d.source) for d in dead_edges(spec)} == {(3, "handoff")}  # '*' source
    out = CliRunner().invoke(main, ["check", str(ROOT / "dialogs"), str(ROOT / "personas")])
    assert out.exit_code == 0, out.output


def test_svg_without_mermaid_cli_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no mmdc anywhere
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    out = draw(str(DEFAULT), "--format", "svg", "-o", str(tmp_path / "d.svg"))
    assert out.exit_code == 2
    assert "npm install -g @mermaid-js/mermaid-cli" in out.output and "mermaid.live" in out.output
    assert not (tmp_path / "d.svg").exists()
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    out = draw(str(DEFAULT), "--format", "png")
    assert out.exit_code == 2 and "无法生成 png 图片" in out.output


def test_svg_is_rendered_by_the_mmdc_on_the_path(tmp_path, monkeypatch):
    # A stand-in for mermaid-cli with its command line (-i in -o out -e fmt): it checks that
    # it received the Mermaid text and writes the output file, as mmdc does.
    fake = tmp_path / "bin" / "mmdc"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "text = open(args['-i'], encoding='utf-8').read()\n"
        "assert text.startswith('stateDiagram-v2'), text[:40]\n"
        "open(args['-o'], 'w').write('<svg><!-- ' + args['-e'] + ' --></svg>')\n",
        encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    out = draw(str(DEFAULT), "--format", "svg")
    assert out.exit_code == 0, out.output
    assert Path("default.svg").read_text() == "<svg><!-- svg --></svg>"

"""`brandbot check` warns when a text hard-codes what a fact says, or a copied persona's names.

Warnings are printed like problems (path:line:col: field: warning: …) but `check` still exits 0.
"""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.conftest import ROOT, TINY

LAOWANG = ROOT / "personas" / "laowang-kitchen.yaml"

FACTS = """facts:
  hours: {zh: 周二至周日 9:00–21:00，周一店休, en: "Tue–Sun 9am–9pm, closed Mondays"}
  parking: {zh: 门口有5个车位, en: five spaces out front}
  price: {zh: 人均 38 元，拿铁 4.50 美元, en: "about ¥38 a head, a latte is $4.50"}
  phone: 028-8555-6688
  address: {zh: 成都市武侯区玉林西路 66 号, en: "66 Yulin West Road, Wuhou District, Chengdu"}
"""
GREET = "  greet: {zh: [你好呀, 又见面啦], en: [hi again, hello again]}"


def run_check(*paths: Path, lang: str = "en"):
    return CliRunner().invoke(main, ["check", "--lang", lang, *map(str, paths)])


def tiny_with(tmp_path: Path, zh: str = "你好呀", en: str = "hi again", name="mine.yaml") -> Path:
    """The tiny test persona with richer facts and the given greet replies."""
    text = TINY.read_text(encoding="utf-8")
    text = re.sub(r"facts:\n(  .*\n)+", FACTS, text, count=1)
    assert GREET in text
    greet = (f"  greet:\n    zh: [{json.dumps(zh, ensure_ascii=False)}]\n"
             f"    en: [{json.dumps(en, ensure_ascii=False)}]")
    path = tmp_path / name
    path.write_text(text.replace(GREET, greet), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def warnings_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if ": warning: " in line or ": 警告：" in line]


def test_the_issue_edited_hours_warn_at_the_stale_welcome_and_reply(tmp_path):
    """The issue: hours become 每天 7:00–20:00, yet the welcome says （周一除外） and a reply says
    "Mondays we rest" — `check` used to pass silently."""
    text = LAOWANG.read_text(encoding="utf-8")
    text = re.sub(r"  hours:\n    zh: .*\n    en: .*\n", "  hours: 每天 7:00–20:00\n", text,
                  count=1)
    text = text.replace("{brand}的灶台开火啦😄 我是{me}",
                        "{brand}的门一直开着（周一除外😄）。我是{me}")
    text = text.replace("{hours}. Check before you come, so you don't make the trip for nothing!",
                        "{hours}. Mondays we rest, so don't make the trip!")
    copy = tmp_path / "laowang-kitchen.yaml"
    copy.write_text(text, encoding="utf-8")
    result = run_check(copy)
    assert result.exit_code == 0, result.output
    found = warnings_in(result.output)
    welcome = line_of(copy, "周一除外")
    reply = line_of(copy, "Mondays we rest")
    assert any(w.startswith(f"{copy}:{welcome}:") and "replies.welcome.zh[1]" in w
               and "use {hours} instead of '周一除外'" in w for w in found), result.output
    assert any(w.startswith(f"{copy}:{reply}:") and "replies.hours.en[1]" in w
               and "use {hours} instead of 'Mondays we rest'" in w for w in found), result.output
    assert "2 warning(s)" in result.output


@pytest.mark.parametrize(
    ("language", "reply", "quoted", "fact"),
    [
        ("zh", "我们晚上9点关门", "晚上9点关门", "hours"),
        ("en", "we close at 9pm sharp", "9pm sharp", "hours"),
        ("zh", "早上7点就开门啦", "早上7点就开门啦", "hours"),  # in no fact: contradicts hours
        ("zh", "礼拜一休息哦", "礼拜一休息哦", "hours"),
        ("en", "closed on Monday, sorry", "Monday", "hours"),
        ("zh", "人均38块吃饱", "38块", "price"),
        ("en", "about ¥38 each", "¥38", "price"),
        ("en", "latte: $4.50 only", "$4.50", "price"),
        ("zh", "订位请打 028-8555-6688", "028-8555-6688", "phone"),
        ("en", "call us on 02885556688", "02885556688", "phone"),
        ("zh", "我们在玉林西路等你", "玉林西路", "address"),
        ("en", "find us on Yulin West Road", "Yulin West Road", "address"),
    ],
)
def test_each_kind_of_value_is_warned_in_both_languages(tmp_path, language, reply, quoted, fact):
    path = tiny_with(tmp_path, **{language: reply})
    result = run_check(path)
    assert result.exit_code == 0, result.output
    line = line_of(path, reply)
    found = [w for w in warnings_in(result.output) if w.startswith(f"{path}:{line}:")]
    assert len(found) == 1, result.output
    assert f"replies.greet.{language}[0]" in found[0]
    assert f"use {{{fact}}} instead of {quoted!r}" in found[0]


def test_warnings_are_phrased_in_chinese_too(tmp_path):
    path = tiny_with(tmp_path, zh="礼拜一休息哦")
    result = run_check(path, lang="zh")
    assert result.exit_code == 0
    assert any("警告：写死了星期「礼拜一」" in w and "请用 {hours} 代替「礼拜一休息哦」" in w
               for w in warnings_in(result.output)), result.output
    assert "1 个警告" in result.output


def test_values_that_belong_to_no_fact_and_quoted_examples_are_not_warned(tmp_path):
    path = tiny_with(
        tmp_path,
        zh="稍等3分钟，2号线也能到，一点点小心意，每周一封信，问问「周一开吗」，一百万元的笑话",
        en='give me 3 minutes, line 2, table for 4, a ¥999 joke, ask "open on Monday?", '
           "{hours} and {phone}",
    )
    result = run_check(path)
    assert result.exit_code == 0, result.output
    assert warnings_in(result.output) == []
    assert "warning" not in result.output


def test_demo_personas_pass_without_warnings():
    result = run_check(ROOT / "personas", ROOT / "dialogs")
    assert result.exit_code == 0, result.output
    assert warnings_in(result.output) == []
    assert "warning" not in result.output


def test_a_copied_persona_still_saying_the_source_names_is_warned(tmp_path):
    path = tiny_with(tmp_path, zh="老王在呢，你说", en="juniper here, go ahead")
    result = run_check(path)
    assert result.exit_code == 0, result.output
    found = warnings_in(result.output)
    zh_line, en_line = line_of(path, "老王在呢"), line_of(path, "juniper here")
    assert any(w.startswith(f"{path}:{zh_line}:") and "'老王'" in w
               and "persona 'laowang-kitchen'" in w for w in found), result.output
    assert any(w.startswith(f"{path}:{en_line}:") and "'Juniper'" in w
               and "persona 'northbound-coffee'" in w for w in found), result.output


def test_a_persona_own_names_are_not_foreign(tmp_path):
    """The laowang persona copied elsewhere (same names) says 老王 everywhere: that is its own."""
    copy = tmp_path / "laowang-copy.yaml"
    copy.write_text(LAOWANG.read_text(encoding="utf-8"), encoding="utf-8")
    result = run_check(copy)
    assert result.exit_code == 0, result.output
    assert warnings_in(result.output) == []


def test_values_mean_the_same_across_languages():
    from bot.persona.fact_lint import find_values

    meanings = {(v.kind, v.meaning) for v in find_values(
        "晚上9点 9pm 21:00 周一 礼拜一 星期一 Monday ¥38 38元 38块 028-8555-6688 +86 28 8555 6688"
    )}
    assert meanings == {("time", "21:00"), ("weekday", "mon"), ("price", "CNY 38"),
                        ("phone", "02885556688")}


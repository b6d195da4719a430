"""The CLI in the operator's language: catalogs complete and compiled, language from the locale
or --lang, help texts and click's own words translated (bot/i18n.py, docs/i18n.md)."""

from __future__ import annotations

import ast
import gettext
import os
import shutil
import string
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner

from bot import i18n
from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "bot" / "locale"
CATALOGS = sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))


def _po(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def _extracted() -> set[tuple[str | None, str]]:
    """(context, msgid) of every message in bot/, extracted as babel.cfg says."""
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT / "bot"), method_map=[("**.py", "bot.i18n_extract.extract")]
    ):
        found.add((context, message if isinstance(message, str) else message[0]))
    return found


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG",
                                                              "LANGUAGE")}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True,
                          text=True, encoding="utf-8", env={**clean, **env}, cwd=ROOT,
                          timeout=120)


# -- choosing the language ------------------------------------------------------------------------


@pytest.mark.parametrize(("environ", "expected"), [
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_SG.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_TW.UTF-8"}, "zh_TW"),
    ({"LANG": "zh_HK.Big5"}, "zh_TW"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_US.UTF-8"}, "en"),  # LC_ALL wins
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_TW.UTF-8"}, "zh_TW"),
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": ""}, "zh_CN"),  # an empty variable is not set
])
def test_the_locale_chooses_the_language(environ, expected):
    assert i18n.locale_language(environ) == expected


def test_lang_names_normalise():
    assert [i18n.normalize(v) for v in ("zh", "zh-CN", "zh_Hans", "zh-TW", "zh_Hant_HK",
                                        "en", "fr_FR", "")] == [
        "zh_CN", "zh_CN", "zh_CN", "zh_TW", "zh_TW", "en", "en", "en"]


# -- the catalogs ---------------------------------------------------------------------------------


def test_every_message_in_the_code_has_a_chinese_translation():
    """No CLI string left in English: every msgid pybabel extracts is translated, in zh_CN
    and zh_TW, and not marked fuzzy."""
    extracted = _extracted()
    assert len(extracted) > 250  # the extractor found the code's messages (help texts too)
    for lang in ("zh_CN", "zh_TW"):
        catalog = _po(LOCALE / lang / "LC_MESSAGES" / "brandbot.po")
        untranslated = []
        for context, msgid in sorted(extracted, key=lambda k: (k[0] or "", k[1])):
            message = catalog.get(msgid, context=context)
            if message is None or not message.string or message.fuzzy:
                untranslated.append(msgid)
        assert not untranslated, f"{lang}: run pybabel update and translate: {untranslated}"


def test_the_template_is_up_to_date():
    """bot/locale/brandbot.pot lists exactly what the code marks (pybabel extract was run)."""
    template = {(m.context, m.id) for m in _po(LOCALE / "brandbot.pot") if m.id}
    assert template == _extracted()


def test_every_help_text_of_the_cli_is_translated():
    texts = i18n.all_help_texts(main)
    assert len(texts) > 100
    zh = i18n.translations("zh_CN")
    click_zh = i18n.translations("zh_CN", i18n.CLICK_DOMAIN)
    missing = [t for t in texts if zh.gettext(t) == t and click_zh.gettext(t) == t]
    assert not missing


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: str(p.relative_to(LOCALE)))
def test_the_compiled_catalog_matches_its_po(po: Path, tmp_path):
    """The shipped .mo holds exactly the .po's translations: a .po edited without
    `pybabel compile` fails here."""
    catalog = _po(po)
    shipped = po.with_suffix(".mo")
    assert shipped.exists(), f"run: pybabel compile -d bot/locale -D {po.stem}"
    fresh = tmp_path / "fresh.mo"
    with fresh.open("wb") as f:
        write_mo(f, catalog)
    with shipped.open("rb") as f:
        have = gettext.GNUTranslations(f)._catalog
    with fresh.open("rb") as f:
        want = gettext.GNUTranslations(f)._catalog
    have.pop("", None), want.pop("", None)  # the header (dates)
    assert have == want, f"run: pybabel compile -d bot/locale -D {po.stem}"


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: str(p.relative_to(LOCALE)))
def test_translations_keep_valid_placeholders(po: Path):
    """A translation with a broken {…} would crash the command that shows it."""
    for message in _po(po):
        if not message.id or "python-brace-format" not in message.flags:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
            assert all(f and not f.isdigit() for f in fields), (message.id, text)


def test_no_translation_call_hides_inside_an_f_string():
    """pybabel (on Python 3.11) cannot see ``_()`` inside an f-string: such a message would
    never reach the catalog."""
    hidden = []
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                for inner in ast.walk(node):
                    if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
                            and inner.func.id in ("_", "gettext", "ngettext", "pgettext")):
                        hidden.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert not hidden


def _assigned_names(function: ast.AST) -> set[str]:
    """Names a function assigns in its own scope (not in comprehensions or nested defs)."""
    found, todo = set(), list(ast.iter_child_nodes(function))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ListComp
                      | ast.SetComp | ast.DictComp | ast.GeneratorExp | ast.ClassDef):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return found


def test_no_function_shadows_the_translation_function():
    """``x, _ = pair()`` in a function that also calls ``_()`` makes ``_`` local there: the
    message would raise UnboundLocalError (or, for ``columns = [...]``, a TypeError)."""
    shadowing = []
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            called = {n.func.id for n in ast.walk(node)
                      if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            for name in {"_", "columns", "pgettext"} & called & _assigned_names(node):
                shadowing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {name}")
    assert not shadowing


def test_the_package_ships_the_compiled_catalogs(tmp_path):
    """A non-editable install finds its .mo files: they are in the wheel (built from a clean
    copy of the sources, so no earlier build/ folder can supply them)."""
    source = tmp_path / "src"
    shutil.copytree(ROOT / "bot", source / "bot",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True,
                   timeout=600)
    (wheel,) = (tmp_path / "dist").glob("brandbot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for lang in ("zh_CN", "zh_TW"):
        for domain in ("brandbot", "click"):
            assert f"bot/locale/{lang}/LC_MESSAGES/{domain}.mo" in names


# -- commands in Chinese and English --------------------------------------------------------------


def test_help_follows_lang_env():
    chinese = _run("--help", LANG="zh_CN.UTF-8")
    assert chinese.returncode == 0
    assert "用法:" in chinese.stdout and "选项:" in chinese.stdout and "命令:" in chinese.stdout
    assert "让品牌在聊天里有人情味" in chinese.stdout
    assert "检查人格和对话文件（默认 ./personas 和 ./dialogs）" in chinese.stdout  # summaries
    assert "显示此帮助并退出" in chinese.stdout and "显示版本并退出" in chinese.stdout
    sub = _run("check", "--help", LANG="zh_CN.UTF-8")
    assert "用法:" in sub.stdout and "逐条列出问题" in sub.stdout
    traditional = _run("doctor", "--help", LC_ALL="zh_HK.UTF-8", LANG="en_US.UTF-8")
    assert "檢查部署是否正常" in traditional.stdout and "选项" not in traditional.stdout
    english = _run("--help", LANG="en_US.UTF-8")
    assert "Usage:" in english.stdout and "Options:" in english.stdout
    assert "a brand's human voice in chat" in english.stdout
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in english.stdout.split("Commands:")[1]
                   .replace("守护进程自动执行的定时任务", ""))


def test_chinese_help_fits_the_terminal():
    """click counts characters; a CJK character takes two columns, so Chinese help is wrapped
    by columns (bot/i18n.py) and fits an 80-column terminal like the English one."""
    from bot.tables import display_width

    for args in (["--help"], ["check", "--help"], ["fans", "--help"], ["doctor", "--help"]):
        out = _run(*args, LANG="zh_CN.UTF-8", COLUMNS="80").stdout
        assert max(display_width(line) for line in out.splitlines()) <= 80, out
        assert "，。" not in out and "\n。" not in out and "\n，" not in out


def test_lang_option_beats_the_locale():
    assert "Usage:" in _run("--lang", "en", "check", "--help", LANG="zh_CN.UTF-8").stdout
    assert "用法:" in _run("--lang", "zh", "check", "--help", LANG="en_US.UTF-8").stdout
    assert "用法:" in _run("check", "--lang", "zh", "--help", LANG="en_US.UTF-8").stdout
    assert "檢查人格" in _run("--lang", "zh_TW", "check", "--help").stdout


def test_usage_errors_in_chinese():
    result = CliRunner().invoke(main, ["--lang", "zh", "nope"])
    assert result.exit_code == 2
    assert "用法:" in result.output and "错误：没有 'nope' 这个命令。" in result.output
    english = CliRunner(env={"LANG": "C.UTF-8", "LC_ALL": None}).invoke(main, ["nope"])
    assert "Error: No such command 'nope'." in english.output


def test_command_errors_in_chinese_and_english(tmp_path):
    missing = str(tmp_path / "none.db")
    zh = CliRunner(env={"LC_ALL": "zh_CN.UTF-8"}).invoke(main, ["jobs", "list", "--db", missing])
    assert zh.exit_code == 1
    assert f"错误：{missing} 没有数据库；请先运行 `brandbot serve` 或 `brandbot chat`" in zh.output
    en = CliRunner(env={"LC_ALL": "en_US.UTF-8"}).invoke(main, ["jobs", "list", "--db", missing])
    assert en.output == (f"error: no database at {missing}; run `brandbot serve` or "
                         "`brandbot chat` first, or pass --db\n")


def test_check_in_chinese_from_the_locale(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner(env={"LANG": "zh_CN.UTF-8", "LC_ALL": None}).invoke(main, ["check"])
    assert result.exit_code == 2
    assert "错误：当前目录下没有 ./personas 或 ./dialogs 文件夹" in result.output
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "p.yaml").write_text("id: x\n", encoding="utf-8")
    result = CliRunner(env={"LANG": "zh_TW.UTF-8", "LC_ALL": None}).invoke(main, ["check"])
    assert "個檔案中有" in result.output and "個問題" in result.output


def test_persona_problems_in_chinese(tmp_path):
    """The structural errors of `check` (persona lint) come from the catalog too."""
    text = (ROOT / "personas" / "laowang-kitchen.yaml").read_text(encoding="utf-8")
    assert "    reply: deals_info\n" in text
    broken = tmp_path / "laowang-kitchen.yaml"
    broken.write_text(text.replace("    reply: deals_info\n", "    reply: nope_info\n"),
                      encoding="utf-8")
    zh = CliRunner().invoke(main, ["--lang", "zh", "check", str(broken)])
    assert zh.exit_code == 1
    assert "没有定义回复 'nope_info'；请在 replies 下添加" in zh.output
    en = CliRunner().invoke(main, ["--lang", "en", "check", str(broken)])
    assert "reply key 'nope_info' is not defined; add it under replies" in en.output


def test_tables_and_reports_in_chinese(tmp_path):
    """Table headers (bot.i18n.columns) and the report's titles are translated too."""
    from bot.relations import Store

    db = str(tmp_path / "log.db")
    Store(db).close()
    report = CliRunner().invoke(main, ["--lang", "zh", "report", "--db", db])
    assert report.exit_code == 0, report.output
    assert "brandbot 报告 — 全部人格" in report.output and "各阶段粉丝数（漏斗）" in report.output
    assert "（无）" in report.output
    listing = CliRunner().invoke(main, ["--lang", "zh_TW", "campaign", "list", "--db", db])
    assert listing.output.splitlines()[0].split() == ["名稱", "活動碼", "人設", "粉絲數", "創建於"]
    english = CliRunner().invoke(main, ["--lang", "en", "campaign", "list", "--db", db])
    assert english.output.splitlines()[0].split() == ["name", "code", "persona", "fans",
                                                      "created"]


def test_the_language_does_not_outlive_the_command():
    """A command run in-process (tests, CliRunner) leaves library messages in English."""
    assert i18n.language() == "en"
    CliRunner().invoke(main, ["--lang", "zh", "check", "--help"])
    assert i18n.language() == "en"
    from bot.commands.doctor import doctor

    CliRunner().invoke(doctor, ["--lang", "zh_TW", "--help"])
    assert i18n.language() == "en" and i18n.gettext("YAML syntax error") == "YAML syntax error"


def test_pick_follows_the_catalog():
    previous = i18n.language()
    try:
        i18n.set_language("zh_TW")
        assert i18n.pick("YAML syntax error", "YAML 语法错误") == "YAML 語法錯誤"  # the catalog
        assert i18n.pick("not in any catalog", "没有翻译") == "沒有翻譯"  # converted with OpenCC
        i18n.set_language("en")
        assert i18n.pick("not in any catalog", "没有翻译") == "not in any catalog"
    finally:
        i18n.set_language(previous)

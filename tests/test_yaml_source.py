import pytest

from bot.errors import ConfigError
from bot.i18n import language, set_language
from bot.yaml_source import load_yaml
from tests.conftest import TINY

TINY_LINES = TINY.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def chinese():
    previous = language()
    set_language("zh")
    yield
    set_language(previous)


def _line_of(marker: str) -> int:
    return next(n for n, line in enumerate(TINY_LINES, 1) if marker in line)


def _edit(marker: str, new: str) -> str:
    """The tiny persona with the line containing ``marker`` replaced by ``new``."""
    n = _line_of(marker)
    return "\n".join(TINY_LINES[: n - 1] + [new] + TINY_LINES[n:]) + "\n"


def _problems(text: str) -> list:
    with pytest.raises(ConfigError) as err:
        load_yaml("p.yaml", text=text)
    return err.value.problems


# (name, marker of the line to break, the broken line, column, English hint, Chinese hint)
BROKEN = [
    ("3-space indent", "  parking: {zh: 门口", "   parking: {zh: 门口有5个车位}", 4,
     "line {n} is indented 3 spaces; the lines around it use 2", "缩进了 3 个空格"),
    ("3-space indent of a nested key", "      en: [hello, hi",
     "     en: [hello, hi]", 6, "line {n} is indented 5 spaces", "缩进了 5 个空格"),
    ("de-indented key with its own line after", "  sign_off: {zh: 小安",
     " sign_off: {zh: 小安, en: An}", 2, "line {n} is indented 1 space; the lines around it "
     "use 2", "前后的行用的是 2 个"),
    ("de-indented fact at the top level", "  hours: {zh: 每天", "hours: {zh: 每天9点到21点}", 1,
     "line {n} is indented 0 spaces; the lines around it use 2", "缩进了 0 个空格"),
    ("unquoted colon", "  hours: {zh: 每天", "  hours: 营业时间: 9点到21点", 10,
     "text containing ': ' must be quoted", "必须加引号"),
    ("unquoted colon in a list item", "  tone: [plain]", "  tone:\n    - 平和: 亲切: 不啰嗦", 11,
     "text containing ': ' must be quoted", "必须加引号"),
    ("tab indent", "  emoji: none", "\temoji: none", 1,
     "line {n} is indented with a tab", "Tab 缩进"),
    ("unclosed double quote", "  emoji: none", '  emoji: "none', 10,
     'the quote " opened here is never closed', "没有闭合"),
    ("apostrophe inside single quotes", "  emoji: none", "  emoji: 'it's'", 14,
     "text after a closing quote", "引号闭合后还有文字"),
    ("unclosed bracket", "  tone: [plain]", "  tone: [plain", 9,
     "the [ opened here is never closed", "没有闭合"),
    ("unclosed brace", "  hours: {zh: 每天", "  hours: {zh: 每天9点到21点, en: 9am", 10,
     "the { opened here is never closed", "没有闭合"),
]


@pytest.mark.parametrize("name, marker, broken, column, hint, hint_zh", BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_each_broken_file_is_reported_at_the_line_to_fix_with_a_hint(
    name, marker, broken, column, hint, hint_zh
):
    n = _line_of(marker) + broken.count("\n")
    problems = _problems(_edit(marker, broken))
    first = problems[0]
    assert (first.line, first.column) == (n, column), first.render()
    assert hint.replace("{n}", str(n)) in first.message
    assert "expected <block end>" not in first.message and "<scalar>" not in first.message
    # The offending line is shown with a caret under the column.
    rendered = first.render().splitlines()
    assert rendered[0] == str(first)
    assert rendered[1].endswith(broken.splitlines()[-1].replace("\t", "→"))
    assert rendered[2].rstrip().endswith("^")


@pytest.mark.parametrize("name, marker, broken, column, hint, hint_zh", BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_each_hint_is_in_chinese_for_a_chinese_operator(
    chinese, name, marker, broken, column, hint, hint_zh
):
    first = _problems(_edit(marker, broken))[0]
    assert first.message.startswith("YAML 语法错误：") and hint_zh in first.message


def test_the_caret_sits_under_the_column_counting_wide_characters():
    first = _problems(_edit("  emoji: none", "  emoji: '小安's'"))[0]
    _, source, caret = first.render().splitlines()
    gutter = source.index("|") + 2
    # The stray text starts after '小安' (two characters, four columns wide in a terminal).
    assert caret.index("^") == gutter + len("  emoji: '") + 4 + len("'")
    assert first.column == len("  emoji: '小安'") + 1


def test_every_syntax_error_in_a_file_is_reported_in_one_pass():
    text = _edit("  parking: {zh: 门口", "   parking: {zh: 门口有5个车位}")
    lines = text.splitlines()
    tab = next(i for i, line in enumerate(lines) if "emoji: none" in line)
    colon = next(i for i, line in enumerate(lines) if "fan_address" in line)
    lines[tab] = "\temoji: none"
    lines[colon] = "  fan_address: 朋友: friend"
    problems = _problems("\n".join(lines) + "\n")
    assert [p.line for p in problems] == sorted([tab + 1, colon + 1, _line_of("  parking: {zh")])
    assert all(p.source is not None for p in problems)


def test_a_bom_and_windows_line_endings_are_fine():
    text = "\ufeff" + "\r\n".join(TINY_LINES) + "\r\n"
    data, positions = load_yaml("p.yaml", text=text)
    assert data["id"] == "tiny" and data["facts"]["parking"]["zh"] == "门口有5个车位"
    assert positions[("facts", "parking")] == (_line_of("  parking: {zh: 门口"), 3)


def test_a_bom_with_a_syntax_error_still_points_at_the_right_line():
    problems = _problems("\ufeff" + _edit("  tone: [plain]", "   tone: [plain]"))
    assert problems[0].line == _line_of("  tone: [plain]")


def test_a_duplicate_key_says_where_the_first_one_is(chinese):
    problems = _problems(_edit("  parking: {zh: 门口", "  hours: {zh: 九点}"))
    assert problems[0].line == _line_of("  parking: {zh: 门口")
    assert f"第 {_line_of('  hours: {zh: 每天')} 行已有" in problems[0].message
    assert problems[0].render().splitlines()[1].endswith("  hours: {zh: 九点}")


def test_positions_point_at_keys_and_items():
    data, positions = load_yaml("f.yaml", text="a: 1\nb:\n  - x\n  - {c: 2}\n")
    assert data == {"a": 1, "b": ["x", {"c": 2}]}
    assert positions[("b",)] == (2, 1)
    assert positions[("b", 1, "c")] == (4, 6)


def test_yes_and_no_stay_words_true_and_false_are_booleans():
    data, _ = load_yaml("f.yaml", text="yes: 1\nno: 2\nsay: [yes, no, on, off, Y]\nok: true\n")
    assert data == {"yes": 1, "no": 2, "say": ["yes", "no", "on", "off", "Y"], "ok": True}


def test_duplicate_keys_are_reported_with_line():
    with pytest.raises(ConfigError) as err:
        load_yaml("f.yaml", text="a: 1\nb: 2\na: 3\n")
    assert str(err.value.problems[0]).startswith("f.yaml:3:1: a: duplicate key")


def test_syntax_error_has_line_and_column():
    with pytest.raises(ConfigError) as err:
        load_yaml("f.yaml", text="a: [1\nb: 2\n")
    problem = err.value.problems[0]
    # The bracket that is never closed opens on line 1 (PyYAML notices on line 2).
    assert (problem.path, problem.line, problem.column) == ("f.yaml", 1, 4)
    assert "YAML syntax error" in problem.message and "never closed" in problem.message


def test_empty_file_is_an_error():
    with pytest.raises(ConfigError, match="empty"):
        load_yaml("f.yaml", text="\n# nothing\n")


def test_aliases_of_collections_are_refused_so_a_tiny_file_cannot_explode():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
        for i in range(8)
    )
    with pytest.raises(ConfigError) as err:
        load_yaml("bomb.yaml", text=bomb)
    assert "aliases" in str(err.value) and "bomb.yaml:2:" in str(err.value)


@pytest.mark.slow
def test_random_damage_never_crashes_and_always_points_inside_the_file():
    """Hostile input: a persona mangled at random (seeded) gives located problems, not a crash."""
    import random

    rng = random.Random(20261206)
    damage = [" ", "  ", "\t", ": ", ":", '"', "'", "[", "]", "{", "}", "- ", "#", "|", ">",
              "&a ", "*a", "!!python/object ", "\ufeff", "\r"]
    text = "\n".join(TINY_LINES) + "\n"
    for _ in range(400):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(chars))
            if rng.random() < 0.3:
                del chars[at]
            else:
                chars.insert(at, rng.choice(damage))
        broken = "".join(chars)
        try:
            load_yaml("p.yaml", text=broken)
        except ConfigError as err:
            lines = max(1, len(broken.splitlines()))
            for problem in err.problems:
                assert 1 <= problem.line <= lines + 1, (problem, broken)
                assert problem.render().startswith(str(problem))


@pytest.mark.parametrize("line, hint", [
    ("date: 2026-13-45", "not a valid date or number (month must be in 1..12)"),
    ("kind: !!python/object social", "the tag '!!python/object' is not allowed"),
    ("kind: !foo social", "the tag '!foo' is not allowed"),
    ("ratio: !!float abc", "not a valid date or number"),
    ("blob: !!binary xx", "the tag '!!binary' is not allowed"),
])
def test_an_unreadable_value_or_a_tag_is_a_located_problem_not_a_crash(line, hint):
    problems = _problems(f"id: x\nfacts:\n  {line}\n")
    assert (problems[0].line, problems[0].column) == (3, 3 + line.index(":") + 2)
    assert hint in problems[0].message and problems[0].source == f"  {line}"

import pytest

from bot.errors import ConfigError
from bot.yaml_source import load_yaml


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
    assert (problem.path, problem.line) == ("f.yaml", 2)
    assert "YAML syntax error" in problem.message


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

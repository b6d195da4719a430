"""The held-out NLU evaluation sets (tests/data/nlu/*-dev|test.jsonl) are well-formed.

A broken line, a misspelt intent or a sentence present in both dev and test would
silently skew every figure measured on these sets, so they are checked here against
the real persona files (loaded by the project's own persona loader).
"""

import json
from pathlib import Path

import pytest

from bot.persona.loader import load_persona_file

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "nlu"
PERSONAS = {
    "laowang": ROOT / "personas" / "laowang-kitchen.yaml",
    "northbound": ROOT / "personas" / "northbound-coffee.yaml",
}
MIN_LINES = {"laowang": 400, "northbound": 320}
STYLES = {
    "plain", "mixed_zh_en", "en_slang", "typo_homophone", "voice_runon", "two_questions",
    "cantonese", "implicit_complaint", "emoji", "pinyin", "negation", "other_business",
    "oos", "short",
}
KEYS = {"text", "intent", "cat", "also", "fact"}


def read_rows(path: Path) -> list[dict]:
    """Parse one jsonl file, naming the line of any unreadable row."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise AssertionError(f"{path.name}:{number}: not JSON ({error})") from None
        assert isinstance(row, dict), f"{path.name}:{number}: not an object"
        rows.append(row)
    return rows


@pytest.fixture(scope="module", params=sorted(PERSONAS))
def dataset(request):
    name = request.param
    persona, _ = load_persona_file(PERSONAS[name])
    splits = {split: read_rows(DATA / f"{name}-{split}.jsonl") for split in ("dev", "test")}
    return name, persona, splits


def test_every_row_is_well_formed(dataset):
    name, persona, splits = dataset
    for split, rows in splits.items():
        for number, row in enumerate(rows, 1):
            where = f"{name}-{split}.jsonl:{number}"
            assert set(row) <= KEYS, f"{where}: unknown keys {set(row) - KEYS}"
            assert isinstance(row.get("text"), str) and row["text"].strip(), f"{where}: empty text"
            assert row.get("cat") in STYLES, f"{where}: unknown style {row.get('cat')!r}"
            assert "intent" in row, f"{where}: no intent key (use null for out-of-scope)"
            intent = row["intent"]
            assert intent is None or intent in persona.intents, f"{where}: no intent {intent!r}"
            for other in row.get("also", []):
                assert other in persona.intents and other != intent, f"{where}: bad also {other!r}"
            if "also" in row:
                assert intent is not None and row["also"], f"{where}: also needs a first intent"
            if "fact" in row:
                assert row["fact"] in persona.facts, f"{where}: no fact {row['fact']!r}"


def test_sizes_and_every_style_in_both_splits(dataset):
    name, _, splits = dataset
    assert sum(len(rows) for rows in splits.values()) >= MIN_LINES[name]
    dev, test = len(splits["dev"]), len(splits["test"])
    assert abs(dev - test) <= max(dev, test) * 0.1, f"{name}: dev {dev} / test {test} not ~50/50"
    for split, rows in splits.items():
        assert {row["cat"] for row in rows} == STYLES, f"{name}-{split}: missing styles"


def test_no_text_in_both_dev_and_test_nor_twice(dataset):
    name, _, splits = dataset
    texts = {split: [row["text"].strip() for row in rows] for split, rows in splits.items()}
    for split, items in texts.items():
        assert len(items) == len(set(items)), f"{name}-{split}: duplicate lines"
    assert not set(texts["dev"]) & set(texts["test"]), f"{name}: dev and test overlap"


def test_out_of_scope_share_at_least_30_percent(dataset):
    name, _, splits = dataset
    for split, rows in splits.items():
        share = sum(row["intent"] is None for row in rows) / len(rows)
        assert share >= 0.30, f"{name}-{split}: only {share:.0%} out-of-scope"


def test_enough_other_business_lines_overall():
    """Measuring "fewer than 1 in 100 OOS answered confidently" needs lines reusing our keywords."""
    rows = [row for path in DATA.glob("*-*.jsonl") if path.stem.endswith(("-dev", "-test"))
            for row in read_rows(path)]
    other = [row for row in rows if row["cat"] == "other_business"]
    assert len(other) >= 60
    assert all(row["intent"] is None for row in other)

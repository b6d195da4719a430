"""The matcher's automatic threshold, keyword lift, pinyin features, linear fit and bad input."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bot.nlu import DEFAULT_THRESHOLD, IntentMatcher
from bot.nlu.matcher import (
    OOS_QUANTILE,
    THRESHOLD_BOUNDS,
    _merge_collinear_columns,
    oos_corpus,
    typed_pinyin,
)
from bot.nlu.normalize import normalize
from tests.test_nlu import EXAMPLES

# Chit-chat written for these tests (not in bot/nlu/data/oos-*.txt): no intent should take it.
CHIT_CHAT = [
    "how tall is the eiffel tower",
    "who painted the mona lisa",
    "what is the capital of canada",
    "can dogs eat grapes",
    "my sister is getting married next month",
    "what's a good name for a goldfish",
    "how do volcanoes form",
    "recommend a podcast about history",
    "is it healthy to drink coffee every day",
    "how many legs does a spider have",
    "熊猫一天吃多少竹子",
    "怎么给自行车补胎",
    "我家猫老是抓沙发",
    "周末去爬山带什么",
    "这道物理题怎么做",
    "怎么写辞职信",
    "我的眼镜找不到了",
    "哪里可以学游泳",
    "今天心情不太好",
    "月球上有水吗",
]


def _synthetic(n_intents: int, per_intent: int, seed: int = 0):
    """Intents told apart by two made-up topic words each, examples padded with shared filler:
    many intents and few examples, the case where softmax confidence is low for everything."""
    rng = random.Random(seed)
    letters = "bcdfghjklmnpqrstvwxz"
    vowels = "aeiou"

    def word() -> str:
        return "".join(rng.choice(letters) + rng.choice(vowels) for _ in range(3))

    filler = ["please", "tell", "me", "about", "the", "your", "i", "want", "to", "know", "can"]
    topics = {f"intent{k}": (word(), word()) for k in range(n_intents)}

    def sentence(pair: tuple[str, str]) -> str:
        words = rng.sample(filler, 3) + [rng.choice(pair)] + rng.sample(filler, 2)
        return " ".join(words)

    examples = {name: [sentence(pair) for _ in range(per_intent)] for name, pair in topics.items()}
    held_out = [(sentence(pair), name) for name, pair in topics.items() for _ in range(2)]
    return examples, held_out


def _accepted_right(matcher: IntentMatcher, rows) -> float:
    return sum(matcher.match(text).intent == name for text, name in rows) / len(rows)


def test_calibration_accepts_what_many_intents_rank_right() -> None:
    """A 200-intent, 3-example persona: the fixed 0.35 rejected a third of its right answers
    (softmax spread over 200 intents); the calibrated threshold keeps them and still declines
    chit-chat."""
    examples, held_out = _synthetic(200, 3)
    matcher = IntentMatcher(examples)
    ranked_right = sum(matcher.match(t).best == name for t, name in held_out) / len(held_out)
    assert ranked_right >= 0.85
    assert matcher.threshold_source == "calibrated"
    assert _accepted_right(matcher, held_out) >= 0.95 * ranked_right
    declined = sum(matcher.match(t).intent is None for t in CHIT_CHAT) / len(CHIT_CHAT)
    assert declined >= 0.8
    matcher.threshold = DEFAULT_THRESHOLD  # the old fixed default, for comparison
    assert _accepted_right(matcher, held_out) <= 0.75 * ranked_right


def test_calibrated_threshold_follows_the_persona() -> None:
    few = IntentMatcher(EXAMPLES)
    many = IntentMatcher(_synthetic(200, 3)[0])
    assert many.calibrated_threshold < few.calibrated_threshold
    declined = float(np.mean(few.oos_scores() < few.calibrated_threshold))
    assert declined == pytest.approx(OOS_QUANTILE, abs=0.02)
    # The many-intent persona's quantile is below the lower bound, which then applies.
    assert many.calibrated_threshold == THRESHOLD_BOUNDS[0]
    assert float(np.mean(many.oos_scores() < many.calibrated_threshold)) >= OOS_QUANTILE


def test_explicit_threshold_overrides_and_examples_leave_the_corpus() -> None:
    assert IntentMatcher(EXAMPLES, threshold=0.7).threshold == 0.7
    corpus = oos_corpus()
    assert len(corpus) >= 300 and all(p == normalize(p) for p in corpus)
    # A persona that does answer one corpus phrase is not calibrated against it.
    joke = {**EXAMPLES, "joke": ["sing me a song", "讲个笑话吧", "say something funny"]}
    assert {"sing me a song", "讲个笑话吧"} <= set(corpus)
    matcher = IntentMatcher(joke)
    assert len(matcher.oos_scores({"sing me a song", "讲个笑话吧"})) == len(corpus) - 2
    assert matcher.match("sing me a song").intent == "joke"


def test_a_keyword_lifts_but_does_not_force_confidence() -> None:
    """A keyword in a message about something else no longer gets a forced 0.9: its confidence
    is the model's, lifted, so the same keyword scores lower off topic than on topic."""
    matcher = IntentMatcher(EXAMPLES, {"parking": ["车位", "valet"], "menu": ["菜单"]})
    off_topic = matcher.match("my brother works as a valet in new york and hates the winter")
    on_topic = matcher.match("is there valet parking nearby")
    assert off_topic.best == on_topic.best == "parking"
    assert off_topic.confidence < 0.9
    assert on_topic.confidence > off_topic.confidence
    # On topic, the keyword still wins where the examples alone would not.
    assert matcher.match("有没有车位").intent == "parking"


def test_keyword_only_intent_is_still_confident() -> None:
    matcher = IntentMatcher(
        {"hours": EXAMPLES["hours"], "menu": EXAMPLES["menu"]}, {"wifi": ["wifi"]}
    )
    assert matcher.match("what's the wifi password").intent == "wifi"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("jidian kaimen", "hours"),
        ("ji dian kai men", "hours"),
        ("jǐ diǎn kāi mén", "hours"),
        ("ji3 dian3 kai1 men2", "hours"),
        ("wo xiang ding wei", "booking"),
        ("tingche fangbian ma", "parking"),
        ("几点开们", "hours"),  # homophone typo of 开门
        ("我想订为", "booking"),  # homophone typo of 订位
    ],
)
def test_pinyin_and_homophones(text: str, intent: str) -> None:
    matcher = IntentMatcher(EXAMPLES)
    assert matcher.match(text).intent == intent


def test_typed_pinyin_leaves_english_alone() -> None:
    assert typed_pinyin("wo xiang ding wei") == ["wo", "xiang", "ding", "wei"]
    assert typed_pinyin("jidian") == ["ji", "dian"]
    for english in ("i want a table", "what time do you open", "book", "几点开门", "", "123 45"):
        assert typed_pinyin(english) is None, english
    matcher = IntentMatcher(EXAMPLES)
    assert matcher.match("what time do you open").intent == "hours"


def test_merging_collinear_columns_is_exact() -> None:
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(0)
    dense = rng.random((6, 9)) * (rng.random((6, 9)) < 0.4)
    dense[:, 3] = 2.5 * dense[:, 1]  # collinear with column 1
    dense[:, 5] = 0.0  # an empty column
    dense[:, 7] = 0.0
    dense[2, 7] = 1.0  # only in row 2 ...
    dense[:, 8] = 0.0
    dense[2, 8] = 3.0  # ... like this one
    matrix = csr_matrix(dense)
    merged, group, share = _merge_collinear_columns(matrix)
    assert merged.shape[1] < matrix.shape[1]
    gram = (matrix @ matrix.T).toarray()
    assert np.allclose((merged @ merged.T).toarray(), gram)
    # Weights of a merged column spread back by share reproduce the same scores.
    w = rng.random((merged.shape[1], 4))
    full = np.zeros((matrix.shape[1], 4))
    known = group >= 0
    full[known] = share[known, None] * w[group[known]]
    assert np.allclose(matrix @ full, merged @ w)
    assert group[5] == -1


BAD_INPUT = [
    "",
    "   ",
    "😀😀😀",
    "🤷‍♂️👍🏽",
    "订位" * 5000,  # 10k characters
    "a" * 10_000,
    "book a 桌子 por favor пожалуйста テーブル",
    "\x00\x01\x02\x1b[31m几点开门\x7f",
    "\ud800\udfff lone surrogates",
    "jǐ\u0301\u0301 diǎn",
    "ji" * 3000,
    "\u202e\u200b\ufeff",
]


@pytest.mark.parametrize("text", BAD_INPUT)
def test_bad_input_never_raises(text: str) -> None:
    matcher = IntentMatcher(EXAMPLES, {"parking": ["车位"]})
    match = matcher.match(text)
    assert 0.0 <= match.confidence <= 1.0
    assert match.intent is None or match.intent in EXAMPLES


def test_calibration_is_cached_beside_the_fit(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BRANDBOT_CACHE_DIR", str(tmp_path))
    first = IntentMatcher(EXAMPLES, {"parking": ["车位"]})
    files = sorted(tmp_path.glob("calibration-*.npz"))
    assert len(files) == 1 and len(list(tmp_path.glob("matcher-*.npz"))) == 1
    written = files[0].stat().st_mtime_ns
    second = IntentMatcher(EXAMPLES, {"parking": ["车位"]})
    assert second.calibrated_threshold == first.calibrated_threshold
    assert files[0].stat().st_mtime_ns == written  # read, not recomputed
    # Other keywords change the scores, so they get their own calibration (the same fit).
    IntentMatcher(EXAMPLES, {"parking": ["车位", "停车"]})
    assert len(list(tmp_path.glob("calibration-*.npz"))) == 2
    assert len(list(tmp_path.glob("matcher-*.npz"))) == 1


def test_a_message_typed_in_pinyin_is_answered_in_chinese() -> None:
    """A fan typing pinyin (no Chinese IME at hand) reads Chinese: the reply must not switch to
    English because the letters are Latin."""
    from bot.brand import load_brand
    from bot.nlu.understand import Understander
    from tests.conftest import ROOT

    persona = load_brand(ROOT / "personas" / "laowang-kitchen.yaml").persona
    understander = Understander(persona)
    for text in ("jidian kaimen", "wo xiang ding wei", "you tingchewei ma"):
        assert understander.language(text, fallback_language="en") == "zh", text
    assert understander.language("what time do you open", fallback_language="zh") == "en"

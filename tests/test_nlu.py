"""Behaviour of bot.nlu: normalisation, language, matching, taboo, yes/no and evaluation."""

from __future__ import annotations

import json
import math

import pytest

from bot.nlu import (
    IntentMatcher,
    Match,
    Understander,
    detect_language,
    evaluate,
    normalize,
)
from bot.nlu.understand import confirmation
from bot.persona.model import Persona

EXAMPLES = {
    "hours": [
        "你们几点开门",
        "营业时间是什么时候",
        "今天开到几点",
        "晚上几点关门",
        "what time do you open",
        "what are your opening hours",
        "when do you close tonight",
        "are you open on sunday",
    ],
    "booking": [
        "我想订位",
        "可以预订明天晚上的桌子吗",
        "帮我订一张四人桌",
        "订座",
        "i want to book a table",
        "can i reserve a table for two tomorrow",
        "make a reservation for tonight",
        "book a table for four people",
    ],
    "parking": [
        "附近有停车场吗",
        "停车方便吗",
        "可以停车吗",
        "车停哪里",
        "is there parking nearby",
        "where can i park my car",
        "do you have a car park",
        "is parking free",
    ],
    "menu": [
        "有什么招牌菜",
        "菜单给我看看",
        "推荐几个菜",
        "有素食吗",
        "what is on the menu",
        "what dishes do you recommend",
        "do you have vegetarian food",
        "show me the menu please",
    ],
}


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher(EXAMPLES, {"parking": ["车位", "valet"]})


@pytest.fixture(scope="module")
def persona() -> Persona:
    return Persona.model_validate(
        {
            "id": "test-kitchen",
            "brand": {"zh": "老王厨房", "en": "Lao Wang Kitchen"},
            "identity": {"name": {"zh": "老王", "en": "Lao Wang"}},
            "languages": ["zh", "en"],
            "default_language": "zh",
            "intents": {
                name: {"examples": {"zh": phrases[:4], "en": phrases[4:]}}
                for name, phrases in EXAMPLES.items()
            },
            "replies": {"welcome": {"zh": ["你好"], "en": ["hi"]}},
            "taboo": {"subjects": {"politics": {"zh": ["政治", "選舉"], "en": ["election"]}}},
        }
    )


# -- normalize ------------------------------------------------------------------------------


def test_normalize_traditional_to_simplified() -> None:
    assert normalize("當然！營業時間") == "当然 营业时间"
    assert normalize("頭髮 發現 乾淨") == "头发 发现 干净"


def test_normalize_fullwidth_case_and_punctuation() -> None:
    assert normalize("ＨＥＬＬＯ，Ｗｏｒｌｄ！１２３") == "hello world 123"
    assert normalize("  What's   UP?!…  😀👍 ") == "whats up"
    assert normalize("你好😀世界。。。") == "你好 世界"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \t\n ",
        "a\ud800b\udfff",  # lone surrogates
        "he\u200bl\u200dlo\ufeff",  # zero-width characters
        "\u202eevil\u202c \u200fמקרה",  # bidi overrides and RTL text
        "\x00\x01\x07\x1b[31m",  # control characters
        "x" * 10_000,
        "你" * 10_000,
        "🧑\u200d🍳" * 100,
        "\U0010ffff\U000e0001",
        "\u0301\u0301e\u0301",
    ],
)
def test_odd_unicode_never_crashes(text: str, matcher: IntentMatcher) -> None:
    result = normalize(text)
    assert isinstance(result, str)
    assert result == result.strip()
    assert "  " not in result
    assert detect_language(text) in ("zh", "en", None)
    match = matcher.match(text)
    assert match.best in EXAMPLES
    assert 0.0 <= match.confidence <= 1.0


def test_zero_width_chars_do_not_split_words() -> None:
    assert normalize("he\u200bllo") == "hello"


def test_normalize_tolerates_non_strings() -> None:
    assert normalize(None) == ""  # type: ignore[arg-type]
    assert normalize(42) == "42"  # type: ignore[arg-type]


# -- language -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("你好", "zh"),
        ("營業時間", "zh"),
        ("hello there", "en"),
        ("Ｈｅｌｌｏ", "en"),
        ("我想买iPhone", "zh"),
        ("what does 火锅 mean in english", "en"),
        ("12345 !!!", None),
        ("😀", None),
        ("", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


# -- matcher --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("你们几点关门？", "hours"),
        ("營業時間", "hours"),
        ("What time do you open on Sunday?", "hours"),
        ("我想订一张桌子", "booking"),
        ("could I book a table for 2", "booking"),
        ("停車方便嗎", "parking"),
        ("where do I park", "parking"),
        ("有什么推荐的菜", "menu"),
        ("can I see the menu", "menu"),
    ],
)
def test_bilingual_matcher_predicts_intents(matcher: IntentMatcher, text: str, intent: str) -> None:
    match = matcher.match(text)
    assert match.best == intent
    assert match.intent == intent, match


def test_match_shape(matcher: IntentMatcher) -> None:
    match = matcher.match("book a table")
    assert isinstance(match, Match)
    assert len(match.ranking) == 3
    assert match.ranking[0] == (match.best, match.confidence)
    scores = [s for _, s in match.ranking]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(AttributeError):
        match.intent = "x"  # type: ignore[misc]


def test_gibberish_is_below_threshold(matcher: IntentMatcher) -> None:
    for text in ("qzxv wkjp blorf", "ㄅㄆㄇ", "zzzzzzzz", "", "🤷"):
        match = matcher.match(text)
        assert match.intent is None, (text, match)
        assert match.best in EXAMPLES


def test_threshold_is_settable(matcher: IntentMatcher) -> None:
    calibrated = matcher.calibrated_threshold
    assert matcher.threshold == calibrated and matcher.threshold_source == "calibrated"
    try:
        matcher.threshold = 0.0
        assert matcher.threshold_source == "explicit"
        assert matcher.match("qzxv wkjp blorf").intent is not None
        matcher.threshold = 1.0
        assert matcher.match("book a table").intent is None
    finally:
        matcher.threshold = None  # back to the calibrated one
    assert matcher.threshold == calibrated
    with pytest.raises(ValueError):
        matcher.threshold = 1.5


def test_keyword_boosts_intent(matcher: IntentMatcher) -> None:
    # "车位" appears in no example; "valet" neither. Both are parking keywords.
    for text in ("有没有车位", "有没有車位", "Do you have VALET?"):
        match = matcher.match(text)
        assert match.intent == "parking", (text, match)
    # English keywords only match whole words.
    assert "parking" not in matcher.keyword_hits(normalize("the valeting service"))


def test_keyword_only_intent() -> None:
    m = IntentMatcher({"hours": EXAMPLES["hours"], "menu": EXAMPLES["menu"]}, {"wifi": ["wifi"]})
    assert m.match("what's the wifi password").intent == "wifi"
    assert m.match("what time do you open").best == "hours"


def test_degenerate_matchers() -> None:
    empty = IntentMatcher({})
    assert empty.match("hello") == Match(None, 0.0, "", ())
    single = IntentMatcher({"hours": EXAMPLES["hours"]})
    assert single.match("what time do you open").intent == "hours"
    assert single.match("qzxv wkjp").intent is None
    assert single.match("").intent is None


# -- understander ---------------------------------------------------------------------------


def test_understander(persona: Persona) -> None:
    u = Understander(persona)
    assert u.matcher.threshold == u.matcher.calibrated_threshold
    got = u.understand("請問幾點開門？")
    assert got.intent == "hours"
    assert got.language == "zh"
    assert got.normalized == "请问几点开门"
    assert got.taboo is None
    assert got.confirmation is None
    assert u.understand("Can I reserve a table?").language == "en"


def test_understander_taboo(persona: Persona) -> None:
    u = Understander(persona)
    assert u.understand("你怎么看选举？").taboo == "politics"
    assert u.understand("What about the ELECTION!").taboo == "politics"
    assert u.understand("the elections").taboo is None  # whole words only


def test_understander_language_rules(persona: Persona) -> None:
    u = Understander(persona)
    assert u.understand("hello", forced_language="zh").language == "zh"
    assert u.understand("123", fallback_language="en").language == "en"
    assert u.understand("123").language == "zh"  # persona default
    en_only = persona.model_copy(update={"languages": ["en"], "default_language": "en"})
    assert Understander(en_only).understand("你好").language == "en"


def test_understander_threshold_from_persona(persona: Persona) -> None:
    tuned = persona.model_copy(update={"nlu": persona.nlu.model_copy(update={"threshold": 0.7})})
    assert Understander(tuned).matcher.threshold == 0.7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("好的", "affirm"),
        ("好的！", "affirm"),
        ("當然", "affirm"),
        ("嗯", "affirm"),
        ("没问题", "affirm"),
        ("Yes", "affirm"),
        ("OK!!", "affirm"),
        ("okkk", "affirm"),
        ("sure", "affirm"),
        ("of course", "affirm"),
        ("👍", "affirm"),
        ("不要", "deny"),
        ("算了", "deny"),
        ("不用了", "deny"),
        ("No.", "deny"),
        ("nope", "deny"),
        ("never mind", "deny"),
        ("cancel", "deny"),
        ("好的我想订明天晚上的桌子", None),
        ("yes I would like to know the opening hours", None),
        ("what time", None),
        ("", None),
    ],
)
def test_confirmation_lexicon(text: str, expected: str | None, persona: Persona) -> None:
    assert confirmation(normalize(text), text) == expected
    assert Understander(persona).understand(text).confirmation == expected


# -- evaluate -------------------------------------------------------------------------------


class _Fixed:
    """A fake matcher answering from a table, to check the metric arithmetic."""

    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers

    def match(self, text: str) -> Match:
        intent = self.answers[text]
        return Match(intent, 1.0, intent or "x", ())


def test_evaluate_arithmetic() -> None:
    rows = [
        {"text": "a1", "intent": "a"},  # right
        {"text": "a2", "intent": "a"},  # predicted b
        {"text": "a3", "intent": "a"},  # predicted None
        {"text": "b1", "intent": "b"},  # right
        {"text": "o1", "intent": None},  # right (None)
        {"text": "o2", "intent": None},  # predicted a
    ]
    answers = {"a1": "a", "a2": "b", "a3": None, "b1": "b", "o1": None, "o2": "a"}
    report = evaluate(_Fixed(answers), rows)
    assert report.n == 6
    assert (report.n_in_scope, report.n_out_of_scope) == (4, 2)
    assert report.accuracy == pytest.approx(3 / 6)
    assert report.in_scope_accuracy == pytest.approx(2 / 4)
    assert report.oos_recall == pytest.approx(1 / 2)
    assert report.oos_precision == pytest.approx(1 / 2)  # None predicted for a3 and o1
    assert report.mean_us >= 0
    assert set(report.confusions) == {("a", "b", 1), ("a", "(none)", 1), ("(none)", "a", 1)}
    data = json.loads(json.dumps(report.to_dict()))
    assert data["n"] == 6 and len(data["confusions"]) == 3
    text = report.format_text()
    assert "50.0%" in text and "a → b: 1" in text


def test_evaluate_empty_and_understander(persona: Persona) -> None:
    report = evaluate(Understander(persona), [])
    assert report.n == 0 and report.accuracy == 0.0 and not math.isnan(report.mean_us)
    report = evaluate(Understander(persona), [{"text": "几点开门", "intent": "hours"}])
    assert report.in_scope_accuracy == 1.0
    with pytest.raises(TypeError):
        evaluate(object(), [])  # type: ignore[arg-type]


def test_static_vectors_wordpiece_and_similarity():
    from bot.nlu import vectors

    sv = vectors.load()
    pieces = sv.wordpieces("unbookable")
    assert pieces and all(isinstance(p, int) for p in pieces)
    assert sv.wordpieces("x" * 200) == []
    assert sv.embed_words([]) is None
    a = sv.embed_words(["book", "a", "table"])
    b = sv.embed_words(["reserve", "a", "table"])
    c = sv.embed_words(["my", "card", "was", "stolen"])
    assert abs(float(a @ a) - 1.0) < 1e-5
    assert float(a @ b) > float(a @ c)


def test_english_words_share_keeps_chinese_out():
    from bot.nlu.matcher import english_words

    assert english_words(normalize("我想买iPhone")) == (["iphone"], 0.25)
    assert english_words(normalize("你好")) == ([], 0.0)
    assert english_words(normalize("book a table")) == (["book", "a", "table"], 1.0)


def test_static_vectors_generalise_to_unseen_synonyms():
    m = IntentMatcher(
        {
            "reserve": ["book a table", "i want a reservation", "table for two tonight"],
            "hours": ["when do you open", "what time do you close", "opening hours"],
            "menu": ["what dishes do you have", "show me the menu", "any vegetarian food"],
        },
        threshold=0.0,
    )
    assert m.match("could I reserve a spot for dinner").best == "reserve"


def test_fitted_matchers_are_cached_by_content(tmp_path, monkeypatch):
    from bot.nlu import IntentMatcher

    monkeypatch.setenv("BRANDBOT_CACHE_DIR", str(tmp_path))
    examples = {"hours": ["几点开门", "when do you open"], "parking": ["有停车位吗", "parking?"]}
    first = IntentMatcher(examples)
    files = sorted(tmp_path.glob("matcher-*.npz"))
    assert len(files) == 1
    written = files[0].stat().st_mtime_ns
    second = IntentMatcher(examples)
    assert sorted(tmp_path.glob("matcher-*.npz")) == files
    assert files[0].stat().st_mtime_ns == written  # loaded, not refitted (a refit rewrites it)
    for text in ["今天几点开门", "where do I park", "火星"]:
        assert first.match(text) == second.match(text)
    IntentMatcher({**examples, "hours": ["几点开门", "opening hours"]})
    assert len(list(tmp_path.glob("matcher-*.npz"))) == 2  # an edit never reuses a stale fit
    files[0].write_bytes(b"not a zip")
    assert IntentMatcher(examples).match("几点开门").intent == "hours"  # corrupt cache: refit


def test_phrase_index_agrees_with_found_in():
    from bot.nlu.normalize import Phrase, PhraseIndex

    phrases = [
        Phrase(w) for w in ["a", "art", "see ya", "营业时间", "开", "WiFi密码", "ok", "", "!!"]
    ]
    index = PhraseIndex(phrases)
    for text in [
        "",
        "a",
        "start",
        "art!",
        "see ya later",
        "营业时间？",
        "开门",
        "wifi密码多少",
        "ok",
        "okay",
        "i see yall",
        "a art 开 ok see ya 营业时间 wifi密码",
    ]:
        n = normalize(text)
        assert index.found(n) == [i for i, p in enumerate(phrases) if p.found_in(n)], text


def test_token_cache_never_changes_a_match(matcher: IntentMatcher, monkeypatch):
    from bot.nlu import matcher as matcher_module

    texts = [
        "几点开门",
        "what time do you open",
        "I want to book a table",
        "车位 valet",
        "booking",
        "今天 晚上 几点 关门",
        "x" * 3000,
        "hello " * 600,
        "火星",
        "",
    ]
    cached = [matcher.match(t) for t in texts + texts]
    monkeypatch.setattr(matcher_module, "TOKEN_CACHE_CHARS", -1)
    assert [matcher.match(t) for t in texts + texts] == cached


def test_features_of_long_messages_stay_within_the_tf_table():
    from collections import Counter

    from bot.nlu.matcher import _SUBLINEAR_TF, features

    for text in ["a " * 3000, "a" * 3000, "我" * 3000, "我a" * 3000, "books book " * 1000]:
        assert max(Counter(features(normalize(text))).values()) < len(_SUBLINEAR_TF)

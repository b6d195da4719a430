"""Businesses nobody listed, the fan's own places, unsure keyword lifts, declined clauses and
refusals of nothing — on the demo personas (bot/nlu/names.py, scope.py, understand.py).

Messages here are written for these tests (not copied from tests/data/nlu).
"""

from __future__ import annotations

import pytest

from bot.nlu.matcher import KEYWORD_UNSURE_CONFIDENCE, IntentMatcher
from bot.nlu.names import UnknownNames
from tests.test_nlu_styles import _engine, _turn


@pytest.mark.parametrize(
    "text",
    [
        "刘记冒菜几点开门",
        "小周烤鱼营业到几点",
        "春姐钵钵鸡的地址在哪",
        "望江楼酒家有包间吗",
        "陈麻花总店能订座吗",
        "建设路那边的胖哥俩能订位吗",
        "请问蓉城老妈火锅周二开门吗",
    ],
)
def test_laowang_unknown_chinese_shop_names_are_not_us(laowang, text):
    understood = laowang.understand(text)
    assert understood.intent is None, understood
    assert understood.rule == "other-subject"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("店门口好停车不", "parking"),
        ("玉林路店几点开门", "hours"),
        ("清明节营业吗", "hours"),
        ("大年初二几点开门", "hours"),
        ("二楼包间能订位吗", "reservation"),
        ("我们家老人腿脚不好，停车方便吗", "parking"),
        ("老王厨房几点开门", "hours"),
        ("does Laowang have parking", "parking"),
    ],
)
def test_laowang_our_own_things_stay_ours(laowang, text, intent):
    assert laowang.understand(text).intent == intent


@pytest.mark.parametrize(
    "text",
    [
        "what's the wifi password at Rosewood Espresso",
        "can I bring my dog to Little Acorn",
        "how much is a flat white at Kettle Black",
        "does Brewlab have oat milk",
        "does wagamamo have oat milk",
    ],
)
def test_northbound_unknown_english_names_are_not_us(northbound, text):
    understood = northbound.understand(text)
    assert understood.intent is None, understood


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("are you at Jiashan Road", "location"),
        ("does Northbound have oat milk", "menu"),
        ("can I bring my dog to the terrace", "environment"),
        ("what time do you close at Christmas", "hours"),
    ],
)
def test_northbound_our_own_names_and_places_stay_ours(northbound, text, intent):
    assert northbound.understand(text).intent == intent


@pytest.mark.parametrize(
    ("persona", "text"),
    [
        ("laowang", "家里wifi又断了烦死"),
        ("laowang", "我家附近停车太难了"),
        ("northbound", "parking in this city is a nightmare"),
        ("northbound", "my wifi at home keeps cutting out"),
    ],
)
def test_the_fans_own_places_are_not_our_facts(laowang, northbound, persona, text):
    understander = laowang if persona == "laowang" else northbound
    assert understander.understand(text).intent is None


def test_a_keyword_lift_is_never_sure_when_the_examples_are_not():
    examples = {
        "hours": ["what time do you open", "when do you close", "are you open on sunday"],
        "menu": ["what is on the menu", "do you have vegetarian dishes", "what food do you serve"],
        "price": ["how much is a latte", "what are your prices", "is it expensive"],
    }
    keywords = {"price": ["how much"]}
    plain = IntentMatcher(examples, threshold=0.5)
    lifted = IntentMatcher(examples, keywords, threshold=0.5)
    unsure = "how much gold is in the earth's crust"
    assert plain.match(unsure).intent is None  # the examples alone do not accept it
    match = lifted.match(unsure)
    assert match.intent == "price"  # the keyword still lifts it over the threshold…
    assert match.confidence <= KEYWORD_UNSURE_CONFIDENCE  # …but not to a confident answer
    sure = lifted.match("how much is a latte")
    assert sure.intent == "price" and sure.confidence > 0.9


@pytest.mark.parametrize(
    ("persona", "text", "intent"),
    [
        ("laowang", "海底捞几点关门？有停车位吗", "parking"),
        ("laowang", "小周烤鱼几点关门？你们几点关门", "hours"),
        ("northbound", "what time does Starbucks close? and when do you close", "hours"),
    ],
)
def test_a_declined_clause_about_someone_else_leaves_ours_answered(
    laowang, northbound, persona, text, intent
):
    understander = laowang if persona == "laowang" else northbound
    assert understander.understand(text).intent == intent


@pytest.mark.parametrize(
    "text",
    ["那家新开的串串店几点关门？他们家有停车位吗", "the pub across the road, do they do food"],
)
def test_a_clause_pointing_back_at_someone_else_stays_declined(laowang, text):
    assert laowang.understand(text).intent is None


@pytest.mark.parametrize(
    ("persona", "text"),
    [
        ("laowang", "算了不订了"),
        ("laowang", "今天就不过来了"),
        ("northbound", "I won't be coming in today"),
        ("northbound", "not coming today, sorry"),
    ],
)
def test_a_refusal_of_nothing_is_a_negation_not_a_miss(laowang, northbound, persona, text):
    understander = laowang if persona == "laowang" else northbound
    understood = understander.understand(text)
    assert understood.intent is None and understood.rule == "negation", understood


def test_an_overcharge_is_no_refusal(laowang):
    assert laowang.understand("结账的时候多算了一道菜的钱").rule != "negation"


HOSTILE = [
    "",
    " ",
    "🙂🙂🙂",
    "\x00\x01\x1b[31m几点开门\x7f",
    "a" * 10_000,
    "的" * 10_000,
    "does " + "Aa " * 4000 + "have wifi",
    "at " + "Bb " * 4000,
    "陈" * 3000 + "几点开门",
    "Ｗｉｆｉ密码at Café Ünïcode的地址？",
    "\u202e\u200b\u200d几点\ufeff开门",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_never_raises(laowang, northbound, text):
    for understander in (laowang, northbound):
        understood = understander.understand(text)
        assert understood.language in understander.persona.languages
    names = UnknownNames(["几点开门", "wifi"])
    names.zh(text)
    names.en(text, lambda name: False)
    names.fans_own(text)


def test_engine_says_not_ours_before_answering_our_question(tmp_path):
    engine = _engine(tmp_path, "laowang-kitchen")
    _turn(engine, "你好")
    replies = _turn(engine, "海底捞几点关门？有停车位吗")
    assert [r.key for r in replies] == ["not_ours", "parking"]
    assert "11:00" not in "".join(r.text for r in replies)  # not our hours for 海底捞
    alone = _turn(engine, "刘记冒菜几点开门")
    assert [r.key for r in alone] == ["not_ours"] and alone[0].language == "zh"


def test_engine_acknowledges_a_refusal_and_counts_no_miss(tmp_path):
    engine = _engine(tmp_path, "northbound-coffee")
    _turn(engine, "hi")
    for text in ("no need to sign me up", "I won't be coming in today", "don't bother"):
        replies = _turn(engine, text)
        assert [r.key for r in replies] == ["acknowledge"], text
    # Three declines in a row are no misses: no "talk to a human?" offer.
    fan = engine.store.conn.execute("SELECT misses FROM fans").fetchone()
    assert fan["misses"] == 0


@pytest.mark.parametrize(
    ("persona", "text"),
    [
        ("northbound", "does mokka coffee take reservations"),
        ("laowang", "青羊宫边上的素菜馆环境怎么样"),
        ("laowang", "陈记肥肠粉贵不贵"),
    ],
)
def test_more_ways_of_asking_about_an_unknown_shop(laowang, northbound, persona, text):
    understander = laowang if persona == "laowang" else northbound
    understood = understander.understand(text)
    assert understood.intent is None, understood


@pytest.mark.parametrize(
    ("persona", "text"),
    [("northbound", "please don't message me again"), ("laowang", "别再给我推活动信息")],
)
def test_stopping_what_the_unsure_model_names_is_an_unsubscribe(
    laowang, northbound, persona, text
):
    understander = laowang if persona == "laowang" else northbound
    assert understander.understand(text).intent == "unsubscribe"

"""Fans as they really write: other businesses, refusals, dialect words, emoji, two questions,
complaints without the word, facts asked by name, and hostile input — on the demo personas.

Messages here are written for these tests (not copied from the held-out sets in tests/data).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.brand import load_brand
from bot.engine import Engine
from bot.errors import ConfigError
from bot.messages import FanRef, Inbound
from bot.nlu.clauses import clauses
from bot.nlu.fanspeak import emoji_words, mandarin
from bot.nlu.normalize import normalize
from bot.nlu.understand import Understander
from bot.persona.loader import load_persona_file

LAOWANG_FILE = Path(__file__).resolve().parent.parent / "personas" / "laowang-kitchen.yaml"



# -- keywords never overrule meaning: other businesses and general knowledge -------------------


@pytest.mark.parametrize(
    "text",
    [
        "麦当劳几点关门",
        "请问太古里那家火锅店几点开门",
        "肯德基的电话多少",
        "what time does the Costco on 2nd street close",
        "when does Walmart open tomorrow",
        "is the IKEA open on sunday",
        "Apple stock price today",
        "美元兑人民币汇率多少",
        "what is the capital of Spain",
        "动物园门票多少钱",
        "book a flight to Chengdu",
    ],
)
def test_questions_about_other_businesses_get_none_of_our_facts(laowang, text):
    understood = laowang.understand(text)
    assert understood.intent is None, (text, understood)
    # "none" when the matcher found nothing to overrule in the first place.
    assert understood.rule in ("other-subject", "none")


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("离太古里远吗 怎么走", "location"),
        ("are you near the metro?", "location"),
        ("老王厨房几点关门", "hours"),
        ("你们几点关门", "hours"),
        ("我想问下你们店几点开门", "hours"),
        ("what time does the kitchen close", "hours"),
        ("is the kitchen still open", "hours"),
        ("sundays hours?", "hours"),
        ("how do i get there from the jing an temple", "location"),
    ],
)
def test_places_in_relation_to_us_and_our_own_names_stay_ours(laowang, text, intent):
    understood = laowang.understand(text)
    assert understood.intent == intent, (text, understood)
    assert understood.rule != "other-subject"


def test_a_persona_alias_is_never_another_business(laowang):
    persona = laowang.persona
    aliased = persona.model_copy(
        update={"identity": persona.identity.model_copy(update={"aliases": ["玉林小馆"]})}
    )
    assert laowang.understand("玉林小馆几点关门").intent is None  # unknown name: not ours
    assert Understander(aliased).understand("玉林小馆几点关门").intent == "hours"


def test_no_other_business_question_gets_a_fact_at_high_confidence(laowang, northbound):
    others = ["星巴克几点开门", "Tesla share price", "what time does the Apple store close",
              "海底捞的地址在哪", "瑞幸的拿铁多少钱", "how much is a Starbucks latte"]
    for understander in (laowang, northbound):
        for text in others:
            assert understander.understand(text).intent is None, text


# -- refusals and negation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["不想订阅周报", "别给我订阅", "no need to book a table for us", "不用帮我转人工",
     "我不是要投诉"],
)
def test_a_refusal_is_not_a_request(laowang, text):
    understood = laowang.understand(text)
    assert understood.intent is None, (text, understood)
    assert understood.rule == "negation"


def test_stopping_the_newsletter_is_an_unsubscribe(laowang):
    assert laowang.understand("stop the newsletter please").intent == "unsubscribe"
    assert laowang.understand("以后不要再发周报了").intent == "unsubscribe"


def test_a_question_with_a_negation_is_still_a_question(laowang):
    assert laowang.understand("不用订位吗？直接去行不行").intent == "reservation"


# -- dialect words and emoji -------------------------------------------------------------------


def test_cantonese_and_taiwanese_words_become_mandarin():
    assert normalize("有冇位呀") == normalize("有没有位呀")
    assert "在哪里" in normalize("你哋喺邊度")
    assert normalize("停車格") == "停车位"
    assert mandarin("旁边有食材店") == "旁边有食材店"  # Mandarin text is left alone


@pytest.mark.parametrize(
    ("text", "intent"),
    [("你哋幾點閂門呀", "hours"), ("有冇泊車嘅地方", "parking"), ("點樣訂枱", "reservation")],
)
def test_cantonese_questions_are_understood(laowang, text, intent):
    assert laowang.understand(text).intent == intent


@pytest.mark.parametrize(("text", "intent"), [("⏰?", "hours"), ("🅿️🚗", "parking"),
                                              ("📍？", "location"), ("😡😡😡", "complaint")])
def test_emoji_questions_are_understood(laowang, text, intent):
    assert laowang.understand(text).intent == intent


def test_emoji_become_words_in_the_fans_language():
    assert "停车" in emoji_words("🅿️", "zh")
    assert "parking" in emoji_words("🅿️", "en")
    assert emoji_words("plain text", "en") == "plain text"


# -- two questions in one message ---------------------------------------------------------------


def test_two_questions_give_both_intents_in_order(laowang, northbound):
    understood = laowang.understand("几点关门？另外门口能停车吗")
    assert (understood.intent, understood.also) == ("hours", ("parking",))
    understood = northbound.understand("do you have oat milk? also where exactly are you")
    assert (understood.intent, understood.also) == ("menu", ("location",))


def test_a_greeting_before_a_question_is_one_question(laowang):
    understood = laowang.understand("你好，请问几点开门？")
    assert (understood.intent, understood.also) == ("hours", ())
    assert clauses("你好，几点开门？") == ["你好，几点开门？"]


# -- complaints without the word ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["回锅肉咸得我灌了一壶茶", "菜上来都是凉的", "等了四十分钟才上菜，真棒",
     "the noodles came out cold and soggy", "waited an hour for two dishes, great job guys"],
)
def test_implicit_complaints_go_to_the_complaint_route(laowang, text):
    understood = laowang.understand(text)
    assert understood.intent == "complaint", (text, understood)


@pytest.mark.parametrize("text", ["会不会太咸？", "is the mapo tofu too spicy for kids?"])
def test_asking_about_taste_is_not_a_complaint(laowang, text):
    assert laowang.understand(text).intent != "complaint"


# -- facts asked by name -------------------------------------------------------------------------


def test_a_fact_asked_by_name_is_answered_alone(laowang, northbound):
    wifi = laowang.understand("wifi密码是多少")
    assert (wifi.intent, wifi.fact, wifi.rule) == ("environment", "wifi", "fact")
    gluten = laowang.understand("I'm coeliac, anything I should know?")
    assert (gluten.intent, gluten.fact) == ("food_safety", "allergens")
    phone = northbound.understand("what's your phone number")
    assert (phone.intent, phone.fact) == (None, "phone")


def _engine(tmp_path, persona: str) -> Engine:
    from bot.relations.store import Store

    return Engine(Store(tmp_path / "brandbot.db"), load_brand(persona), seed=3)


def _turn(engine: Engine, text: str, fan: str = "fan") -> list:
    return engine.handle(Inbound(FanRef("test", fan), text=text))


def test_engine_answers_the_fact_not_the_paragraph(tmp_path):
    engine = _engine(tmp_path, "laowang-kitchen")
    _turn(engine, "你好")
    replies = _turn(engine, "wifi密码多少")
    assert [r.key for r in replies] == ["fact:wifi"]
    assert "hongshaorou" in replies[0].text and "60 个座位" not in replies[0].text
    dogs = _turn(engine, "can I bring my dog?")
    assert [r.key for r in dogs] == ["fact:pets"] and "outdoor" in dogs[0].text


def test_engine_answers_a_fact_no_intent_carries(tmp_path):
    engine = _engine(tmp_path, "northbound-coffee")
    _turn(engine, "hi")
    replies = _turn(engine, "what's your phone number")
    assert [r.key for r in replies] == ["fact:phone"] and "021-6433-0528" in replies[0].text


def test_engine_answers_two_questions_in_one_turn_and_one_transaction(tmp_path):
    engine = _engine(tmp_path, "laowang-kitchen")
    _turn(engine, "你好")
    replies = _turn(engine, "几点关门？另外门口能停车吗")
    assert [r.key for r in replies] == ["hours", "parking"]
    conn = engine.store.conn
    inbound = conn.execute(
        "SELECT id, intent FROM messages WHERE direction = 'in' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert inbound["intent"] == "hours"
    outbound = conn.execute(
        "SELECT reply_key FROM messages WHERE in_reply_to = ? ORDER BY id", (inbound["id"],)
    ).fetchall()
    assert [row["reply_key"] for row in outbound] == ["hours", "parking"]


def test_check_reports_a_safety_fact_missing_from_a_variant(tmp_path):
    text = LAOWANG_FILE.read_text(encoding="utf-8")
    safe = "放心吃：{food_safety}。过敏的朋友注意：{allergens}。"
    broken = text.replace(safe, "放心吃：{food_safety}。")
    assert broken != text
    path = tmp_path / "laowang.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_persona_file(path)
    assert "safety fact {allergens} is missing" in str(error.value)
    assert "food_safety" in str(error.value)


def test_check_reports_a_fact_answer_naming_no_fact(tmp_path):
    text = LAOWANG_FILE.read_text(encoding="utf-8")
    broken = text.replace("fact_answers:\n  wifi:", "fact_answers:\n  wlan:", 1)
    path = tmp_path / "laowang.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_persona_file(path)
    assert "there is no fact 'wlan'" in str(error.value)


# -- bad input: never an exception, always a reply in voice ---------------------------------------

BAD_INPUTS = [
    "",
    "   ",
    "🫠🫠🫠",
    "👍",
    "几点" * 5000,  # 10 kB
    "hello 你好 مرحبا こんにちは Привет 🅿️?",
    "\x00\x07\x1b[31m几点开门\x7f",
    "\ud800 broken surrogate \udfff",
    "？？？！！！",
    "a" * 10_000,
]


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_bad_input_is_understood_without_exception(laowang, northbound, text):
    for understander in (laowang, northbound):
        understood = understander.understand(text)
        assert understood.rule in {"keyword", "model", "fact", "negation", "other-subject",
                                   "complaint", "none"}


def test_bad_input_always_gets_a_reply_in_voice(tmp_path):
    engine = _engine(tmp_path, "laowang-kitchen")
    voiced = {t for key in engine.brand().persona.replies for lang in ("zh", "en")
              for t in engine.brand().persona.replies[key].get(lang, [])}
    assert voiced
    for number, text in enumerate(BAD_INPUTS):
        turn = engine.handle_turn(Inbound(FanRef("test", f"bad{number}"), text=text))
        assert turn.replies, text
        assert turn.outcome is not None and not turn.outcome.failed, text
        assert all(reply.text and reply.key for reply in turn.replies)


def test_a_second_question_the_dialog_handles_takes_its_dialog_step(tmp_path):
    engine = _engine(tmp_path, "laowang-kitchen")
    _turn(engine, "hi")
    assert [r.key for r in _turn(engine, "几点开门？有优惠吗")] == ["hours", "deals_info"]
    replies = _turn(engine, "what time do you close, also can i subscribe to the newsletter")
    assert [r.key for r in replies] == ["hours", "subscribe_confirm"]
    assert [r.key for r in _turn(engine, "好")] == ["subscribed"]


@pytest.mark.parametrize(
    "text",
    ["does Seesaw coffee do oat milk", "Costa's new menu any good?", "what time is sunset",
     "how much is parking at the mall", "where's the nearest ATM"],
)
def test_named_places_brands_and_general_knowledge_are_not_ours(northbound, text):
    understood = northbound.understand(text)
    assert (understood.intent, understood.rule) == (None, "other-subject"), text


@pytest.mark.parametrize(
    ("text", "intent"),
    [("is the Yongkang Road shop open", "location"), ("can I Park there", "location"),
     ("are dogs ok inside, and where can I park?", "environment")],
)
def test_our_street_and_a_capitalised_word_are_not_another_business(northbound, text, intent):
    understood = northbound.understand(text)
    assert understood.intent == intent and understood.rule != "other-subject", understood

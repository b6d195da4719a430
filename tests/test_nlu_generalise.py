"""The NLU gates by category, not by example: places named from the fan's side, general
knowledge, complaints about something else, refusals and voice fillers — on the demo personas.

Messages here are written for these tests (not copied from tests/data/nlu).
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "text",
    [
        "单位楼下那家冒菜馆几点开",  # named from where it is for the fan
        "我家小区门口的超市几点关门",
        "刘记兔头店能订位吗",  # a named eating place before a modal verb
        "周婆婆抄手馆有外卖吗",
        "成都南站怎么走",  # a station
        "天府机场到春熙路要多久",  # gazetteer: sights and stations
        "回锅肉在家怎么做",  # cooking at home
        "火锅热量高吗",  # nutrition
    ],
)
def test_laowang_other_places_and_knowledge_get_none(laowang, text):
    understood = laowang.understand(text)
    assert understood.intent is None, (text, understood)


@pytest.mark.parametrize(
    "text",
    [
        "the pub across the street, do they do food",
        "my office canteen, when does it open",
        "is Sam's open on sundays",  # a capitalised possessive is a name
        "how do I get to Lujiazui from here",
        "does Dutch Bros have oat milk",
        "how many calories in a flat white",
        "what's a good coffee machine for the office",
        "translate 'thanks a lot' into french",
    ],
)
def test_northbound_other_places_and_knowledge_get_none(northbound, text):
    understood = northbound.understand(text)
    assert understood.intent is None, (text, understood)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("玉林店今晚能订位吗", "reservation"),  # our street in our own facts
        ("你们店里有包间吗", "environment"),
        ("老王厨房几点开门", "hours"),
        ("就是那个嗯我想问一下你们礼拜天晚上开到几点啊", "hours"),  # fillers dropped
    ],
)
def test_laowang_our_own_questions_stay_ours(laowang, text, intent):
    assert laowang.understand(text).intent == intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("how do I get to you from the Bund", "location"),
        ("are you guys open sunday or nah", "hours"),  # "or nah" asks
        ("um so like how much is a latte", "price"),
    ],
)
def test_northbound_our_own_questions_stay_ours(northbound, text, intent):
    assert northbound.understand(text).intent == intent


@pytest.mark.parametrize(
    ("understander", "text"),
    [
        ("laowang", "高架上堵了四十分钟，烦死了"),  # the traffic, not us
        ("laowang", "今天考试考砸了好烦"),
        ("northbound", "the weather is so annoying today"),
        ("northbound", "your oat latte is the best thing in this city"),  # praise
    ],
)
def test_negative_or_emphatic_messages_about_something_else_are_no_complaint(
    request, understander, text
):
    understood = request.getfixturevalue(understander).understand(text)
    assert understood.intent != "complaint", (text, understood)


@pytest.mark.parametrize(
    ("understander", "text"),
    [
        ("laowang", "服务员一直拉着脸"),
        ("laowang", "打包的时候漏送了一份凉面"),
        ("northbound", "ordered two croissants, got one, nobody told me"),
    ],
)
def test_complaints_about_us_still_go_to_complaint(request, understander, text):
    assert request.getfixturevalue(understander).understand(text).intent == "complaint"


def test_refusals_and_declines(laowang, northbound):
    assert laowang.understand("今晚不点外卖了").intent is None
    assert laowang.understand("不用了谢谢老板").intent is None  # declining, not thanking
    assert laowang.understand("以后别给我推送了").intent == "unsubscribe"
    assert northbound.understand("no thanks, I'm good").intent is None
    assert northbound.understand("we won't be bringing the dog").intent is None
    assert northbound.understand("thanks so much!").intent == "thanks"


def test_praise_asks_nothing_and_another_service_is_not_about_the_bot(laowang, northbound):
    assert laowang.understand("你们家的夫妻肺片绝了").intent is None
    assert northbound.understand("love your flat white, best in town").intent is None
    assert laowang.understand("你能帮我买张火车票吗").intent is None
    assert northbound.understand("I'll pass on the newsletter").intent is None

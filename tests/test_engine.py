"""The whole turn through Engine.handle, on a real SQLite file and the real default dialog."""

from __future__ import annotations

import json
import threading

from bot.engine import Engine
from bot.messages import FanRef, Inbound

FAN = FanRef("test", "ann")


def say(engine: Engine, text: str, fan: FanRef = FAN, **kwargs) -> list[str]:
    return [r.text for r in engine.handle(Inbound(fan, text=text, **kwargs))]


def fan_row(store, fan: FanRef = FAN, persona: str = "tiny") -> dict:
    return store.find_fan(persona, fan.channel, fan.external_id)


def test_first_contact_welcomes_in_voice_and_answers_the_question(tiny_engine, fresh_db):
    replies = say(tiny_engine, "几点开门")
    assert replies == ["欢迎来到小店，朋友！", "营业时间：每天9点到21点"]
    fan = fan_row(fresh_db)
    assert fan["dialog_state"] == "chatting"
    assert fan["language"] == "zh"


def test_greeting_on_first_turn_is_not_answered_twice(tiny_engine):
    assert say(tiny_engine, "你好") == ["欢迎来到小店，朋友！"]
    assert say(tiny_engine, "你好") in (["你好呀"], ["又见面啦"])


def test_language_follows_the_fan(tiny_engine):
    say(tiny_engine, "hello")
    assert say(tiny_engine, "is there parking?") == ["Parking: five spaces out front"]
    assert say(tiny_engine, "有停车位吗") == ["停车：门口有5个车位"]


def test_traditional_chinese_is_understood(tiny_engine):
    say(tiny_engine, "你好")
    assert say(tiny_engine, "有停車位嗎") == ["停车：门口有5个车位"]


def test_variants_never_repeat_the_last_one(tiny_engine):
    say(tiny_engine, "hi")
    seen = [say(tiny_engine, "hi")[0] for _ in range(8)]
    assert all(a != b for a, b in zip(seen, seen[1:], strict=False))
    assert set(seen) == {"hi again", "hello again"}


def test_every_turn_is_logged_with_intent_and_states(tiny_engine, fresh_db):
    say(tiny_engine, "几点开门")
    rows = fresh_db.conn.execute(
        "SELECT direction, text, intent, state_before, state_after, reply_key, in_reply_to "
        "FROM messages ORDER BY id"
    ).fetchall()
    inbound, *outbound = [dict(r) for r in rows]
    assert inbound["direction"] == "in" and inbound["intent"] == "hours"
    assert (inbound["state_before"], inbound["state_after"]) == ("new", "chatting")
    assert [o["reply_key"] for o in outbound] == ["welcome", "hours"]
    assert all(o["in_reply_to"] is not None for o in outbound)


def test_a_platform_retry_is_answered_from_the_log_not_run_again(tiny_engine, fresh_db):
    first = tiny_engine.handle(Inbound(FAN, text="几点开门", platform_msg_id="m1"))
    again = tiny_engine.handle(Inbound(FAN, text="几点开门", platform_msg_id="m1"))
    assert [r.text for r in again] == [r.text for r in first]
    count = fresh_db.conn.execute("SELECT count(*) FROM messages WHERE direction='in'").fetchone()[
        0
    ]
    assert count == 1


def test_subscription_needs_confirmation(tiny_engine, fresh_db):
    say(tiny_engine, "你好")
    assert say(tiny_engine, "我要订阅") == ["要订阅我们的消息吗？回复 是 或 不"]
    assert fan_row(fresh_db)["dialog_state"] == "confirm_subscribe"
    assert fan_row(fresh_db)["subscribed"] == 0
    assert say(tiny_engine, "好的") == ["订阅成功，回复 退订 可随时取消"]
    fan = fan_row(fresh_db)
    assert fan["subscribed"] == 1 and fan["subscribed_at"]
    events = [r["kind"] for r in fresh_db.conn.execute("SELECT kind FROM events")]
    assert "subscribe" in events
    assert say(tiny_engine, "退订") == ["已退订，不会再打扰"]
    assert fan_row(fresh_db)["subscribed"] == 0


def test_declining_the_subscription(tiny_engine, fresh_db):
    say(tiny_engine, "subscribe")
    assert say(tiny_engine, "no") == ["OK, not subscribing"]
    assert fan_row(fresh_db)["subscribed"] == 0


def test_complaint_hands_off_and_the_bot_only_acknowledges(tiny_engine, fresh_db):
    say(tiny_engine, "你好")
    assert say(tiny_engine, "我要投诉你们") == ["非常抱歉，同事马上来处理"]
    fan = fan_row(fresh_db)
    assert fan["dialog_state"] == "handoff" and fan["handoff"] == 1
    assert say(tiny_engine, "几点开门") == ["收到，已转给同事"]
    replies = tiny_engine.handle(Inbound(FAN, kind="event", event="handoff_end"))
    assert [r.text for r in replies] == ["我回来啦，有问题随时问"]
    assert fan_row(fresh_db)["handoff"] == 0
    assert say(tiny_engine, "几点开门") == ["营业时间：每天9点到21点"]


def test_two_misses_in_a_row_offer_a_human(tiny_engine):
    say(tiny_engine, "你好")
    assert say(tiny_engine, "量子纠缠怎么理解") == ["没听懂，可以问营业时间或停车"]
    assert say(tiny_engine, "黑洞里面是什么样子") == ["要不要找真人帮你？回复 人工"]
    assert say(tiny_engine, "几点开门") == ["营业时间：每天9点到21点"]
    assert say(tiny_engine, "量子纠缠怎么理解") == ["没听懂，可以问营业时间或停车"]


def test_taboo_subjects_are_deflected(tiny_engine):
    say(tiny_engine, "hi")
    assert say(tiny_engine, "what do you think about the election") == [
        "We'd rather not talk about that"
    ]


def test_strangers_get_deal_information_but_no_offer(tiny_engine, fresh_db):
    replies = tiny_engine.handle(Inbound(FAN, text="有优惠吗"))
    assert [r.key for r in replies] == ["welcome", "deals_info"]


def test_friends_get_an_offer_at_most_once_a_week(tiny_engine, fresh_db, clock):
    for _ in range(8):
        say(tiny_engine, "几点开门")
    assert fan_row(fresh_db)["stage"] == "friend"
    keys = [r.key for r in tiny_engine.handle(Inbound(FAN, text="有优惠吗"))]
    assert keys == ["deals_info", "deals_offer"]
    keys = [r.key for r in tiny_engine.handle(Inbound(FAN, text="有优惠吗"))]
    assert keys == ["deals_info"]
    clock.advance(days=8)
    for _ in range(3):
        say(tiny_engine, "几点开门")
    keys = [r.key for r in tiny_engine.handle(Inbound(FAN, text="有优惠吗"))]
    assert keys == ["deals_info", "deals_offer"]


def test_stage_grows_with_interactions_and_decays_with_silence(tiny_engine, fresh_db, clock):
    say(tiny_engine, "你好")
    assert fan_row(fresh_db)["stage"] == "stranger"
    say(tiny_engine, "几点开门")
    assert fan_row(fresh_db)["stage"] == "acquaintance"
    changes = [
        json.loads(r["payload"])
        for r in fresh_db.conn.execute("SELECT payload FROM events WHERE kind='stage_change'")
    ]
    assert changes == [{"from": "stranger", "to": "acquaintance", "score": 3.0}]
    clock.advance(days=120)
    say(tiny_engine, "你好")
    fan = fan_row(fresh_db)
    assert fan["stage"] == "stranger" and fan["score"] < 3


def test_referral_code_on_first_contact_credits_the_referrer(tiny_engine, fresh_db):
    say(tiny_engine, "你好")
    code = fan_row(fresh_db)["referral_code"]
    bob = FanRef("test", "bob")
    say(tiny_engine, "你好", fan=bob, payload={"ref": code})
    ann, bob_row = fan_row(fresh_db), fan_row(fresh_db, bob)
    assert bob_row["referred_by"] == ann["id"]
    assert ann["score"] >= 10
    referral = dict(fresh_db.conn.execute("SELECT * FROM referrals").fetchone())
    assert (referral["referrer_id"], referral["referred_id"], referral["code"]) == (
        ann["id"],
        bob_row["id"],
        code,
    )


def test_campaign_code_is_the_source_and_first_touch_is_kept(tiny_engine, fresh_db):
    say(tiny_engine, "hi", payload={"ref": "POSTER-A"})
    say(tiny_engine, "hi", payload={"ref": "POSTER-B"})
    fan = fan_row(fresh_db)
    assert fan["source_code"] == "POSTER-A" and fan["referred_by"] is None
    kinds = [r["kind"] for r in fresh_db.conn.execute("SELECT kind FROM events ORDER BY id")]
    assert "touch" in kinds


def test_state_continues_across_engines_on_the_same_file(fresh_db, tiny_brand, clock):
    say(Engine(fresh_db, tiny_brand, clock=clock), "subscribe")
    assert say(Engine(fresh_db, tiny_brand, clock=clock), "yes") == [
        "Subscribed. Reply unsubscribe any time"
    ]


def test_a_broken_turn_answers_in_voice_and_keeps_the_message(
    tiny_engine, fresh_db, monkeypatch, caplog
):
    def explode(*args, **kwargs):
        raise RuntimeError("database exploded: secret detail")

    monkeypatch.setattr(tiny_engine, "_apply", explode)
    replies = tiny_engine.handle(Inbound(FAN, text="几点开门"))
    assert [r.text for r in replies] == ["哎呀，出了点小问题，请稍后再试"]
    assert "secret detail" not in replies[0].text
    assert "turn failed" in caplog.text
    texts = [r["text"] for r in fresh_db.conn.execute("SELECT text FROM messages ORDER BY id")]
    assert texts == ["几点开门", "哎呀，出了点小问题，请稍后再试"]


def test_odd_input_never_crashes(tiny_engine):
    for text in ["", "   ", "\x00\x01", "\ud800", "👍" * 500, "a" * 20000, "\u202e\u200b", "؟"]:
        replies = tiny_engine.handle(Inbound(FAN, text=text))
        assert all(r.key != "error" for r in replies), text


def test_menu_click_maps_to_an_intent(tiny_engine):
    say(tiny_engine, "hi")
    replies = tiny_engine.handle(
        Inbound(FAN, kind="event", event="click", payload={"key": "MENU_HOURS"}, language="en")
    )
    assert [r.text for r in replies] == ["Hours: 9am to 9pm daily"]


def test_concurrent_turns_of_many_fans_are_all_logged(tiny_engine, fresh_db):
    def chat(n: int) -> None:
        fan = FanRef("test", f"fan{n}")
        for i in range(10):
            tiny_engine.handle(Inbound(fan, text="几点开门", platform_msg_id=str(i)))

    threads = [threading.Thread(target=chat, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    count = fresh_db.conn.execute("SELECT count(*) FROM messages WHERE direction='in'").fetchone()[
        0
    ]
    assert count == 80
    assert fresh_db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_one_shared_machine_serves_every_fan(tiny_engine, tiny_brand):
    machine = tiny_brand.dialog.machine
    for n in range(5):
        say(tiny_engine, "我要订阅", fan=FanRef("test", f"f{n}"))
    assert tiny_brand.dialog.machine is machine
    assert machine.models == []  # no per-fan model is ever registered on the machine


def test_removed_state_migrates_to_the_declared_state(fresh_db, tiny_brand, clock):
    engine = Engine(fresh_db, tiny_brand, clock=clock)
    say(engine, "hi")
    fresh_db.conn.execute("UPDATE fans SET dialog_state = 'confirm_newsletter'")
    # the default dialog declares `'*': chatting` for states that disappeared
    assert say(engine, "几点开门") == ["营业时间：每天9点到21点"]
    assert fan_row(fresh_db)["dialog_state"] == "chatting"


def test_without_a_migration_a_fan_starts_over_from_the_initial_state(tiny_brand):
    from bot.dialog.machine import Dialog

    spec = tiny_brand.dialog.spec.model_copy(update={"state_migrations": {}})
    dialog = Dialog(spec)
    assert dialog.migrate("confirm_newsletter") == "new"
    assert dialog.migrate("handoff") == "handoff"
    assert tiny_brand.dialog.migrate("confirm_newsletter") == "chatting"


def test_menu_click_may_name_a_reply_key(fresh_db, tiny_brand, clock):
    persona = tiny_brand.persona.model_copy(update={"menu_clicks": {"MENU_WIFI": "media_received"}})
    brand = type(tiny_brand)(**{**tiny_brand.__dict__, "persona": persona})
    engine = Engine(fresh_db, brand, clock=clock)
    say(engine, "hi")
    replies = engine.handle(Inbound(FAN, kind="event", event="click", payload={"key": "MENU_WIFI"}))
    assert [r.key for r in replies] == ["media_received"]


def test_handle_turn_reports_what_the_turn_decided(tiny_engine):
    first = tiny_engine.handle_turn(Inbound(FAN, text="几点开门", platform_msg_id="a"))
    assert first.outcome.intent == "hours" and not first.outcome.fallback
    retry = tiny_engine.handle_turn(Inbound(FAN, text="几点开门", platform_msg_id="a"))
    assert retry.outcome is None and retry.replies == first.replies
    assert tiny_engine.handle_turn(Inbound(FAN, text="量子纠缠")).outcome.fallback
    complaint = tiny_engine.handle_turn(Inbound(FAN, text="我要投诉"))
    assert complaint.outcome.handoff and complaint.outcome.intent == "complaint"


def test_a_second_handoff_end_says_nothing(tiny_engine, fresh_db):
    say(tiny_engine, "我要投诉")
    first = tiny_engine.handle(Inbound(FAN, kind="event", event="handoff_end"))
    assert [r.key for r in first] == ["handoff_end"]
    assert tiny_engine.handle(Inbound(FAN, kind="event", event="handoff_end")) == []


def test_a_persona_without_emoji_never_sends_any(tiny_brand):
    import random

    from bot.persona.voice import Voice

    assert tiny_brand.persona.voice.emoji == "none"
    replies = {**tiny_brand.persona.replies, "greet": {"zh": ["你好☕😀✨"], "en": ["hi ❤️ 👍🏽"]}}
    voice = Voice(tiny_brand.persona.model_copy(update={"replies": replies}))
    rng = random.Random(0)
    assert voice.render("greet", "zh", fan_name=None, memory={}, rng=rng)[0] == "你好"
    assert voice.render("greet", "en", fan_name=None, memory={}, rng=rng)[0] == "hi"

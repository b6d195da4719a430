"""The turn's cheaper parts behave exactly as the plain versions did.

Voice.render (precompiled templates, precomputed choices), Dialog.fire (one event look-up) and
Metrics.observe_turn (cached label children) are checked against straightforward reference
implementations.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from itertools import product

import pytest

from bot.brand import load_brand
from bot.dialog.context import TurnContext, TurnModel
from bot.engine import Turn, TurnOutcome
from bot.messages import Reply
from bot.metrics import Metrics
from bot.persona.voice import _EMOJI, Voice, _Fields

# -- voice ----------------------------------------------------------------------------------


def reference_render(voice: Voice, key, language, *, fan_name, memory, rng):
    """Voice.render as it was written first: no caches, no precompiled templates."""
    p = voice.persona
    variants = p.replies.get(key, {})
    if variants.get(language):
        pass
    elif variants.get(p.default_language):
        language = p.default_language
    else:
        language = next((lang for lang, texts in variants.items() if texts), language)
    variants = p.replies.get(key, {}).get(language) or []
    if not variants:
        return "", language
    last = memory.get(key)
    choices = [i for i in range(len(variants)) if i != last] or [0]
    index = rng.choice(choices)
    memory[key] = index
    fields = _Fields({key: p.text(value, language) for key, value in p.facts.items()})
    fields.update(
        me=p.text(p.identity.self_reference or p.identity.name, language),
        brand=p.text(p.brand, language),
        sign_off=p.text(p.voice.sign_off, language),
    )
    catchphrases = p.voice.catchphrases.get(language) or []
    fields.update(
        fan=fan_name or p.text(p.identity.fan_address, language),
        catchphrase=rng.choice(catchphrases) if catchphrases else "",
    )
    try:
        text = variants[index].format_map(fields)
    except (ValueError, IndexError, AttributeError, KeyError):
        text = variants[index]
    if p.voice.emoji == "none":
        text = _EMOJI.sub("", text)
    return text.strip(), language


def assert_same_renders(persona, keys) -> None:
    voice = Voice(persona)
    memories = [None, 0, 1, 2, 7, -1, "1", 1.0, True, [1]]
    for key, language, fan_name, last in product(
        keys, ["zh", "en", "fr", ""], [None, "", "Bob", "阿{fan}}"], memories
    ):
        for seed in range(3):
            got_memory = {} if last is None else {key: last}
            want_memory = dict(got_memory)
            got_rng, want_rng = random.Random(seed), random.Random(seed)
            for _ in range(3):  # the first call fills the caches; the next use them
                got = voice.render(key, language, fan_name=fan_name, memory=got_memory, rng=got_rng)
                want = reference_render(
                    voice, key, language, fan_name=fan_name, memory=want_memory, rng=want_rng
                )
                assert got == want, (key, language, fan_name, last, seed)
                assert got_memory == want_memory
                assert got_rng.getstate() == want_rng.getstate()


@pytest.mark.parametrize("persona", ["laowang-kitchen", "northbound-coffee"])
@pytest.mark.slow
def test_render_matches_the_plain_render_for_every_reply(persona):
    brand = load_brand(persona)
    assert_same_renders(brand.persona, [*brand.persona.replies, "no_such_key"])


TRICKY = [
    "{fan}，{catchphrase} {me} {brand} {sign_off}",
    "{{fan}} {{{fan}}} }} {{",
    "{unknown} and {fan} {catchphrase}",
    "{unknown}",
    "{fan:>8}|{me!r}|{me!s:^5}",
    "{0} {}",
    "{me.upper} {fan[0]}",
    "{hours",
    "hours}",
    "{fan",
    "  ☕ {fan} 😀  ",
    "✨",
    "",
    "   ",
    "{trap} {fan}",
    "{trap}",
    "{营业时间} {fan}",
]


@pytest.mark.parametrize("emoji", ["none", "light"])
def test_render_matches_the_plain_render_for_odd_templates(tiny_brand, emoji):
    p = tiny_brand.persona
    replies = {
        **p.replies,
        "odd": {"zh": TRICKY, "en": TRICKY[:3]},
        "one": {"zh": ["只有一个 {fan}"]},
        "only_en": {"zh": [], "en": ["{fan} ☕", "{brand}"]},
        "empty": {"zh": [], "en": []},
    }
    facts = {**p.facts, "trap": {"zh": "{fan} }{ 😀", "en": "{{x}}"}, "营业时间": "9-21"}
    persona = p.model_copy(
        update={
            "replies": replies,
            "facts": facts,
            "voice": p.voice.model_copy(update={"emoji": emoji}),
        }
    )
    assert_same_renders(persona, ["odd", "one", "only_en", "empty", "greet"])


def test_render_keeps_choices_from_repeating(demo_brand):
    voice, rng, memory = demo_brand.voice, random.Random(1), {}
    seen = [
        voice.render("greet", "zh", fan_name=None, memory=memory, rng=rng)[0] for _ in range(50)
    ]
    assert all(a != b for a, b in zip(seen, seen[1:], strict=False))


# -- dialog ---------------------------------------------------------------------------------

TRIGGERS = [
    "first_contact", "greet", "subscribe", "affirm", "deny", "subscribe", "subscribe",
    "unsubscribe", "not_understood", "not_understood", "complaint", "greet", "handoff_end",
    "deals", "human", "unsubscribe", "handoff_end", "taboo", "goodbye", "follow", "unfollow",
    "hours", "voice", "media", "no_such_trigger",
]  # fmt: skip


def run_dialog(brand, stage: str) -> list:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    fan = {"stage": stage, "id": 1}
    trace, state = [], brand.dialog.initial
    for i, trigger in enumerate(TRIGGERS):
        ctx = TurnContext(
            persona=brand.persona,
            fan=fan,
            now=now,
            language="zh",
            first_turn=i == 0,
            misses=i % 3,
            subscribed=trigger == "subscribe" and i % 2 == 0,
            offers_this_week=lambda: 0,
        )
        model = TurnModel(state, ctx)
        fired = brand.dialog.fire(trigger, model)
        state = model.state
        trace.append(
            (trigger, fired, state, ctx.reply_keys, ctx.events, ctx.subscribed, ctx.in_handoff)
        )
    return trace


@pytest.mark.parametrize("stage", ["stranger", "friend"])
def test_fire_is_the_same_with_transitions_logging_on(demo_brand, caplog, stage):
    quiet = run_dialog(demo_brand, stage)
    with caplog.at_level(logging.DEBUG, logger="transitions"):
        loud = run_dialog(demo_brand, stage)
    assert quiet == loud
    # With the logger on, transitions' own code ran and logged as it always does.
    messages = [r.getMessage() for r in caplog.records if r.name == "transitions.core"]
    assert any("Initiating transition from state new to state chatting" in m for m in messages)
    assert any(m.startswith("Executed callback '") for m in messages)
    assert any("Transition condition failed" in m for m in messages)
    caplog.clear()
    assert run_dialog(demo_brand, stage) == quiet
    assert not [r for r in caplog.records if r.name.startswith("transitions")]


def test_fire_moves_the_model_and_runs_enter_exit_callbacks(tiny_brand):
    from bot.dialog.machine import Dialog
    from bot.dialog.spec import DialogSpec

    spec = DialogSpec(
        id="t",
        initial="a",
        states=[
            {"name": "a", "on_exit": [{"tag": "left_a"}]},
            {"name": "b", "on_enter": [{"tag": "in_b"}, {"reply": "greet"}]},
        ],
        transitions=[
            {"trigger": "go", "source": "a", "dest": "b", "before": [{"reply": "welcome"}]},
            {"trigger": "go", "source": "b", "dest": "=", "unless": [{"has_tag": "in_b"}]},
            {"trigger": "stay", "source": "b", "dest": None, "after": [{"untag": "in_b"}]},
        ],
    )
    dialog = Dialog(spec)
    ctx = TurnContext(
        persona=tiny_brand.persona, fan={"stage": "stranger"}, now=None, language="zh"
    )
    model = TurnModel("a", ctx)
    assert dialog.fire("go", model) and model.state == "b"
    assert ctx.reply_keys == ["welcome", "greet"] and ctx.tags == {"left_a", "in_b"}
    assert not dialog.fire("go", model)  # unless has_tag held
    assert dialog.fire("stay", model) and model.state == "b" and ctx.tags == {"left_a"}
    assert dialog.fire("go", model) and ctx.reply_keys == ["welcome", "greet", "greet"]
    assert not dialog.fire("nothing", model) and not dialog.handles("go", "nowhere")


# -- metrics --------------------------------------------------------------------------------


def reference_observe(m: Metrics, channel, persona, seconds, turn) -> None:
    replies, outcome = turn.replies, turn.outcome
    m.messages_in.labels(channel, persona).inc()
    if replies:
        m.messages_out.labels(channel, persona).inc(len(replies))
    m.turn_seconds.labels(channel).observe(seconds)
    if outcome is None:
        return
    if outcome.intent:
        m.intents.labels(persona, outcome.intent).inc()
    if outcome.fallback:
        m.fallbacks.labels(persona).inc()
    if outcome.handoff:
        m.handoffs.labels(persona).inc()
    if outcome.failed:
        m.errors.labels("turn").inc()


def test_observe_turn_exports_what_labels_every_turn_did():
    rng = random.Random(3)
    got, want = Metrics(), Metrics()
    reply = Reply("x", "hours", "zh")
    outcomes = [
        None,
        TurnOutcome(intent="hours"),
        TurnOutcome(intent=None, fallback=True),
        TurnOutcome(intent="complaint", handoff=True, in_handoff=True),
        TurnOutcome(intent=None, failed=True),
    ]
    for _ in range(300):
        args = (
            rng.choice(["web", "telegram", "wechat"]),
            rng.choice(["laowang-kitchen", "northbound-coffee"]),
            rng.choice([0.0001, 0.0007, 0.003, 0.2, 3.0]),
            Turn([reply] * rng.choice([0, 1, 2]), rng.choice(outcomes)),
        )
        got.observe_turn(*args)
        reference_observe(want, *args)
    strip = [b"brandbot_start_time_seconds "]
    lines = [
        [ln for ln in m.render().splitlines() if not any(ln.startswith(s) for s in strip)]
        for m in (got, want)
    ]
    assert lines[0] == lines[1]
    assert any(b'brandbot_intents_total{intent="hours"' in ln for ln in lines[0])

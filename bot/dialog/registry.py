"""The names a dialog file may use: conditions, actions and builtin triggers.

Dialogs never name Python import paths (transitions would import them); they name entries here.
Each entry declares what argument it takes so the loader can check a dialog before any fan
reaches it. Conditions read the :class:`~bot.dialog.context.TurnContext`; actions record what the
turn should do (replies, subscription, handoff, tags) on it — the engine applies the effects
and writes them in the turn's single transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bot.dialog.context import TurnContext
from bot.persona.model import STAGES

# What kind of argument a registry entry takes; the loader validates it against the persona.
ArgKind = Literal["none", "reply_key", "stage", "int", "tag", "language", "interaction"]


@dataclass(frozen=True)
class Entry:
    func: Callable[[TurnContext, Any], Any]
    arg: ArgKind
    doc: str


# Triggers the engine fires itself, besides the persona's intent names.
BUILTIN_TRIGGERS: dict[str, str] = {
    "first_contact": "the first message or event from a fan the bot has never seen",
    "not_understood": "a message whose intent confidence is below the threshold",
    "taboo": "a message touching one of the persona's taboo subjects",
    "affirm": "a short yes (是 / 好 / yes / ok) — for confirmation steps",
    "deny": "a short no (不 / 算了 / no) — for confirmation steps",
    "follow": "the fan followed the account (WeChat subscribe) or started the bot",
    "unfollow": "the fan unfollowed or blocked the account",
    "handoff_end": "an operator handed the conversation back to the bot",
    "voice": "a voice message without recognised text",
    "media": "a photo, sticker, video, location or link",
}


def _stage_index(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else 0


CONDITIONS: dict[str, Entry] = {
    "stage_at_least": Entry(
        lambda ctx, stage: _stage_index(ctx.fan["stage"]) >= _stage_index(stage),
        "stage",
        "the fan's relationship stage is this one or above",
    ),
    "is_subscribed": Entry(
        lambda ctx, _: bool(ctx.subscribed), "none", "the fan is subscribed to the newsletter"
    ),
    "commercial_allowed": Entry(
        lambda ctx, _: ctx.commercial_allowed(),
        "none",
        "the persona may make this fan an offer now (stage and weekly cap)",
    ),
    "in_handoff": Entry(
        lambda ctx, _: bool(ctx.in_handoff), "none", "a human operator holds the conversation"
    ),
    "first_turn": Entry(lambda ctx, _: ctx.first_turn, "none", "this is the fan's very first turn"),
    "misses_at_least": Entry(
        lambda ctx, n: ctx.misses >= int(n),
        "int",
        "the bot failed to understand this many messages in a row (this one included)",
    ),
    "has_tag": Entry(lambda ctx, tag: tag in ctx.tags, "tag", "the fan carries this tag"),
    "language_is": Entry(
        lambda ctx, lang: ctx.language == lang, "language", "the fan writes in this language"
    ),
}


def _reply(ctx: TurnContext, key: str) -> None:
    ctx.reply_keys.append(key)


def _answer_intent(ctx: TurnContext, _: Any) -> None:
    ctx.answer_intent()


def _subscribe(ctx: TurnContext, _: Any) -> None:
    ctx.set_subscribed(True)


def _unsubscribe(ctx: TurnContext, _: Any) -> None:
    ctx.set_subscribed(False)


def _start_handoff(ctx: TurnContext, _: Any) -> None:
    ctx.set_handoff(True)


def _end_handoff(ctx: TurnContext, _: Any) -> None:
    ctx.set_handoff(False)


def _tag(ctx: TurnContext, tag: str) -> None:
    ctx.tags.add(tag)


def _untag(ctx: TurnContext, tag: str) -> None:
    ctx.tags.discard(tag)


def _record_offer(ctx: TurnContext, _: Any) -> None:
    ctx.add_event("offer", {"intent": ctx.understanding_intent})


def _interaction(ctx: TurnContext, kind: str) -> None:
    ctx.interactions.append(kind)


def _reset_misses(ctx: TurnContext, _: Any) -> None:
    ctx.misses = 0


ACTIONS: dict[str, Entry] = {
    "reply": Entry(_reply, "reply_key", "say one variant of this reply key"),
    "answer_intent": Entry(
        _answer_intent, "none", "say the reply of the recognised intent (fact questions)"
    ),
    "subscribe": Entry(_subscribe, "none", "subscribe the fan to the newsletter (consent logged)"),
    "unsubscribe": Entry(_unsubscribe, "none", "unsubscribe the fan (logged)"),
    "start_handoff": Entry(_start_handoff, "none", "hand the conversation to a human operator"),
    "end_handoff": Entry(_end_handoff, "none", "give the conversation back to the bot"),
    "tag": Entry(_tag, "tag", "add a tag to the fan"),
    "untag": Entry(_untag, "tag", "remove a tag from the fan"),
    "record_offer": Entry(_record_offer, "none", "log that an offer was made (weekly cap)"),
    "interaction": Entry(
        _interaction, "interaction", "count an interaction of this kind toward the fan's score"
    ),
    "reset_misses": Entry(_reset_misses, "none", "forget previous misunderstandings"),
}

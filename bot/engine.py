"""``Engine.handle(inbound) -> replies``: one whole turn, written in one transaction.

The turn (docs/architecture.md):
1. dedupe — a platform message id seen before is answered from the stored replies;
2. the fan — created on first contact, with the referral or campaign code that brought them;
3. understanding — intent, confidence, language, taboo, yes/no;
4. the dialog — the fan's state and a trigger on the persona's shared transitions machine;
5. the voice — reply keys rendered as on-voice text in the fan's language;
6. the relationship — score, stage, subscription, handoff, tags;
7. one transaction — the inbound row, the outbound rows, the fan and the events commit together.

The engine does no network I/O: channels deliver the replies it returns. Unexpected errors
are logged with context and the fan gets the persona's ``error`` reply, never exception text.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot import i18n
from bot.brand import Brand
from bot.clock import utc_now
from bot.dialog.context import TurnContext, TurnModel
from bot.dialog.machine import run_actions
from bot.errors import UnknownPersonaError
from bot.messages import FanRef, Inbound, Reply, storable_text
from bot.relations import fans, kols
from bot.relations.scoring import add_interactions, decayed, stage_for
from bot.relations.store import (
    Store,
    StoreBusy,
    StoreFull,
    dumps,
    insert_message,
    iso,
    log_event,
    storage_full,
)

log = logging.getLogger("brandbot.engine")

_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_LOCK_STRIPES = 256
# Trigger of a message that asks for a fact no intent's reply carries (answered with the fact).
ANSWER_FACT = "answer_fact"
# A refusal with nothing to do ("不用订位了"): the persona's `acknowledge` reply, not a miss; a
# question about another business ("海底捞几点关门"): its `not_ours` reply, also before our answer
# to the other question of the same message. Without those reply keys: as before (fallback).
ACKNOWLEDGE = "acknowledge"
NOT_OURS = "not_ours"
_DECLINED = {"negation": ACKNOWLEDGE, "other-subject": NOT_OURS}


def _storable(inbound: Inbound) -> Inbound:
    text, name = storable_text(inbound.text), storable_text(inbound.display_name)
    external_id = storable_text(inbound.fan.external_id)
    if (text, name, external_id) == (inbound.text, inbound.display_name, inbound.fan.external_id):
        return inbound
    fan = FanRef(inbound.fan.channel, external_id)
    return dataclasses.replace(inbound, text=text, display_name=name, fan=fan)


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What a turn decided beyond its replies: the intent, a miss, a new handoff, a failure."""

    intent: str | None
    fallback: bool = False
    handoff: bool = False  # this turn started a handoff
    failed: bool = False
    in_handoff: bool = False  # a human holds the conversation after this turn


FAILED = TurnOutcome(intent=None, failed=True)


@dataclass(frozen=True, slots=True)
class Turn:
    """The replies to deliver, and the outcome (None when answered from the log: a retry)."""

    replies: list[Reply]
    outcome: TurnOutcome | None = None


class Engine:
    """Runs turns for one or more brands against one relationship log.

    ``brands`` maps persona id → :class:`Brand`; swap entries with :meth:`set_brand` to reload
    a persona without stopping (turns in flight finish on the brand they started with).
    ``clock`` and ``seed`` make conversation tests reproducible.
    """

    def __init__(
        self,
        store: Store,
        brands: Brand | Mapping[str, Brand],
        *,
        clock: Callable[[], datetime] = utc_now,
        seed: int | None = None,
    ):
        self.store = store
        self.brands: dict[str, Brand] = (
            {brands.id: brands} if isinstance(brands, Brand) else dict(brands)
        )
        if not self.brands:
            raise ValueError("an engine needs at least one brand")
        self.clock = clock
        self.rng = random.Random(seed)
        # A fan's turns run one at a time and in order; different fans proceed concurrently.
        self._fan_locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    # -- brands ------------------------------------------------------------------------------

    def brand(self, persona: str | None = None) -> Brand:
        if persona is None:
            return next(iter(self.brands.values()))
        try:
            return self.brands[persona]
        except KeyError:
            raise UnknownPersonaError(i18n.gettext(
                "persona {persona!r} is not loaded; loaded: {loaded}"
            ).format(persona=persona, loaded=", ".join(self.brands))) from None

    def set_brand(self, brand: Brand) -> None:
        self.brands[brand.id] = brand

    # -- the turn ----------------------------------------------------------------------------

    def handle(self, inbound: Inbound, persona: str | None = None) -> list[Reply]:
        """Run one turn for ``inbound`` and return the replies to deliver."""
        return self.handle_turn(inbound, persona).replies

    def handle_turn(
        self, inbound: Inbound, persona: str | None = None, wait: bool = True
    ) -> Turn:
        """Like :meth:`handle`, with what the turn decided (for metrics and channels).

        ``wait=False`` (the daemon's event loop): raise :class:`StoreBusy`, having done nothing,
        instead of waiting for another turn of the same fan or for the database.
        """
        brand = self.brand(persona)
        inbound = _storable(inbound)
        key = f"{brand.id}\0{inbound.fan.channel}\0{inbound.fan.external_id}"
        lock = self._fan_locks[zlib.crc32(key.encode()) % _LOCK_STRIPES]
        if not lock.acquire(blocking=wait):
            raise StoreBusy("another turn of this fan is running", process=False)
        try:
            try:
                return self._turn(brand, inbound, wait)
            except StoreBusy:
                raise
            except Exception as exc:
                if storage_full(exc):  # nothing can be logged: no apology turn either
                    raise StoreFull() from exc
                log.exception(
                    "turn failed: persona=%s channel=%s fan=%s msg_id=%s",
                    brand.id,
                    inbound.fan.channel,
                    inbound.fan.external_id,
                    inbound.platform_msg_id,
                )
                return self._record_failure(brand, inbound)
        finally:
            lock.release()

    def _turn(self, brand: Brand, inbound: Inbound, wait: bool = True) -> Turn:
        store, persona = self.store, brand.persona
        now = inbound.received_at or self.clock()
        with store.transaction(wait, join_group=True) as conn:
            fan, answered = store.find_fan_and_message(
                persona.id, inbound.fan.channel, inbound.fan.external_id, inbound.platform_msg_id
            )
            if answered is not None:  # a platform retry: the same replies, no second turn
                stored = store.replies_to(answered)
                return Turn([Reply(r["text"], r["reply_key"], r["language"]) for r in stored])
            first_turn = fan is None
            if fan is None:
                fan = self._create_fan(conn, brand, inbound, now)
            elif inbound.payload.get("ref"):
                self._event(conn, fan["id"], "touch", {"code": inbound.payload["ref"]}, now)

            state_before = brand.dialog.migrate(fan["dialog_state"])
            understanding = None
            if inbound.kind == "message":
                understanding = brand.understander.understand(
                    inbound.text,
                    forced_language=inbound.language,
                    fallback_language=fan["language"],
                )
                language = understanding.language
            else:
                language = inbound.language or fan["language"] or persona.default_language

            ctx = TurnContext(
                persona=persona,
                fan=fan,
                now=now,
                language=language,
                first_turn=first_turn,
                misses=fan["misses"],
                subscribed=bool(fan["subscribed"]),
                in_handoff=bool(fan["handoff"]),
                tags=set(json.loads(fan["tags"])) if fan["tags"] != "[]" else set(),
                offers_this_week=lambda: store.count_events(
                    fan["id"], "offer", iso(now - timedelta(days=7))
                ),
            )
            model = TurnModel(state_before, ctx)
            if state_before == brand.dialog.initial:
                # New fans, and fans whose old state vanished with no migration, start over.
                brand.dialog.fire("first_contact", model)
            trigger = self._trigger(brand, inbound, understanding, model.state)
            ctx.intent = trigger if trigger in persona.intents else None
            ctx.understanding_intent = understanding.intent if understanding else None
            if understanding is not None and understanding.fact and (
                trigger in (understanding.intent, ANSWER_FACT)
            ):
                ctx.fact = understanding.fact
            if trigger == "not_understood":
                ctx.misses += 1
            elif understanding is not None:
                ctx.misses = 0
            if not brand.dialog.fire(trigger, model):
                self._otherwise(brand, ctx, model.state, trigger, inbound.event == "click")
            if understanding is not None and understanding.also and trigger == understanding.intent:
                self._answer_also(brand, ctx, model, understanding.also)
            if understanding is not None and understanding.declined and NOT_OURS in persona.replies:
                ctx.reply_keys.insert(0, NOT_OURS)  # the clause about someone else, first

            replies = self._render(brand, ctx, fan)
            self._apply(conn, brand, inbound, fan, ctx, model.state, now, understanding)
            in_id = self._log_inbound(
                conn,
                inbound,
                fan["id"],
                understanding,
                trigger,
                state_before,
                model.state,
                now,
                language,
            )
            for reply in replies:
                insert_message(
                    conn,
                    fan_id=fan["id"],
                    direction="out",
                    text=reply.text,
                    intent=ctx.intent,
                    state_before=state_before,
                    state_after=model.state,
                    created_at=iso(now),
                    channel=inbound.fan.channel,
                    language=reply.language,
                    reply_key=reply.key,
                    in_reply_to=in_id,
                )
            outcome = TurnOutcome(
                intent=ctx.intent,
                fallback="fallback" in ctx.reply_keys or "offer_human" in ctx.reply_keys,
                handoff=ctx.in_handoff and not fan["handoff"],
                in_handoff=ctx.in_handoff,
            )
            return Turn(replies, outcome)

    def _trigger(self, brand: Brand, inbound: Inbound, understanding, state: str) -> str:
        """What to fire on the dialog: an event name, a yes/no, taboo, an intent or a miss."""
        dialog, persona = brand.dialog, brand.persona
        if inbound.kind == "event":
            event = inbound.event or ""
            if event == "click":
                target = persona.menu_clicks.get(str(inbound.payload.get("key", "")))
                return target or "not_understood"
            return event
        if understanding.taboo:
            return "taboo"
        if understanding.confirmation and dialog.handles(understanding.confirmation, state):
            return understanding.confirmation
        if understanding.intent is None and understanding.fact:
            return ANSWER_FACT  # a fact no intent's reply carries (a phone number)
        declined = _DECLINED.get(understanding.rule) if understanding.intent is None else None
        if declined == ACKNOWLEDGE and dialog.handles("deny", state):
            return "deny"  # "不用了" while a confirmation is pending is its no
        if declined in persona.replies:
            return declined
        return understanding.intent or "not_understood"

    @staticmethod
    def _answer_also(brand: Brand, ctx: TurnContext, model: TurnModel, also) -> None:
        """Two questions in one message: answer the others after the first, in this turn.

        Each further intent fires on the dialog as if sent next (a deals question gets its
        deals replies, a subscribe its confirmation step); one the dialog does not handle adds
        its intent's reply. Nothing more once a human holds the conversation.
        """
        persona, first = brand.persona, ctx.intent
        for intent in also:
            if intent not in persona.intents or ctx.in_handoff:
                break
            ctx.intent = intent
            if brand.dialog.fire(intent, model):
                continue
            key = persona.reply_key_for(intent)
            if key and key not in ctx.reply_keys:
                ctx.reply_keys.append(key)
        ctx.intent = first

    @staticmethod
    def _otherwise(
        brand: Brand, ctx: TurnContext, state: str, trigger: str, clicked: bool = False
    ) -> None:
        """No transition handled the trigger: the state's ``otherwise``, else a sensible default."""
        actions = brand.dialog.otherwise(state)
        if actions is not None:
            run_actions(actions, ctx)
        elif ctx.intent:
            ctx.answer_intent()  # what the `answer_intent` action does
        elif trigger == ANSWER_FACT and ctx.fact:
            ctx.answer_intent()  # says only the fact
        elif trigger == "not_understood":
            ctx.reply_keys.append("fallback")
        elif trigger in (ACKNOWLEDGE, NOT_OURS):
            ctx.reply_keys.append(trigger)
        elif trigger == "taboo":
            ctx.reply_keys.append(brand.persona.taboo.deflection)
        elif clicked and trigger in brand.persona.replies:  # a menu click naming a reply key
            ctx.reply_keys.append(trigger)
        # Any other event nobody handles gets no reply: e.g. a second `handoff_end` (a timeout
        # racing `/done`) must not tell the fan twice that the bot is back.

    def _render(self, brand: Brand, ctx: TurnContext, fan: dict[str, Any]) -> list[Reply]:
        memory = json.loads(fan["voice_memory"])
        replies = []
        for key in ctx.reply_keys:
            text, language = brand.voice.render(
                key, ctx.language, fan_name=fan["display_name"], memory=memory, rng=self.rng
            )
            if text:
                replies.append(Reply(text, key, language))
        fan["voice_memory"] = dumps(memory)
        return replies

    # -- writing the turn ---------------------------------------------------------------------

    def _create_fan(self, conn, brand: Brand, inbound: Inbound, now: datetime) -> dict[str, Any]:
        fan_id = fans.create_fan(
            conn,
            channel=inbound.fan.channel,
            external_id=inbound.fan.external_id,
            persona=brand.id,
            display_name=inbound.display_name,
            language=inbound.language,
            dialog_state=brand.dialog.initial,
            referral_code=self._new_referral_code(),
            at=iso(now),
        )
        ref = inbound.payload.get("ref")
        if ref:
            self._record_referral(conn, brand, fan_id, str(ref), inbound.fan.channel, now)
        return fans.fan_row(conn, fan_id)

    def _new_referral_code(self) -> str:
        while True:
            code = "".join(self.rng.choice(_CODE_ALPHABET) for _ in range(8))
            if self.store.fan_by_referral_code(code) is None:
                return code

    def _record_referral(
        self, conn, brand: Brand, fan_id: int, code: str, channel: str, now: datetime
    ) -> None:
        """First touch: who (a fan's personal code) or what (a campaign code) brought the fan."""
        referrer = self.store.fan_by_referral_code(code)
        referrer_id = referrer["id"] if referrer and referrer["id"] != fan_id else None
        fans.credit_referral(conn, fan_id, referrer_id, code, channel, iso(now))
        self._event(conn, fan_id, "referral", {"code": code, "referrer_id": referrer_id}, now)
        if referrer_id is not None:
            self._bump(conn, brand, referrer, ["referral"], now)

    def _bump(
        self, conn, brand: Brand, fan: dict[str, Any], kinds: list[str], now: datetime
    ) -> None:
        """Add interactions to another fan's score (a referrer) and log a stage change."""
        score, stage = self._rescore(conn, brand, fan, kinds, now)
        fans.set_score(conn, fan["id"], score, stage, iso(now))
        if fan["referred_by"] is not None:  # their score is in the sums of the two above
            rules = brand.persona.relationship
            before = decayed(fan["score"], fan["score_at"], now, rules)
            kols.pass_on(conn, rules, fan["referred_by"], score - before, now, retag=False)

    def _rescore(
        self, conn, brand: Brand, fan: dict[str, Any], kinds: list[str], now: datetime
    ) -> tuple[float, str]:
        """The fan's decayed score plus ``kinds``, its stage, and a logged stage change."""
        rules = brand.persona.relationship
        score = add_interactions(decayed(fan["score"], fan["score_at"], now, rules), kinds, rules)
        stage = stage_for(score, rules)
        if stage != fan["stage"]:
            self._event(
                conn,
                fan["id"],
                "stage_change",
                {"from": fan["stage"], "to": stage, "score": round(score, 2)},
                now,
            )
        return score, stage

    def _apply(
        self,
        conn,
        brand: Brand,
        inbound: Inbound,
        fan: dict[str, Any],
        ctx: TurnContext,
        state: str,
        now: datetime,
        understanding,
    ) -> None:
        persona = brand.persona
        kinds = list(ctx.interactions)
        if inbound.kind == "message" and understanding is not None:
            kinds.append("message")
            intent = persona.intents.get(ctx.intent or "")
            if intent is not None and intent.kind == "question":
                kinds.append("question")
        score, stage = self._rescore(conn, brand, fan, kinds, now)
        blocked = fan["blocked"]
        if inbound.kind == "event" and inbound.event in ("unfollow", "follow"):
            blocked = 1 if inbound.event == "unfollow" else 0
            self._event(conn, fan["id"], inbound.event, dict(inbound.payload), now)
        kol = kols.tag_speaker(conn, persona.relationship, fan["id"], score, now, ctx.tags, fan)
        if kol is not None:
            ctx.add_event(*kol)
        subscribed_at = fan["subscribed_at"]
        if bool(fan["subscribed"]) != ctx.subscribed:
            subscribed_at = iso(now)
        fans.save_turn(
            conn,
            fan["id"],
            at=iso(now),
            language=ctx.language,
            dialog_state=state,
            stage=stage,
            score=score,
            subscribed=ctx.subscribed,
            subscribed_at=subscribed_at,
            blocked=blocked,
            handoff=ctx.in_handoff,
            misses=ctx.misses,
            tags=dumps(sorted(ctx.tags)) if ctx.tags else "[]",
            voice_memory=fan["voice_memory"],
            display_name=inbound.display_name,
        )
        for kind, payload in ctx.events:
            self._event(conn, fan["id"], kind, payload, now)
        # The speaker's score is part of the influence of whoever brought them in.
        if fan["referred_by"] is not None:
            before = decayed(fan["score"], fan["score_at"], now, persona.relationship)
            kols.retag_referrers(conn, persona.relationship, fan["referred_by"], now,
                                 score - before)

    @staticmethod
    def _event(conn, fan_id: int, kind: str, payload: dict[str, Any], now: datetime) -> None:
        log_event(conn, fan_id, kind, payload, iso(now))

    @staticmethod
    def _log_inbound(
        conn,
        inbound: Inbound,
        fan_id: int,
        understanding,
        trigger: str,
        state_before: str,
        state_after: str,
        now: datetime,
        language: str,
    ) -> int:
        if inbound.kind == "event":
            intent, confidence, text = trigger, None, inbound.text or f"[{inbound.event}]"
        else:
            intent = understanding.intent
            confidence = round(understanding.confidence, 4)
            text = inbound.text
        return insert_message(
            conn,
            fan_id=fan_id,
            direction="in",
            text=text,
            intent=intent,
            confidence=confidence,
            state_before=state_before,
            state_after=state_after,
            platform_msg_id=inbound.platform_msg_id,
            created_at=iso(now),
            channel=inbound.fan.channel,
            language=language,
            kind=inbound.kind,
        )

    def _record_failure(self, brand: Brand, inbound: Inbound) -> Turn:
        """The turn failed: keep the fan's message anyway and answer with an in-voice apology."""
        persona = brand.persona
        language = inbound.language or persona.default_language
        text, language = brand.voice.render(
            "error", language, fan_name=inbound.display_name, memory={}, rng=self.rng
        )
        reply = Reply(text, "error", language)
        try:
            now = inbound.received_at or self.clock()
            with self.store.transaction(join_group=True) as conn:
                fan, answered = self.store.find_fan_and_message(
                    persona.id, inbound.fan.channel, inbound.fan.external_id,
                    inbound.platform_msg_id,
                )
                if answered is not None:
                    return Turn([reply], FAILED)
                if fan is None:
                    fan = self._create_fan(conn, brand, inbound, now)
                in_id = insert_message(
                    conn,
                    fan_id=fan["id"],
                    direction="in",
                    text=inbound.text,
                    platform_msg_id=inbound.platform_msg_id,
                    created_at=iso(now),
                    channel=inbound.fan.channel,
                    kind=inbound.kind,
                )
                insert_message(
                    conn,
                    fan_id=fan["id"],
                    direction="out",
                    text=reply.text,
                    created_at=iso(now),
                    channel=inbound.fan.channel,
                    language=language,
                    reply_key="error",
                    in_reply_to=in_id,
                )
        except Exception as exc:
            if storage_full(exc):  # the fan's message is not logged: it must be sent again
                raise StoreFull() from exc
            log.exception(
                "could not record the failed turn either (fan=%s)", inbound.fan.external_id
            )
        return Turn([reply], FAILED)

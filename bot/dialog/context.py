"""What one turn knows and decides, shared by the engine and the dialog's callbacks.

The shared transitions machine drives a throw-away :class:`TurnModel` per turn; its callbacks
(registry conditions and actions) read and write this context. Actions only *record* effects
(reply keys, subscription, handoff, tags, events); the engine applies them and commits them in
the turn's one transaction, so a failing turn changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.persona.model import STAGES, Persona
from bot.persona.voice import FACT_PREFIX


@dataclass
class TurnContext:
    persona: Persona
    fan: dict[str, Any]
    now: datetime
    language: str
    intent: str | None = None
    understanding_intent: str | None = None
    fact: str | None = None  # answer this fact alone instead of the intent's whole reply
    first_turn: bool = False
    misses: int = 0
    subscribed: bool = False
    in_handoff: bool = False
    tags: set[str] = field(default_factory=set)
    reply_keys: list[str] = field(default_factory=list)
    interactions: list[str] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    offers_this_week: Callable[[], int] = lambda: 0

    def answer_intent(self) -> None:
        """Say the recognised intent's reply (``fallback`` when it has none), or only the fact
        the fan asked about ("wifi password?" gets the Wi-Fi, not the whole room)."""
        if self.fact:
            self.reply_keys.append(FACT_PREFIX + self.fact)
            return
        key = self.persona.reply_key_for(self.intent) if self.intent else None
        self.reply_keys.append(key or "fallback")

    def commercial_allowed(self) -> bool:
        rules = self.persona.commercial
        if STAGES.index(self.fan["stage"]) < STAGES.index(rules.min_stage):
            return False
        return self.offers_this_week() < rules.max_offers_per_week

    def set_subscribed(self, value: bool) -> None:
        if value != self.subscribed:
            self.subscribed = value
            self.add_event("subscribe" if value else "unsubscribe", {"source": "dialog"})
            if value:
                self.interactions.append("subscribe")

    def set_handoff(self, value: bool) -> None:
        if value != self.in_handoff:
            self.in_handoff = value
            self.add_event("handoff" if value else "handoff_end", {"intent": self.intent})

    def add_event(self, kind: str, payload: dict[str, Any]) -> None:
        self.events.append((kind, payload))


class TurnModel:
    """The light object bound to the shared machine for one turn (never kept per fan)."""

    __slots__ = ("state", "ctx")

    def __init__(self, state: str, ctx: TurnContext):
        self.state = state
        self.ctx = ctx

"""Small frozen value objects shared by every layer: what comes in, what goes out.

Channels turn platform payloads into :class:`Inbound`; the engine answers with :class:`Reply`
objects that the channel delivers. Neither knows anything about the other's transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# The languages a fan is answered in, and the operator's output languages: persona files
# (bot/persona/model.py), the commands' --lang options, the web chat's "lang" field.
LANGUAGES: tuple[str, ...] = ("zh", "en")


def storable_text(text: str | None) -> str | None:
    """``text`` with lone surrogates replaced (U+FFFD): they cannot be stored or sent as UTF-8,
    and odd input must never fail a turn. Valid text comes back as it is (the same object)."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class FanRef:
    """A fan as a channel knows them: which channel and the platform's id for the person."""

    channel: str
    external_id: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a fan did: a message (text) or an event (follow, unfollow, click, scan…).

    ``platform_msg_id`` is the platform's id for the delivery (Telegram update id, WeChat MsgId);
    a repeated id is answered from the log instead of running a second turn.
    ``payload`` carries extras such as ``{"ref": "CODE"}`` for a referral or campaign code.
    """

    fan: FanRef
    text: str = ""
    kind: Literal["message", "event"] = "message"
    event: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    platform_msg_id: str | None = None
    display_name: str | None = None
    language: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to send back, already in the persona's voice and the fan's language."""

    text: str
    key: str | None = None
    language: str | None = None

"""Conversation tests: YAML scripts of fan turns with expectations, shipped for operators.

Each conversation runs the real engine on a fresh temporary SQLite file with a fixed clock and
seed, so a test passes or fails the same way every time. The format is documented in
docs/conversation-tests.md; the repository's own tests live in tests/conversations/.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.brand import Brand, load_brand
from bot.engine import Engine
from bot.messages import FanRef, Inbound
from bot.persona.model import STAGES
from bot.relations.fans import last_inbound
from bot.relations.store import Store
from bot.yaml_source import load_model, yaml_files

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expect(_Strict):
    reply: str | list[str] | None = Field(None, description="Substring(s) the replies contain.")
    reply_regex: str | None = Field(None, description="A regex the joined replies match.")
    no_reply: str | list[str] | None = Field(None, description="Substring(s) the replies lack.")
    reply_key: str | list[str] | None = Field(None, description="Reply key(s) among the replies.")
    replies: int | None = Field(None, ge=0, description="Exact number of replies.")
    intent: str | None = Field(None, description="Recognised intent (null: not understood).")
    language: str | None = None
    state: str | None = Field(None, description="Dialog state after the turn.")
    stage: str | None = Field(None, description="Relationship stage after the turn.")
    subscribed: bool | None = None
    handoff: bool | None = None
    tags: list[str] | None = Field(None, description="Tags the fan carries (subset).")


class Turn(_Strict):
    say: str | None = Field(None, description="A fan message.")
    event: str | None = Field(None, description="An event instead (follow, unfollow, click…).")
    payload: dict[str, Any] = Field(default_factory=dict)
    msg_id: str | None = Field(None, description="Platform message id (to test retries).")
    wait: str | None = Field(None, description="Advance the clock first: 30m, 2h, 3d, 1w.")
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="after")
    def _one_action(self) -> Turn:
        if self.say is None and self.event is None and self.wait is None:
            raise ValueError("a turn needs `say`, `event` or `wait`")
        if self.say is not None and self.event is not None:
            raise ValueError("a turn has either `say` or `event`, not both")
        if self.say is None and self.event is None and self.expect.model_fields_set:
            raise ValueError("a turn with only `wait` sends nothing, so it cannot `expect`; "
                             "put the expectations on the next `say` or `event`")
        if self.wait is not None and not _DURATION.match(self.wait):
            raise ValueError(f"wait {self.wait!r}: write a number and a unit, e.g. 30m, 2h, 3d, 1w")
        return self


class Conversation(_Strict):
    name: str
    fan: str = "tester"
    lang: str | None = None
    ref: str | None = Field(None, description="Referral/campaign code on the first message.")
    start: datetime = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    seed: int = 7
    turns: list[Turn] = Field(min_length=1)


class ConversationFile(_Strict):
    persona: str = "laowang-kitchen"
    conversations: list[Conversation] = Field(min_length=1)


@dataclass
class Result:
    name: str
    failures: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def collect(paths: list[Path]) -> list[Path]:
    """The conversation test files among ``paths`` (folders searched)."""
    return yaml_files(paths)


def load_file(path: Path) -> ConversationFile:
    return load_model(path, ConversationFile)[0]


def run_file(path: Path) -> list[Result]:
    spec = load_file(path)
    ref = spec.persona
    near = path.parent / ref
    brand = load_brand(str(near) if near.suffix in (".yaml", ".yml") and near.exists() else ref)
    return [run_conversation(brand, conversation) for conversation in spec.conversations]


def run_conversation(brand: Brand, conversation: Conversation) -> Result:
    """Run one conversation on a fresh database; collect every failed expectation."""
    result = Result(conversation.name)
    now = [conversation.start]
    with tempfile.TemporaryDirectory(prefix="brandbot-test-") as tmp:
        store = Store(Path(tmp) / "test.db")
        engine = Engine(store, brand, clock=lambda: now[0], seed=conversation.seed)
        fan_ref = FanRef("test", conversation.fan)
        try:
            for number, turn in enumerate(conversation.turns, 1):
                if turn.wait:
                    amount, unit = _DURATION.match(turn.wait).groups()
                    now[0] += timedelta(**{_UNITS[unit]: float(amount)})
                if turn.say is None and turn.event is None:
                    continue
                now[0] += timedelta(minutes=1)
                payload = dict(turn.payload)
                if conversation.ref and number == 1:
                    payload.setdefault("ref", conversation.ref)
                inbound = Inbound(
                    fan_ref,
                    text=turn.say or "",
                    kind="message" if turn.say is not None else "event",
                    event=turn.event,
                    payload=payload,
                    platform_msg_id=turn.msg_id,
                    display_name=conversation.fan,
                    language=conversation.lang,
                )
                replies = engine.handle(inbound)
                fan = store.find_fan(brand.id, fan_ref.channel, fan_ref.external_id)
                logged = last_inbound(store, fan["id"])
                said = turn.say if turn.say is not None else f"[{turn.event}]"
                result.transcript.append(f"fan> {said}")
                result.transcript += [f"bot> {r.text}" for r in replies]
                for failure in _check(turn.expect, replies, fan, logged):
                    result.failures.append(f"turn {number} ({said!r}): {failure}")
        finally:
            store.close()
    return result


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else value


def _check(expect: Expect, replies, fan: dict[str, Any], logged) -> list[str]:
    failures = []
    text = "\n".join(r.text for r in replies)
    shown = text.replace("\n", " | ") or "(no reply)"
    for part in _as_list(expect.reply):
        if part not in text:
            failures.append(f"reply should contain {part!r}; got: {shown}")
    for part in _as_list(expect.no_reply):
        if part in text:
            failures.append(f"reply should not contain {part!r}; got: {shown}")
    if expect.reply_regex and not re.search(expect.reply_regex, text):
        failures.append(f"reply should match /{expect.reply_regex}/; got: {shown}")
    keys = [r.key for r in replies]
    for key in _as_list(expect.reply_key):
        if key not in keys:
            failures.append(f"reply key {key!r} expected; got keys {keys}")
    if expect.replies is not None and len(replies) != expect.replies:
        failures.append(f"expected {expect.replies} replies; got {len(replies)}: {shown}")
    if "intent" in expect.model_fields_set and logged["intent"] != expect.intent:
        failures.append(f"intent should be {expect.intent!r}; got {logged['intent']!r}")
    if expect.language and logged["language"] != expect.language:
        failures.append(f"language should be {expect.language!r}; got {logged['language']!r}")
    if expect.state and fan["dialog_state"] != expect.state:
        failures.append(f"state should be {expect.state!r}; got {fan['dialog_state']!r}")
    if expect.stage:
        if expect.stage not in STAGES:
            failures.append(f"unknown stage {expect.stage!r}; use one of {', '.join(STAGES)}")
        elif fan["stage"] != expect.stage:
            failures.append(
                f"stage should be {expect.stage!r}; got {fan['stage']!r} (score {fan['score']:.1f})"
            )
    if expect.subscribed is not None and bool(fan["subscribed"]) != expect.subscribed:
        failures.append(f"subscribed should be {expect.subscribed}; got {bool(fan['subscribed'])}")
    if expect.handoff is not None and bool(fan["handoff"]) != expect.handoff:
        failures.append(f"handoff should be {expect.handoff}; got {bool(fan['handoff'])}")
    if expect.tags:
        import json

        have = set(json.loads(fan["tags"]))
        missing = [t for t in expect.tags if t not in have]
        if missing:
            failures.append(f"fan should carry tags {missing}; has {sorted(have)}")
    return failures

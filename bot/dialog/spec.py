"""The dialog file format, in transitions' own vocabulary.

A dialog is ``states``, ``transitions`` (trigger / source / dest / conditions / unless / after)
and ``initial`` — exactly what :class:`transitions.Machine` takes — so anyone who knows
transitions can read one. Callbacks are names from our registry (``bot.dialog.registry``), written
either as a bare name (``subscribe``) or as a one-key mapping with an argument
(``{reply: welcome}``, ``{stage_at_least: friend}``); dotted import paths are never accepted.

Our additions, all optional: per state ``otherwise`` (actions when no transition handles a
trigger in that state; default: answer the intent's reply) and ``state_migrations`` (where fans
go when a state they are in was removed from the file).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

Callback = str | dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateSpec(_Strict):
    name: str = Field(description="State name.")
    description: str = ""
    on_enter: list[Callback] = Field(default_factory=list, description="Actions on entering.")
    on_exit: list[Callback] = Field(default_factory=list, description="Actions on leaving.")
    otherwise: list[Callback] | None = Field(
        None,
        description="Actions when no transition handles the fan's message in this state. "
        "Default: answer the intent's reply (any fact question from any state).",
    )


class TransitionSpec(_Strict):
    trigger: str = Field(description="An intent name or a builtin trigger (see docs/dialogs.md).")
    source: str | list[str] = Field(description="State(s) it leaves from; '*' for any state.")
    dest: str | None = Field(
        description="State it goes to; '=' to stay (re-entering), null for an internal transition."
    )
    conditions: list[Callback] = Field(default_factory=list, description="All must hold.")
    unless: list[Callback] = Field(default_factory=list, description="None may hold.")
    before: list[Callback] = Field(default_factory=list, description="Actions before the move.")
    after: list[Callback] = Field(default_factory=list, description="Actions after the move.")

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


class DialogSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: str | int = 1
    description: str = ""
    initial: str = Field(description="The state of a fan the bot has never talked to.")
    states: list[str | StateSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = Field(default_factory=list)
    state_migrations: dict[str, str] = Field(
        default_factory=dict,
        description="Removed state → state its fans move to; '*' for any removed state "
        "(default: the initial state).",
    )

    @field_validator("states")
    @classmethod
    def _names_are_unique(cls, states: list[str | StateSpec]) -> list[str | StateSpec]:
        names = [s if isinstance(s, str) else s.name for s in states]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"state names must be unique; {dupes} appear more than once")
        return states

    def state_specs(self) -> list[StateSpec]:
        return [StateSpec(name=s) if isinstance(s, str) else s for s in self.states]

    def state_names(self) -> list[str]:
        return [s.name for s in self.state_specs()]


def parse_callback(callback: Callback) -> tuple[str, Any]:
    """``"subscribe"`` → ``("subscribe", None)``; ``{"reply": "hi"}`` → ``("reply", "hi")``."""
    if isinstance(callback, str):
        return callback, None
    if len(callback) != 1:
        raise ValueError("a callback with an argument is a mapping with exactly one key")
    ((name, arg),) = callback.items()
    return str(name), arg

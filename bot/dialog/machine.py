"""One shared transitions machine per dialog, driving a throw-away model per turn.

Building a ``Machine`` costs 100–500 µs and a brand has millions of fans, so a dialog builds
its machine once (with no models) and each turn fires an event on a :class:`TurnModel` carrying
the fan's stored state. Callbacks are closures over registry entries, resolved here once — never
strings that transitions would resolve by importing dotted paths.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine

from bot.dialog.context import TurnContext, TurnModel
from bot.dialog.registry import ACTIONS, CONDITIONS
from bot.dialog.spec import Callback, DialogSpec, parse_callback


def _condition(callback: Callback):
    name, arg = parse_callback(callback)
    func = CONDITIONS[name].func
    return lambda event: bool(func(event.model.ctx, arg))


def _action(callback: Callback):
    name, arg = parse_callback(callback)
    func = ACTIONS[name].func
    return lambda event: func(event.model.ctx, arg)


def run_actions(callbacks: list[Callback], ctx: TurnContext) -> None:
    """Run registry actions outside a transition (a state's ``otherwise``)."""
    for callback in callbacks:
        name, arg = parse_callback(callback)
        ACTIONS[name].func(ctx, arg)


class Dialog:
    """A validated dialog and its shared machine. Build it with :func:`bot.dialog.load_dialog`."""

    def __init__(self, spec: DialogSpec, source: str = "<memory>"):
        self.spec = spec
        self.source = source
        self._states = {s.name: s for s in spec.state_specs()}
        self.machine = Machine(
            model=[],
            states=[
                {
                    "name": s.name,
                    "on_enter": [_action(c) for c in s.on_enter],
                    "on_exit": [_action(c) for c in s.on_exit],
                }
                for s in self._states.values()
            ],
            initial=spec.initial,
            transitions=[self._transition(t) for t in spec.transitions],
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=True,
        )
        self._events = self.machine.events  # the machine gains no events after this

    @staticmethod
    def _transition(t) -> dict[str, Any]:
        return {
            "trigger": t.trigger,
            "source": t.source,
            "dest": t.dest,
            "conditions": [_condition(c) for c in t.conditions],
            "unless": [_condition(c) for c in t.unless],
            "before": [_action(c) for c in t.before],
            "after": [_action(c) for c in t.after],
        }

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def initial(self) -> str:
        return self.spec.initial

    def migrate(self, state: str | None) -> str:
        """The state a fan stored in ``state`` is in now (``state_migrations`` or initial)."""
        if state and state in self._states:
            return state
        if not state:
            return self.spec.initial
        migrations = self.spec.state_migrations
        target = migrations.get(state, migrations.get("*"))
        return target if target in self._states else self.spec.initial

    def handles(self, trigger: str, state: str) -> bool:
        event = self._events.get(trigger)
        return event is not None and bool(event.transitions.get(state))

    def fire(self, trigger: str, model: TurnModel) -> bool:
        """Fire ``trigger`` for the model; True when a transition ran (conditions held)."""
        event = self._events.get(trigger)
        if event is None or not event.transitions.get(model.state):
            return False
        return bool(event.trigger(model))

    def otherwise(self, state: str) -> list[Callback] | None:
        return self._states[state].otherwise

    def to_mermaid(self) -> str:
        """The dialog as a Mermaid ``stateDiagram-v2`` (bot/dialog/draw.py)."""
        from bot.dialog.draw import to_mermaid

        return to_mermaid(self.spec)

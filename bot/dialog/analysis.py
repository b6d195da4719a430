"""What a dialog file can and cannot do, decided from the file alone (no fan needed).

Used by ``brandbot check`` (a transition that can never fire is a mistake in the file) and by
``brandbot dialog draw`` (such edges are left out of the diagram).

A transition *never fires* from a source state when

* its guards contradict each other (the same condition under ``conditions`` and ``unless``);
* its guards contradict the state: ``in_handoff`` is decided per state by following
  ``start_handoff`` / ``end_handoff`` along every transition (a fan is never in handoff in the
  initial state; a state entered only by transitions that start a handoff always is) —
  e.g. ``follow`` from ``handoff`` ``unless: [in_handoff]``;
* an earlier transition with the same trigger from the same state has no guards: transitions
  (the library) runs the first transition whose guards pass, so the later one is shadowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.dialog.spec import Callback, DialogSpec, TransitionSpec, parse_callback

HANDOFF_FLAG = "in_handoff"
STARTS, ENDS = "start_handoff", "end_handoff"


@dataclass(frozen=True, slots=True)
class DeadEdge:
    """Transition ``index`` never fires from ``source``; ``reason`` says why, for people."""

    index: int
    source: str
    reason: str


def sources_of(spec: DialogSpec, t: TransitionSpec) -> list[str]:
    names = spec.state_names()
    return names if t.sources == ["*"] else [s for s in t.sources if s in names]


def _names(callbacks: list[Callback]) -> list[str]:
    out = []
    for cb in callbacks:
        try:
            out.append(parse_callback(cb)[0])
        except ValueError:
            continue
    return out


def _flag_after(names: list[str], before: bool) -> bool:
    """The handoff flag after running these actions in order, starting from ``before``."""
    flag = before
    for name in names:
        if name == STARTS:
            flag = True
        elif name == ENDS:
            flag = False
    return flag


def handoff_flags(spec: DialogSpec) -> dict[str, set[bool]]:
    """For each state, the values ``in_handoff`` can have while a fan is in it.

    A fixed point over the transitions, conservative where the file does not decide: fans moved
    by ``state_migrations`` (or to the initial state, when a state they were in disappears) may
    arrive with either value.
    """
    states = {s.name: s for s in spec.state_specs()}
    flags: dict[str, set[bool]] = {name: set() for name in states}
    if spec.initial in flags:
        flags[spec.initial].add(False)
    landing = set(spec.state_migrations.values()) or {spec.initial}
    for name in landing & set(flags):
        flags[name].update((True, False))
    changed = True
    while changed:
        changed = False
        for name, state in states.items():  # a state's own `otherwise` actions
            for value in list(flags[name]):
                after = _flag_after(_names(state.otherwise or []), value)
                if after not in flags[name]:
                    flags[name].add(after)
                    changed = True
        for t in spec.transitions:
            for src in sources_of(spec, t):
                dest = src if t.dest in (None, "=") else t.dest
                if dest not in flags:
                    continue
                hooks = list(t.before)
                if t.dest is not None:
                    hooks += states[src].on_exit + states[dest].on_enter
                names = _names(hooks + list(t.after))
                for value in list(flags[src]):
                    if not _guards_allow(t, value):
                        continue
                    after = _flag_after(names, value)
                    if after not in flags[dest]:
                        flags[dest].add(after)
                        changed = True
    return flags


def _guards_allow(t: TransitionSpec, flag: bool) -> bool:
    if HANDOFF_FLAG in _names(t.conditions) and not flag:
        return False
    return not (HANDOFF_FLAG in _names(t.unless) and flag)


def dead_edges(spec: DialogSpec) -> list[DeadEdge]:
    """Every (transition, source state) pair that can never fire, with the reason."""
    flags = handoff_flags(spec)
    out: list[DeadEdge] = []
    unguarded: dict[tuple[str, str], int] = {}  # (trigger, state) → first guard-free transition
    for index, t in enumerate(spec.transitions):
        both = sorted(set(_names(t.conditions)) & set(_names(t.unless)))
        for src in sources_of(spec, t):
            reason = None
            if both:
                reason = f"{both[0]!r} is both required (conditions) and excluded (unless)"
            elif (t.trigger, src) in unguarded:
                first = unguarded[(t.trigger, src)]
                reason = (f"transition {first} (the same trigger from {src!r}, without "
                          "conditions) always fires first")
            elif flags[src] and not any(_guards_allow(t, value) for value in flags[src]):
                held = next(iter(flags[src]))
                reason = (f"in state {src!r} the fan is {'always' if held else 'never'} in "
                          f"handoff, so {'unless' if held else 'conditions'}: [in_handoff] "
                          "can never let it through")
            if reason is not None:
                out.append(DeadEdge(index, src, reason))
            if not t.conditions and not t.unless:
                unguarded.setdefault((t.trigger, src), index)
    return out

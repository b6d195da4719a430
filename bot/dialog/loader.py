"""Load a dialog file and check it completely before transitions ever sees it.

transitions checks states lazily and would resolve unknown callback strings by importing dotted
paths. We check every state, trigger, condition and action against our registry (and, when a
persona is given, every trigger against its intents and every reply key against its replies),
and report each problem with file, line and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.dialog.machine import Dialog
from bot.dialog.registry import ACTIONS, BUILTIN_TRIGGERS, CONDITIONS, Entry
from bot.dialog.spec import DialogSpec, parse_callback
from bot.errors import ConfigError, Problem, did_you_mean
from bot.i18n import _
from bot.persona.model import LANGUAGES, STAGES, Persona
from bot.yaml_source import Positions, load_model, problem_at


def load_dialog_spec(
    path: str | Path, text: str | None = None, persona: Persona | None = None
) -> tuple[DialogSpec, Positions]:
    """Read and check a dialog (against ``persona`` too, when given); ConfigError if invalid."""
    spec, positions = load_model(path, DialogSpec, text)
    problems = check_dialog(spec, positions, str(path), persona)
    if problems:
        raise ConfigError(problems)
    return spec, positions


def load_dialog(path: str | Path, text: str | None = None) -> Dialog:
    """Read, validate and build the shared machine for the dialog at ``path``."""
    spec, _ = load_dialog_spec(path, text)
    return Dialog(spec, source=str(path))


def check_dialog(
    spec: DialogSpec, positions: Positions, path: str, persona: Persona | None = None
) -> list[Problem]:
    """Every problem in ``spec``; with ``persona``, also triggers and reply keys against it."""
    problems: list[Problem] = []
    states = spec.state_names()
    known = ", ".join(states)

    def bad(where: tuple[Any, ...], message: str) -> None:
        problems.append(problem_at(path, positions, where, message))

    if spec.initial not in states:
        bad(
            ("initial",),
            _("unknown state {state!r}; declare it in states or use one of: {known}").format(
                state=spec.initial, known=known) + did_you_mean(spec.initial, states),
        )
    for i, state in enumerate(spec.state_specs()):
        for hook in ("on_enter", "on_exit", "otherwise"):
            for j, cb in enumerate(getattr(state, hook) or []):
                _check_callback(cb, ACTIONS, "action", ("states", i, hook, j), bad, persona)
    intents = set(persona.intents) if persona else None
    for i, t in enumerate(spec.transitions):
        where = ("transitions", i)
        if t.trigger not in BUILTIN_TRIGGERS and (intents is not None and t.trigger not in intents):
            bad(
                where + ("trigger",),
                _("unknown trigger {trigger!r}: not an intent of persona {persona!r} nor a builtin "
                  "trigger ({builtin})").format(trigger=t.trigger, persona=persona.id,
                                                builtin=", ".join(BUILTIN_TRIGGERS))
                + did_you_mean(t.trigger, [*intents, *BUILTIN_TRIGGERS]),
            )
        for src_i, src in enumerate(t.sources):
            if src != "*" and src not in states:
                loc = where + ("source",) + ((src_i,) if isinstance(t.source, list) else ())
                bad(loc, _("unknown state {state!r}; use one of: {known}, or '*' for any "
                           "state").format(state=src, known=known) + did_you_mean(src, states))
        if t.dest not in (None, "=") and t.dest not in states:
            bad(where + ("dest",), _("unknown state {state!r}; use one of: {known}, '=' or "
                                     "null").format(state=t.dest, known=known)
                + did_you_mean(t.dest, states))
        for hook, registry, kind in (
            ("conditions", CONDITIONS, "condition"),
            ("unless", CONDITIONS, "condition"),
            ("before", ACTIONS, "action"),
            ("after", ACTIONS, "action"),
        ):
            for j, cb in enumerate(getattr(t, hook)):
                _check_callback(cb, registry, kind, where + (hook, j), bad, persona)
    for old, new in spec.state_migrations.items():
        if new not in states:
            bad(
                ("state_migrations", old), _(
                    "migrates to unknown state {new!r}; use one of: {known}"
                ).format(new=new, known=known)
            )
    if not problems:
        problems.extend(_never_firing(spec, path, positions))
    return problems


def _never_firing(spec: DialogSpec, path: str, positions: Positions) -> list[Problem]:
    """Transitions that can never fire from a source the file names (bot/dialog/analysis.py).

    A ``'*'`` source is reported only when the transition fires from no state at all: "any
    state" reasonably includes states where it cannot apply.
    """
    from bot.dialog.analysis import dead_edges

    problems = []
    by_index: dict[int, list] = {}
    for edge in dead_edges(spec):
        by_index.setdefault(edge.index, []).append(edge)
    for index, edges in by_index.items():
        t = spec.transitions[index]
        if t.sources == ["*"]:
            if len(edges) < len(spec.state_names()):
                continue
            where: tuple = ("transitions", index, "source")
            problems.append(problem_at(path, positions, where, (
                _(
                    "{trigger!r} from '*' can never fire from any state ({reason}); remove "
                    "it or fix its conditions"
                ).format(trigger=t.trigger, reason=edges[0].reason))))
            continue
        for edge in edges:
            where = ("transitions", index, "source")
            if isinstance(t.source, list):
                where += (t.source.index(edge.source),)
            problems.append(problem_at(path, positions, where, (
                _(
                    "{trigger!r} from {source!r} can never fire: {reason}; remove this "
                    "source or fix the conditions"
                ).format(trigger=t.trigger, source=edge.source, reason=edge.reason))))
    return problems


def _check_callback(cb, registry: dict[str, Entry], kind: str, where, bad, persona) -> None:
    try:
        name, arg = parse_callback(cb)
    except ValueError as exc:
        bad(where, str(exc))
        return
    entry = registry.get(name)
    if entry is None:
        hint = "dotted import paths are not allowed; " if "." in name else ""
        bad(where, _(
            "unknown {kind} {name!r}; {hint}use one of: {known}"
        ).format(kind=kind, name=name, hint=hint, known=', '.join(sorted(registry))))
        return
    if entry.arg == "none":
        if arg is not None:
            bad(where, _(
                "{kind} {name!r} takes no argument; write it as a bare name"
            ).format(kind=kind, name=name))
        return
    if arg is None:
        bad(where, _(
            "{kind} {name!r} needs an argument ({arg}); write {{{name}: ...}}"
        ).format(kind=kind, name=name, arg=entry.arg))
    elif entry.arg == "stage" and arg not in STAGES:
        bad(where, _(
            "unknown stage {arg!r}; use one of: {stages}"
        ).format(arg=arg, stages=', '.join(STAGES)))
    elif entry.arg == "int" and not isinstance(arg, int):
        bad(where, _(
            "{kind} {name!r} needs a whole number, got {arg!r}"
        ).format(kind=kind, name=name, arg=arg))
    elif entry.arg == "language" and arg not in LANGUAGES:
        bad(where, _(
            "unknown language {arg!r}; use one of: {languages}"
        ).format(arg=arg, languages=', '.join(LANGUAGES)))
    elif entry.arg in ("reply_key", "tag") and not isinstance(arg, str):
        bad(where, _(
            "{kind} {name!r} needs a name, got {arg!r}"
        ).format(kind=kind, name=name, arg=arg))
    elif (
        entry.arg == "interaction"
        and persona is not None
        and (arg not in persona.relationship.points)
    ):
        bad(
            where,
            _(
                "interaction kind {arg!r} has no points in persona {id!r}; add it under "
                "relationship.points (or it counts for nothing)"
            ).format(arg=arg, id=persona.id),
        )
    elif entry.arg == "reply_key" and persona is not None and arg not in persona.replies:
        bad(
            where,
            _(
                "reply key {arg!r} is not defined in persona {id!r}; add it under replies"
            ).format(arg=arg, id=persona.id),
        )

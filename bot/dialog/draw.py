"""``brandbot dialog draw``: a dialog as a Mermaid state diagram people can read.

* One arrow per pair of states: every trigger that moves a fan from A to B is one line of that
  arrow's label (``trigger [guards] → actions``), instead of one arrow each.
* What happens without changing state (internal transitions, re-entries, ``otherwise``) is
  written inside the state's box, under its description — not as a tangle of self-loops.
* Actions and replies are shown: ``say welcome`` is the reply key ``welcome``.
* ``'*'`` sources are expanded, and transitions that can never fire from a state
  (bot/dialog/analysis.py) are left out, listed as ``%%`` comments at the end.

SVG/PNG (``--format svg|png``) are rendered by mermaid-cli (``mmdc``) when it is installed;
the text works anywhere Mermaid does (GitHub, GitLab, https://mermaid.live).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bot.dialog.analysis import dead_edges, sources_of
from bot.dialog.spec import Callback, DialogSpec, TransitionSpec, parse_callback
from bot.i18n import N_, _


class RenderError(Exception):
    """mermaid-cli is missing or failed; the message says what to do."""


def callback_label(callback: Callback) -> str:
    name, arg = parse_callback(callback)
    if name == "reply":
        return f"say {arg}"
    return name if arg is None else f"{name}={arg}"


def transition_label(t: TransitionSpec) -> str:
    guards = [callback_label(c) for c in t.conditions]
    guards += [f"not {callback_label(c)}" for c in t.unless]
    label = t.trigger + (f" [{', '.join(guards)}]" if guards else "")
    actions = [callback_label(c) for c in [*t.before, *t.after]]
    return label + f" → {', '.join(actions) if actions else 'nothing'}"


def _text(value: str) -> str:
    """Mermaid-safe text: no statement separators, quotes or line breaks."""
    return " ".join(value.replace(";", ",").replace('"', "'").replace("#", "no.").split())


def to_mermaid(spec: DialogSpec) -> str:
    dead = {(d.index, d.source): d for d in dead_edges(spec)}
    states = spec.state_specs()
    arrows: dict[tuple[str, str], list[str]] = {}
    here: dict[str, list[str]] = {s.name: [] for s in states}
    for index, t in enumerate(spec.transitions):
        for src in sources_of(spec, t):
            if (index, src) in dead:
                continue
            dest = src if t.dest in (None, "=") else t.dest
            label = _text(transition_label(t))
            if dest == src:
                here[src].append(label)
            else:
                arrows.setdefault((src, dest), []).append(label)
    lines = ["stateDiagram-v2", f"    [*] --> {spec.initial}"]
    for state in states:
        # Declared first so the box is titled with the state's name, its lines beneath.
        lines.append(f'    state "{state.name}" as {state.name}')
        if state.description:
            lines.append(f"    {state.name} : {_text(state.description)}")
        if state.otherwise:
            actions = ", ".join(callback_label(c) for c in state.otherwise)
            lines.append(f"    {state.name} : otherwise → {_text(actions)}")
        for hook in ("on_enter", "on_exit"):
            actions = getattr(state, hook)
            if actions:
                shown = ", ".join(callback_label(c) for c in actions)
                lines.append(f"    {state.name} : {hook} → {_text(shown)}")
        if here[state.name]:
            lines.append(f"    {state.name} : stays here on")
            lines.extend(f"    {state.name} : · {label}" for label in here[state.name])
    for (src, dest), labels in arrows.items():
        lines.append(f"    {src} --> {dest} : {'<br/>'.join(labels)}")
    for d in sorted(dead.values(), key=lambda d: (d.index, d.source)):
        t = spec.transitions[d.index]
        lines.append(f"    %% never fires: transitions[{d.index}] {t.trigger} from {d.source}: "
                     f"{_text(d.reason)}")
    return "\n".join(lines) + "\n"


MMDC_HINT = N_("SVG and PNG need mermaid-cli: `npm install -g @mermaid-js/mermaid-cli` (it "
                "brings its own Chromium), then run this again; without it, print the text (the "
                "default) and paste it into https://mermaid.live or a GitHub comment")


def render(mermaid: str, output: Path, fmt: str, mmdc: str | None = None) -> None:
    """Render Mermaid text to ``output`` (svg or png) with mermaid-cli."""
    exe = mmdc or shutil.which("mmdc")
    if exe is None:
        raise RenderError(_(MMDC_HINT))
    with tempfile.TemporaryDirectory(prefix="brandbot-draw-") as tmp:
        source = Path(tmp) / "dialog.mmd"
        source.write_text(mermaid, encoding="utf-8")
        try:
            done = subprocess.run([exe, "-i", str(source), "-o", str(output), "-e", fmt],
                                  capture_output=True, text=True, timeout=120,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RenderError(_("mermaid-cli ({exe}) could not run: {exc}").format(
                exe=exe, exc=exc)) from None
    if done.returncode != 0 or not output.exists():
        last = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RenderError(_("mermaid-cli failed (exit {code}): {output}").format(
            code=done.returncode, output=" ".join(last)))

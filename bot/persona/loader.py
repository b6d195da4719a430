"""Find and load persona files, reporting every problem with file, line and the fix."""

from __future__ import annotations

from pathlib import Path

from bot.errors import ConfigError, UnknownPersonaError
from bot.i18n import _
from bot.persona.lint import lint_persona
from bot.persona.model import Persona
from bot.yaml_source import Positions, load_model

# The repository's own folders: the demo personas and the default dialog ship here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_PERSONA = "laowang-kitchen"


def search_dirs(kind: str) -> list[Path]:
    """Where ``personas``/``dialogs`` are looked up: the working directory, then the defaults."""
    dirs = [Path.cwd() / kind, PROJECT_ROOT / kind]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def resolve_file(ref: str, kind: str, near: Path | None = None) -> Path:
    """A path, or an id looked up as ``<kind>/<id>.yaml`` (next to ``near`` first)."""
    candidate = Path(ref)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if candidate.is_file():
            return candidate
        raise UnknownPersonaError(_("{ref}: no such file").format(ref=ref))
    dirs = ([near] if near and near.is_dir() else []) + search_dirs(kind)
    for folder in dirs:
        for suffix in (".yaml", ".yml"):
            path = folder / f"{ref}{suffix}"
            if path.is_file():
                return path
    known = sorted({p.stem for d in dirs for p in d.glob("*.y*ml")})
    folders = ", ".join(str(d) for d in dirs)
    if kind == "personas":
        message = _("no persona {ref!r} in {folders}; known: {known}")
    else:
        message = _("no dialog {ref!r} in {folders}; known: {known}")
    raise UnknownPersonaError(message.format(ref=ref, folders=folders or _("any folder"),
                                             known=", ".join(known) or _("none")))


def load_persona_file(path: str | Path, text: str | None = None) -> tuple[Persona, Positions]:
    """Parse, validate and lint one persona file; raises ConfigError listing every problem."""
    persona, positions = load_model(path, Persona, text)
    problems = lint_persona(persona, positions, str(path))
    if problems:
        raise ConfigError(problems)
    return persona, positions

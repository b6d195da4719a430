"""A brand ready to talk: a persona, its dialog, its intent matcher and its voice.

Everything here is built and checked together, so a brand either loads completely or not at all
(the daemon keeps the previous brand when an edit breaks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.dialog.loader import check_dialog, load_dialog_spec
from bot.dialog.machine import Dialog
from bot.errors import ConfigError, Problem
from bot.persona.loader import DEFAULT_PERSONA, load_persona_file, resolve_file
from bot.persona.model import Persona
from bot.persona.voice import Voice

if TYPE_CHECKING:
    from bot.nlu import Understander


@dataclass(frozen=True)
class Brand:
    persona: Persona
    dialog: Dialog
    understander: Understander
    voice: Voice
    persona_path: str
    dialog_path: str

    @property
    def id(self) -> str:
        return self.persona.id


def load_brand(ref: str | Path = DEFAULT_PERSONA) -> Brand:
    """Load the persona ``ref`` (path or id) and the dialog it names; ConfigError if invalid."""
    persona_path = resolve_file(str(ref), "personas")
    persona, _ = load_persona_file(persona_path)
    dialog_path = resolve_file(
        persona.dialog, "dialogs", near=persona_path.parent.parent / "dialogs"
    )
    spec, positions = load_dialog_spec(dialog_path)
    problems = check_dialog(spec, positions, str(dialog_path), persona)
    if problems:
        raise ConfigError(problems)
    from bot.nlu import Understander  # imported here: matching pulls in numpy and scipy

    return Brand(
        persona=persona,
        dialog=Dialog(spec, source=str(dialog_path)),
        understander=Understander(persona),
        voice=Voice(persona),
        persona_path=str(persona_path),
        dialog_path=str(dialog_path),
    )


def check_paths(paths: list[Path]) -> tuple[list[Problem], int]:
    """Validate persona and dialog files (folders are searched); returns (problems, files checked).

    A file is a dialog when it has ``transitions:`` or ``states:`` at the top level, otherwise a
    persona. Each persona is also checked together with the dialog it names.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.y*ml") if p.is_file()))
        else:
            files.append(path)
    problems: list[Problem] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(file), 1, 1, "", f"cannot read: {exc}"))
            continue
        is_dialog = any(line.startswith(("transitions:", "states:")) for line in text.splitlines())
        try:
            if is_dialog:
                spec, positions = load_dialog_spec(file, text)
                for persona in _personas_using(spec.id, file):
                    problems.extend(check_dialog(spec, positions, str(file), persona))
            else:
                persona, _ = load_persona_file(file, text)
                dialog_path = resolve_file(
                    persona.dialog, "dialogs", near=file.parent.parent / "dialogs"
                )
                try:
                    spec, positions = load_dialog_spec(dialog_path)
                except ConfigError:
                    continue  # the dialog's own problems are reported when it is checked itself
                problems.extend(check_dialog(spec, positions, str(dialog_path), persona))
        except ConfigError as exc:
            problems.extend(exc.problems)
        except Exception as exc:  # noqa: BLE001 - an unknown dialog id and the like
            problems.append(Problem(str(file), 1, 1, "", str(exc)))
    return sorted(set(problems)), len(files)


def _personas_using(dialog_id: str, dialog_file: Path) -> list[Persona]:
    """The valid personas (next to the dialog, or in the usual folders) that name this dialog."""
    from bot.persona.loader import search_dirs

    folders = [dialog_file.parent.parent / "personas", *search_dirs("personas")]
    seen: set[Path] = set()
    found = []
    for folder in folders:
        for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                persona, _ = load_persona_file(path)
            except ConfigError:
                continue
            if persona.dialog == dialog_id:
                found.append(persona)
    return found

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
from bot.yaml_source import yaml_files

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


def persona_dialog(persona: Persona, persona_path: Path) -> Path:
    """The dialog file a persona names: next to its folder (../dialogs/), else the usual places."""
    return resolve_file(persona.dialog, "dialogs", near=persona_path.parent.parent / "dialogs")


def load_brand(ref: str | Path = DEFAULT_PERSONA) -> Brand:
    """Load the persona ``ref`` (path or id) and the dialog it names; ConfigError if invalid."""
    persona_path = resolve_file(str(ref), "personas")
    persona, _ = load_persona_file(persona_path)
    dialog_path = persona_dialog(persona, persona_path)
    spec, _ = load_dialog_spec(dialog_path, persona=persona)
    from bot.nlu import Understander  # imported here: matching pulls in numpy and scipy

    return Brand(
        persona=persona,
        dialog=Dialog(spec, source=str(dialog_path)),
        understander=Understander(persona),
        voice=Voice(persona),
        persona_path=str(persona_path),
        dialog_path=str(dialog_path),
    )


def check_paths(
    paths: list[Path], warnings: list[Problem] | None = None
) -> tuple[list[Problem], int]:
    """Validate persona and dialog files (folders are searched); returns (problems, files checked).

    ``warnings``, when given, receives what is worth fixing but does not stop a persona from
    loading: replies hard-coding a fact's value, names left over from a copied persona.

    A file is a dialog when it has ``transitions:`` or ``states:`` at the top level, otherwise a
    persona. Each persona is also checked together with the dialog it names, and a dialog given
    alone together with the personas (in the usual folders) that name it. Every file is read
    and validated once.
    """
    files = yaml_files(paths)
    problems: list[Problem] = []
    # resolved path → (what it loaded, or None; its problems)
    cache: dict[Path, tuple[object, list[Problem]]] = {}
    reported: set[Path] = set()

    def load(loader, path: Path, text: str | None = None, report: bool = False):
        """Load each file once; its problems are reported once, for the files being checked."""
        key = path.resolve()
        if key not in cache:
            try:
                cache[key] = (loader(path, text), [])
            except ConfigError as exc:
                cache[key] = (None, exc.problems)
        if report and key not in reported:
            reported.add(key)
            problems.extend(cache[key][1])
        return cache[key][0]

    def load_persona(path: Path, text: str | None = None, report: bool = False) -> Persona | None:
        loaded = load(load_persona_file, path, text, report)
        return loaded[0] if loaded is not None else None

    def load_dialog(path: Path, text: str | None = None, report: bool = False):
        return load(load_dialog_spec, path, text, report)

    pairs: list[tuple[Persona, Path]] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(file), 1, 1, "", f"cannot read: {exc}"))
            continue
        try:
            if any(line.startswith(("transitions:", "states:")) for line in text.splitlines()):
                loaded = load_dialog(file, text, report=True)
                if loaded is not None:
                    pairs += [(p, file) for p in _personas_using(loaded[0].id, file, load_persona)]
            elif (persona := load_persona(file, text, report=True)) is not None:
                pairs.append((persona, persona_dialog(persona, file)))
                if warnings is not None:
                    warnings += _persona_warnings(file, cache[file.resolve()][0], load_persona)
        except Exception as exc:  # noqa: BLE001 - an unknown dialog id and the like
            problems.append(Problem(str(file), 1, 1, "", str(exc)))
    for persona, dialog_path in pairs:
        # A broken dialog's own problems are reported when that file is checked itself.
        if (loaded := load_dialog(dialog_path)) is not None:
            problems.extend(check_dialog(*loaded, str(dialog_path), persona))
    return sorted(set(problems)), len(files)


def _persona_warnings(file: Path, loaded, load_persona) -> list[Problem]:
    """Fact values hard-coded in texts, and names of the other personas shipped next to it."""
    from bot.persona.fact_lint import copied_name_warnings, fact_value_warnings
    from bot.persona.loader import PROJECT_ROOT

    persona, positions = loaded
    folders = [file.parent, PROJECT_ROOT / "personas"]
    siblings = sorted({p.resolve() for f in folders if f.is_dir() for p in f.glob("*.y*ml")}
                      - {file.resolve()})
    siblings = [p for p in siblings if not _looks_like_dialog(p)]
    others = [p for p in map(load_persona, siblings) if p is not None]
    return fact_value_warnings(persona, positions, str(file)) + copied_name_warnings(
        persona, positions, str(file), others
    )


def _looks_like_dialog(path: Path) -> bool:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return True  # unreadable: not a persona to compare with
    return any(line.startswith(("transitions:", "states:")) for line in lines)


def _personas_using(dialog_id: str, dialog_file: Path, load_persona) -> list[Persona]:
    """The valid personas (next to the dialog, or in the usual folders) that name this dialog."""
    from bot.persona.loader import search_dirs

    folders = [dialog_file.parent.parent / "personas", *search_dirs("personas")]
    paths = {p.resolve() for f in folders if f.is_dir() for p in f.glob("*.y*ml")}
    found = [load_persona(path) for path in sorted(paths)]
    return [p for p in found if p is not None and p.dialog == dialog_id]

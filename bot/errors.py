"""The exception tree. Expected failures are typed and handled at the edges::

    BrandbotError
    ├── ConfigError          invalid persona, dialog or settings file (carries Problems)
    ├── UnknownPersonaError  a persona id or path that does not exist
    └── UnknownFanError      an operator named a fan the log does not know

Unexpected exceptions inside a turn are logged with context and the fan gets the persona's
``error`` reply; exception text never reaches a fan.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.i18n import _


def did_you_mean(name: object, candidates: Iterable[object]) -> str:
    """`` (did you mean 'hours'?)`` when ``name`` looks like a misspelling of a candidate."""
    names = [str(c) for c in candidates]
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    if not close:
        return ""
    return _(" (did you mean {name!r}?)").format(name=close[0])


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a file, printed as ``path:line:col: field.path: message``.

    ``source`` is the offending line as written, when known: :meth:`render` shows it under the
    message with a caret at the column, so an operator sees the spot without opening an editor.
    """

    path: str
    line: int
    column: int
    field: str
    message: str
    source: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )

    def render(self) -> str:
        """``str(self)`` plus the offending line and a caret under the column (when known)."""
        if self.source is None:
            return str(self)
        shown = self.source.rstrip("\r\n").replace("\t", "→")
        gutter = f"{self.line:>5} | "
        caret = " " * (len(gutter) - 2) + "| " + " " * _width(shown[: self.column - 1]) + "^"
        return f"{self}\n{gutter}{shown}\n{caret}"


class BrandbotError(Exception):
    """Base of every error brandbot raises on purpose."""


class ConfigError(BrandbotError):
    """A persona, dialog or settings file is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownPersonaError(BrandbotError):
    """No persona with this id or path."""


class UnknownFanError(BrandbotError):
    """No fan matches what the operator typed."""


class StartupError(Exception):
    """``brandbot serve`` cannot start; ``lines`` say why and what to fix, ``code`` is the exit
    status (2: configuration, 1: an invalid persona). Raised by the daemon and by the channels
    it builds, so it lives here, below both."""

    def __init__(self, lines: list[str], code: int = 2):
        self.lines, self.code = lines, code
        super().__init__("\n".join(lines))

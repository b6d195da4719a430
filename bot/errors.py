"""The exception tree. Expected failures are typed and handled at the edges::

    BrandbotError
    ├── ConfigError          invalid persona, dialog or settings file (carries Problems)
    ├── UnknownPersonaError  a persona id or path that does not exist
    └── UnknownFanError      an operator named a fan the log does not know

Unexpected exceptions inside a turn are logged with context and the fan gets the persona's
``error`` reply; exception text never reaches a fan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a file, printed as ``path:line:col: field.path: message``."""

    path: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


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

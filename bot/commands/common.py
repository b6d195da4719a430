"""Helpers the relationship-marketing commands share: opening the log, finding one fan."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import click

from bot.errors import BrandbotError, ConfigError
from bot.i18n import N_, _
from bot.relations import Store
from bot.relations.fans import fan_by_id
from bot.tables import echo, format_table, table_width

DEFAULT_DB = "brandbot.db"
DEFAULT_PERSONA = "laowang-kitchen"
DB_HELP = N_("SQLite relationship log.")


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` (in the operator's language) and exit with ``code``."""
    echo(_("error: {message}").format(message=message), err=True)
    sys.exit(code)


def open_store(db: str) -> Store:
    if not Path(db).exists():
        fail(_("no database at {db}; run `brandbot serve` or `brandbot chat` first, or pass "
               "--db").format(db=db))
    return Store(db)


def now() -> datetime:
    """The current time (UTC), as the engine stamps turns."""
    return datetime.now(UTC)


def one_fan(store: Store, ref: str, *, prefer_handoff: bool = False) -> dict[str, Any]:
    """The fan an operator means (numeric id, external id or display name; ``id:N`` for the
    row id only), or exit 1.

    A display name is the fan's own choice, so it only counts when no id or external id
    matches: a fan calling themselves "42" (or another fan's platform id) cannot make fan 42
    ambiguous, which would keep an operator from forgetting or exporting them.
    """
    if ref.startswith("id:") and ref[3:].isdigit():
        found = fan_by_id(store, int(ref[3:]))
        matches = [found] if found else []
    else:
        matches = store.find_fans(ref)
        matches = [r for r in matches
                   if str(r["id"]) == ref or r["external_id"] == ref] or matches
    if prefer_handoff:
        matches = [r for r in matches if r["handoff"]] or matches
    if not matches:
        fail(_("no fan {ref!r} in {path}; see `brandbot fans`").format(ref=ref, path=store.path))
    if len(matches) > 1:
        ids = ", ".join(str(r["id"]) for r in matches[:10])
        fail(_("{ref!r} matches {count} fans (ids {ids}); use id:N for the numeric id "
               "(e.g. id:{first}) / 匹配到多个粉丝，请用 id:编号").format(
            ref=ref, count=len(matches), ids=ids, first=matches[0]["id"]))
    return matches[0]


def fail_with_problems(exc: ConfigError, message: str, code: int = 1) -> None:
    """Print each problem of an invalid file (``path:line:col: ...``) on stderr, then ``message``
    and exit ``code``: how every command reports a persona or dialog it cannot load."""
    show_problems(exc, err=True)
    fail(message, code)


def show_problems(exc: ConfigError, *, err: bool) -> None:
    """Print each problem of an invalid file, one per line (stderr with ``err``)."""
    for problem in exc.problems:
        echo(str(problem), err=err)


def load_brand(persona: str):
    """The whole brand (persona, dialog, understander, voice) of a persona id or path, or exit 1
    with its problems."""
    from bot.brand import load_brand as load

    try:
        return load(persona)
    except ConfigError as exc:
        fail_with_problems(exc, _(
            "persona {persona!r} is invalid ({count} problem(s)); fix the lines above"
        ).format(persona=persona, count=len(exc.problems)))
    except BrandbotError as exc:
        fail(str(exc))


def load_settings_or_fail(config: str | None, db: str | None):
    """The daemon's settings (file, BRANDBOT_* environment, ``db`` winning), or exit 2 with
    every invalid setting."""
    from bot.config import SettingsError, load_settings

    try:
        return load_settings(config, db=db)
    except SettingsError as exc:
        for line in exc.lines:
            echo(_("error: {message}").format(message=line), err=True)
        fail(_("invalid settings; see docs/configuration.md"), 2)


def load_persona(ref: str):
    """The persona model only (no intent matcher): for commands that need its rules or voice."""
    from bot.persona.loader import load_persona_file, resolve_file

    try:
        persona, _positions = load_persona_file(resolve_file(ref, "personas"))
        return persona
    except ConfigError as exc:
        fail_with_problems(exc, _("persona {ref!r} is invalid; fix the lines above").format(
            ref=ref))
    except BrandbotError as exc:
        fail(str(exc))


def print_table(columns: list[str], rows: list[list[Any]], *, fit: bool = False,
                keep: tuple[int, ...] = ()) -> None:
    """Aligned; with ``fit``, fitted to the terminal (100 columns when piped), long cells
    ending in "…" (except in the columns numbered in ``keep``). Listings opt in one by one
    (fans, handoffs, KOLs): a table whose every character matters (a job's error) stays whole."""
    for line in format_table(columns, rows, max_width=table_width() if fit else None,
                             keep=keep):
        click.echo(line)


DEFAULT_ZONE = "Asia/Shanghai"  # our operators' brands; used when a persona file is not found


def persona_zone(persona_id: str, override: str | None = None):
    """The time zone to show ``persona_id``'s times in: ``override`` (``--tz``), else the
    persona file's ``timezone`` (personas/<id>.yaml), else :data:`DEFAULT_ZONE`."""
    from bot.persona.model import zone_named

    if override:
        return zone_named(override)
    return _zone_of_persona(persona_id)


def zone_option(value: str | None) -> str | None:
    """Check a ``--tz`` value (an IANA name) or exit 2 with the fix."""
    from bot.persona.model import zone_named

    if value:
        try:
            zone_named(value)
        except (ValueError, LookupError):
            fail(_("--tz {value!r}: use an IANA name such as Asia/Shanghai "
                   "(时区请写 IANA 名称，如 Asia/Shanghai)").format(value=value), 2)
    return value


def _zone_of_persona(persona_id: str):
    from bot.persona.model import zone_named

    persona = persona_by_id(persona_id)
    return persona.zone if persona else zone_named(DEFAULT_ZONE)


@lru_cache(maxsize=64)
def persona_by_id(persona_id: str):
    """The persona file personas/<id>.yaml of a persona id in the log, or None when there is
    no such (valid) file: listings then fall back to documented defaults, never fail."""
    from bot.errors import BrandbotError
    from bot.persona.loader import load_persona_file, resolve_file

    try:
        return load_persona_file(resolve_file(persona_id, "personas"))[0]
    except (BrandbotError, OSError, ValueError):
        return None

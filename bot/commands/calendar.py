"""``brandbot calendar list|send``: the persona's topic calendar, newsletters sent on their date.
"""

from __future__ import annotations

import click

from bot.commands.common import (
    DB_HELP,
    DEFAULT_DB,
    DEFAULT_PERSONA,
    load_persona,
    load_settings_or_fail,
    now,
    open_store,
    print_table,
)
from bot.i18n import _, columns, pgettext
from bot.tables import echo


@click.group()
def calendar() -> None:
    """The persona's topic calendar: newsletters sent on their date."""


@calendar.command("list")
@click.option("--persona", "-p", default=DEFAULT_PERSONA, show_default=True,
              help="Persona id or path.")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def calendar_list(persona, db) -> None:
    """List the persona's topics: when, audience, and sent / due / upcoming / missed.

    Example: brandbot calendar list -p laowang-kitchen
    """
    from pathlib import Path

    from bot.relations import Store
    from bot.relations.calendar import GRACE, sent_topics

    model = load_persona(persona)
    sent = {}
    if Path(db).exists():
        store = Store(db)
        sent = sent_topics(store, model.id)
        store.close()
    moment, zone = now(), model.zone
    rows = []
    for t in model.calendar:
        at = t.at(zone)
        if t.id in sent:
            state = _("sent (broadcast {id})").format(id=sent[t.id])
        elif moment < at:
            state = pgettext("topic", "upcoming")
        elif moment < at + GRACE:
            state = pgettext("topic", "due")
        else:
            state = pgettext("topic", "missed")
        rows.append([t.id, f"{t.date} {t.time} {zone}", t.audience, state,
                     model.text(t.text, model.default_language)[:30]])
    print_table(columns("topic", "when", "audience", "state", "text"),
                rows)
    echo(_("{count} topic(s)").format(count=len(rows)))


@calendar.command("send")
@click.option("--persona", "-p", "personas", multiple=True,
              help="Persona id or path (repeatable; default: the settings' personas).")
@click.option("--db", help="SQLite relationship log (default: the daemon's settings).")
@click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")
def calendar_send(personas, db, config) -> None:
    """Send the topics that are due (once each) now, by hand.

    The daemon sends each topic by itself at its time (a scheduled job, `brandbot jobs list`);
    a topic is sent once whoever sends it.

    Example: brandbot calendar send
    """
    import asyncio

    from bot.relations.broadcast import counts, outlets_from_settings
    from bot.relations.calendar import send_due_topics

    settings = load_settings_or_fail(config, db)
    store = open_store(settings.db)
    try:
        for ref in list(personas) or [p.persona for p in settings.personas]:
            model = load_persona(ref)
            outlets, missing = outlets_from_settings(settings, store, model.id)
            ids = asyncio.run(send_due_topics(store, model, outlets, now(), missing=missing,
                                              clock=now))
            for broadcast_id in ids:
                final = counts(store, broadcast_id)
                echo(_("{persona}: broadcast {id}: ").format(persona=model.id, id=broadcast_id)
                     + ", ".join(
                    f"{k} {v}" for k, v in sorted(final.items())))
            if not ids:
                echo(_("{persona}: nothing due").format(persona=model.id))
    finally:
        store.close()

"""``brandbot report``: funnel, sources, messages, misses, handoffs and KOLs, as tables or HTML.
"""

from __future__ import annotations

import click

from bot.commands.common import DB_HELP, DEFAULT_DB, fail, load_persona, now, open_store
from bot.i18n import _
from bot.tables import echo, json_text


@click.command()
@click.option("--since", help="First day (YYYY-MM-DD; default: 30 days ago).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False),
              help="Also write one self-contained HTML page with charts here.")
@click.option("--persona", "-p", help="Only this persona's fans (id or path).")
@click.option("--tz", help="Count days in this IANA zone (default: the persona's timezone; "
                           "without --persona, Asia/Shanghai).")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(since, html_file, persona, tz, db, as_json) -> None:
    """Funnel, new fans and their sources, subscribers, messages, intents, misses, handoffs, KOLs.

    Terminal tables by default; --html writes one file (inline SVG charts, no server, no
    network) that opens in any browser. Days are the brand's days (its persona's timezone);
    top KOLs are listed for every persona of the log unless --persona picks one.

    Example: brandbot report --since 2026-01-01 --html report.html
    """
    from datetime import datetime
    from pathlib import Path

    from bot.commands.common import DEFAULT_ZONE, persona_by_id, zone_option
    from bot.persona.model import Relationship, zone_named
    from bot.relations.reports import build, to_html, to_text
    from bot.tables import table_width

    zone_option(tz)
    model = load_persona(persona) if persona else None
    zone = zone_named(tz) if tz else (model.zone if model else zone_named(DEFAULT_ZONE))
    start = None
    if since:
        try:
            start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=zone)
        except ValueError:
            fail(_("--since {since!r}: write the date as YYYY-MM-DD").format(since=since))

    def rules_of(persona_id: str) -> Relationship:
        found = persona_by_id(persona_id)
        return found.relationship if found else Relationship()

    store = open_store(db)
    try:
        data = build(store, now(), start, model.id if model else None,
                     model.relationship if model else None, zone=zone, rules_of=rules_of)
    finally:
        store.close()
    if html_file:
        Path(html_file).write_text(to_html(data), encoding="utf-8")
    if as_json:
        click.echo(json_text(data, indent=2))
    else:
        echo(to_text(data, table_width()), nl=False)
    if html_file:
        echo(_("wrote {target}").format(target=html_file), err=True)

"""``brandbot chat`` and ``brandbot serve``: a persona in the terminal, and the daemon."""

from __future__ import annotations

import sys

import click

from bot.commands.common import DEFAULT_DB, load_brand
from bot.i18n import _
from bot.messages import LANGUAGES


@click.command()
@click.option(
    "--persona", "-p", default="laowang-kitchen", show_default=True, help="Persona id or path."
)
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite relationship log.")
@click.option("--fan", default="local-fan", show_default=True, help="Which fan you are.")
@click.option("--lang", type=click.Choice(LANGUAGES),
              help="Reply language (default: detected).")
@click.option("--ref", help="A referral or campaign code carried by your first message.")
def chat(persona: str, db: str, fan: str, lang: str | None, ref: str | None) -> None:
    """Talk to a persona in the terminal.

    Interactive in a terminal; with piped input it reads one fan message per line and prints
    each reply on its own line. The same --fan continues the same conversation.

    Example: printf '你好\\n你们几点开门\\n' | brandbot chat --db /tmp/t.db
    """
    from bot.channels.console import ConsoleChannel
    from bot.engine import Engine
    from bot.relations import Store

    brand = load_brand(persona)
    store = Store(db)
    try:
        channel = ConsoleChannel(
            Engine(store, brand), persona=brand.id, fan=fan, language=lang, ref=ref
        )
        channel.run(sys.stdin, interactive=sys.stdin.isatty())
    finally:
        store.close()


@click.command()
@click.option("--config", "-c", "config", help="Settings file (default: $BRANDBOT_CONFIG, "
              "else ./brandbot.yaml if present).")
@click.option("--host", help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (default 8080; 0 picks a free one).")
@click.option("--db", help="SQLite relationship log (default brandbot.db).")
@click.option("--persona", "-p", "personas", multiple=True,
              help="Persona id or path to serve on every channel (repeatable).")
@click.option("--log-format", type=click.Choice(["text", "json"]), 
              help="Log lines as text or JSON.")
@click.option("--reload/--no-reload", default=None, help="Watch personas/ and dialogs/.")
def serve(config, host, port, db, personas, log_format, reload) -> None:
    """Run the daemon: web chat, health, metrics, hot reload of personas and dialogs.

    With no settings it serves the demo persona on http://127.0.0.1:8080/ with brandbot.db.
    Settings: brandbot.yaml + BRANDBOT_* environment (docs/configuration.md); these flags win.
    SIGHUP reloads personas; SIGTERM or Ctrl-C stops cleanly. Exit 2: invalid settings.

    Example: brandbot serve --port 8080 --persona laowang-kitchen
    """
    from bot.config import SettingsError, load_settings
    from bot.daemon import serve as run_daemon

    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            db=db,
            personas=list(personas) or None,
            log_format=log_format,
            reload=reload,
        )
    except SettingsError as exc:
        for line in exc.lines:
            click.echo(_("error: {message}").format(message=line), err=True)
        click.echo(_("brandbot serve: invalid settings; see docs/configuration.md"), err=True)
        sys.exit(2)
    sys.exit(run_daemon(settings))

"""``brandbot`` commands for relationship marketing (issue 6), registered on the main group.

Split from bot/cli.py to keep that file about the core commands; :func:`register` is called at the
end of bot/cli.py.
"""

from __future__ import annotations

import click


def register(main: click.Group, handoff: click.Group) -> None:
    from bot.commands import marketing

    marketing.register(main, handoff)
    from bot.commands.jobs import jobs

    main.add_command(jobs)

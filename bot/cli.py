"""The ``brandbot`` command: the root group, and the command groups it is made of.

Each command lives in bot/commands/ with the noun it acts on (fans, campaigns, broadcast, the
desk, report, calendar; run, authoring, wechat, jobs, doctor); its docstring is its help text and
ends with an example. This module only assembles them.
"""

from __future__ import annotations

import click

from bot import i18n
from bot.commands import (
    authoring,
    broadcast,
    calendar,
    campaigns,
    desk,
    doctor,
    fans,
    jobs,
    report,
    run,
    wechat,
)


class BrandbotGroup(click.Group):
    """The root group: chooses the language before click parses anything (``--help`` is
    printed while parsing) and puts the previous one back afterwards (bot/i18n.py)."""

    restores_language = True

    def main(self, *args, **kwargs):
        previous = i18n.language()
        i18n.set_language(None)  # the locale; --lang (eager) may change it while parsing
        try:
            return super().main(*args, **kwargs)
        finally:
            i18n.set_language(previous)


@click.group(cls=BrandbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brandbot")
@i18n.lang_option(help="Language of messages and help: zh (zh_CN), zh_TW or en (default: "
                       "from LC_ALL, LC_MESSAGES or LANG; zh_CN.UTF-8 is Chinese).")
def main(lang: str | None) -> None:
    """brandbot: a brand's human voice in chat (Telegram, WeChat, terminal, web).

    Start with `brandbot serve` (web chat on http://127.0.0.1:8080/, Telegram and WeChat when
    configured) or `brandbot chat` to talk to the demo brand in the terminal.
    """


for _command in (
    run.chat,
    run.serve,
    authoring.check,
    authoring.test_cmd,
    authoring.nlu,
    authoring.dialog,
    authoring.schema,
    fans.fans,
    fans.fan,
    fans.kols,
    desk.handoff,
    wechat.wechat,
    campaigns.campaign,
    broadcast.broadcast,
    report.report,
    calendar.calendar,
    jobs.jobs,
    doctor.doctor,
):
    main.add_command(_command)
i18n.localize_commands(main)  # help texts translate when shown, in the chosen language

if __name__ == "__main__":
    main()

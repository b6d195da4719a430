"""The ``brandbot`` command: the root group, and the command groups it is made of.

Each command lives in bot/commands/ with the noun it acts on (fans, campaigns, broadcast, the
desk, report, calendar; run, authoring, wechat, jobs, doctor); its docstring is its help text and
ends with an example. This module only assembles them.
"""

from __future__ import annotations

import click

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brandbot")
def main() -> None:
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

if __name__ == "__main__":
    main()

"""The terminal chat: talk to a persona locally, interactively or from a script.

With piped input every line is one fan message and every reply is printed on its own line
(line breaks inside a reply become spaces), so conversations can be scripted and diffed.
"""

from __future__ import annotations

from typing import TextIO

import click

from bot.engine import Engine
from bot.messages import FanRef, Inbound
from bot.tables import terminal_safe

CHANNEL = "console"


class ConsoleChannel:
    name = CHANNEL

    def __init__(
        self,
        engine: Engine,
        *,
        persona: str,
        fan: str,
        language: str | None = None,
        ref: str | None = None,
    ):
        self.engine = engine
        self.persona = persona
        self.fan = FanRef(CHANNEL, fan)
        self.fan_name = fan
        self.language = language
        self.ref = ref

    def say(self, text: str) -> list[str]:
        """One fan message in, the reply texts out."""
        payload = {"ref": self.ref} if self.ref else {}
        replies = self.engine.handle(
            Inbound(
                self.fan,
                text=text,
                payload=payload,
                display_name=self.fan_name,
                language=self.language,
            ),
            persona=self.persona,
        )
        return [r.text for r in replies]

    def run(self, stream: TextIO, *, interactive: bool) -> None:
        brand = self.engine.brand(self.persona)
        name = brand.persona.text(
            brand.persona.identity.name, self.language or brand.persona.default_language
        )
        if interactive:
            click.secho(
                terminal_safe(f"Chatting with {name} ({brand.id}) as {self.fan_name}. "
                              "Ctrl-D to leave."), dim=True
            )
        while True:
            if interactive:
                try:
                    line = click.prompt(
                        click.style("you", fg="cyan"),
                        prompt_suffix="> ",
                        default="",
                        show_default=False,
                    )
                except (EOFError, click.Abort):
                    click.echo()
                    return
            else:
                line = stream.readline()
                if not line:
                    return
                line = line.rstrip("\r\n")
            if not line.strip():
                continue
            # Replies can carry fan-chosen text (templates say the fan's name): never raw.
            for text in self.say(line):
                if interactive:
                    click.echo(click.style(terminal_safe(f"{name}> "), fg="green")
                               + terminal_safe(text, keep_newlines=True))
                else:
                    click.echo(terminal_safe(" ".join(text.splitlines())))

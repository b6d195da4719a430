"""``python -m bot`` works like the ``brandbot`` command."""

from bot.cli import main

main()

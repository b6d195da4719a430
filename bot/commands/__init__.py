"""The ``brandbot`` commands, one module per noun; bot/cli.py assembles them into one group.

Shared helpers (opening the log, finding a fan, loading a persona or the settings, printing a
table) are in :mod:`bot.commands.common`; delivering from the command line in
:mod:`bot.commands.delivery`. Command modules import from those, never from each other's
private names nor from bot/cli.py.
"""

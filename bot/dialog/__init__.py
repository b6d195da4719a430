"""Dialogs: the spec (transitions' vocabulary), the registry YAML may name, the shared machine."""

from bot.dialog.loader import load_dialog
from bot.dialog.machine import Dialog

__all__ = ["Dialog", "load_dialog"]

"""The relationship log (SQLite) and the rules that turn interactions into stages."""

from bot.relations.store import Store, StoreBusy

__all__ = ["Store", "StoreBusy"]

"""The relationship log (SQLite) and the rules that turn interactions into stages."""

from bot.relations.store import Store, StoreBusy, StoreGroupLost

__all__ = ["Store", "StoreBusy", "StoreGroupLost"]

"""brandbot: a brand's human voice in chat.

Fans talk to a brand on Telegram, WeChat, the terminal or the web chat; the :class:`Engine`
answers in the brand's persona, walks each fan through a dialog and keeps the relationship log.
"""

from bot.messages import FanRef, Inbound, Reply

__all__ = ["FanRef", "Inbound", "Reply", "__version__"]
__version__ = "0.1.0"

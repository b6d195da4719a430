"""Passive-reply XML and text splitting for WeChat.

* Every value goes in CDATA with ``]]>`` split across two sections (``]]]]><![CDATA[>``), so
  reply text can never end the section early and break the XML (wechatpy's replies do not do
  this: docs/channels/protocol-notes.md W6). Characters XML 1.0 forbids (most C0 controls, lone
  surrogates, U+FFFE/U+FFFF) are dropped: they would make WeChat show its error prompt.
* The length limit of a text message is not documented; community reports put failures around
  ~1100 CJK characters passively and ~2048 bytes through the customer-service API (W6, W7).
  :func:`split_text` cuts at :data:`MAX_TEXT_BYTES` UTF-8 bytes (600 CJK characters),
  preferring paragraph, then sentence, then word boundaries, never inside a character.
"""

from __future__ import annotations

import re

from bot.channels import textsplit
from bot.channels.textsplit import UTF8_BYTES

MAX_TEXT_BYTES = 1800
JOIN = "\n\n"  # replies of one turn joined into one passive message

_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BREAKS = ("\n\n", "\n", "。", "！", "？", "!", "?", ". ", "；", ";", "，", ", ", " ")


def xml_text(value: str) -> str:
    """Text that XML 1.0 can carry."""
    return _ILLEGAL_XML.sub("", value)


def cdata(value: str) -> str:
    return "<![CDATA[" + xml_text(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, create_time: int) -> str:
    """A passive text reply: ``ToUserName`` is the fan's OpenID, ``FromUserName`` our gh_ id."""
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName>"
        f"<FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )


def split_text(text: str, max_bytes: int = MAX_TEXT_BYTES) -> list[str]:
    """Pieces of at most ``max_bytes`` UTF-8 bytes, cut at the most natural boundary."""
    if max_bytes < 8:
        raise ValueError("max_bytes must be at least 8")
    return textsplit.split_text(text, max_bytes, UTF8_BYTES, _boundary)


def _boundary(window: str) -> int:
    """Where to cut ``window``: after a break in its second half, else at its end."""
    half = len(window) // 2
    for mark in _BREAKS:
        at = window.rfind(mark)
        if at >= half:
            return at + len(mark)
    return len(window)  # no natural break: a hard cut (between whole characters)

"""Refusals and negations: "不要订阅" is not a request to subscribe.

The matcher sees the words of an intent (订阅, subscribe, 订位) and lifts it; it cannot see that
the fan said *not* to. :func:`refusal` finds a refusal cue (不要/不用/别/取消/不想/don't/no more/
stop/done with…) in front of the words, and :func:`is_question` tells a refusal ("不用订位")
from a question that merely contains a negation ("不用订位吗？", "can't I book?"), which is
still a question about booking.
"""

from __future__ import annotations

import re

__all__ = ["is_question", "refusal"]

# A refusal cue, then at most a few characters/words before the rest of the message.
_REFUSAL_ZH = re.compile(
    r"(不要|不用|不需要|不必|不想|不再|别再|别|甭|取消|停止|停掉|关掉|关闭|无需|没必要|(?<![多少重错])算了|不订|不关注"
    r"|拒绝|退出|再也不|不是要|没有要|不是想|没想|并不想|不打算|不考虑|没打算|先不|暂时不|不找|没兴趣"
    r"|不感兴趣|下次吧|下次再说|改天吧|不麻烦了|没事了|免了|暂时不需要|不点|不去了|不来了|不过来了|不订了|不约了|不吃了|不需要了|就不用|就算了|用不着)"
)
_REFUSAL_EN = re.compile(
    r"\b(dont|do not|doesnt|no more|stop|stopp?ed|never|not interested|done with|no longer|no need"
    r"|without|cancel|quit|not want|not need|dont want|dont need|no thanks|no thank you|unfollow"
    r"|enough of|sick of|tired of|fed up with|over|not complaining|not a complaint|not trying to"
    r"|im fine|its fine|nah|not looking to|not planning to|no plans to|wont need|dont bother"
    r"|never mind|nevermind|forget it|skip|wont|will not|not gonna|not going to|not coming"
    r"|no longer need|changed my mind|im good|all good|not bringing|ill pass|i ll pass|pass on"
    r"|not for me|maybe later|maybe next time)\b"
)
# Question markers: a message with one of these asks something, even with a negation in it.
_QUESTION = re.compile(
    r"吗|嘛|么|呢|啥|咋|是不是|能不能|可不可以|可以不|要不要|用不用|需不需要|有没有|会不会|怎么|如何|多少|几|哪"
    r"|\?|？"
    r"|^(?:can|could|do|does|did|is|are|will|would|should|shall|may|must|how|what|when|where|why"
    r"|which|who|any)\b"
    r"|\b(?:can i|do i|do you|is it|is there|are there|should i|if i)\b"
    r"|\bor (?:nah|not|no)\b|([\u4e00-\u9fff])不\1"
)


def refusal(normalized: str) -> str | None:
    """The refusal cue of a normalised message (the first one), or None."""
    if normalized.isascii():
        match = _REFUSAL_EN.search(normalized)
    else:
        match = _REFUSAL_ZH.search(normalized) or _REFUSAL_EN.search(normalized)
    return match.group() if match else None


def is_question(text: str, normalized: str) -> bool:
    """Whether a message (raw for its "?", and normalised) asks rather than states."""
    return "?" in text or "？" in text or _QUESTION.search(normalized) is not None

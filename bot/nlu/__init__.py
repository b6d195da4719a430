"""Natural-language understanding: normalisation, intent matching, taboo and yes/no detection.

The engine only needs :class:`Understander`; the rest is exported for the bench, persona
checks and tests.
"""

from bot.nlu.evaluate import EvalReport, evaluate
from bot.nlu.matcher import DEFAULT_THRESHOLD, IntentMatcher, Match
from bot.nlu.normalize import detect_language, normalize
from bot.nlu.understand import Understander, Understanding

__all__ = [
    "DEFAULT_THRESHOLD",
    "EvalReport",
    "IntentMatcher",
    "Match",
    "Understander",
    "Understanding",
    "detect_language",
    "evaluate",
    "normalize",
]

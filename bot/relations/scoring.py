"""Relationship scores and stages: interactions weighted by kind, decaying with time.

A fan's score halves every ``half_life_days`` without contact, so a stage reflects the
relationship now, not its history. Stage thresholds and what each interaction is worth come from
the persona (``relationship:``), never from code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.persona.model import STAGES, Relationship


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def decayed(score: float, since: str | None, now: datetime, rules: Relationship) -> float:
    """``score`` as it stands at ``now`` after decaying since ``since``."""
    if not since or score == 0:
        return score
    days = max(0.0, (now - parse_iso(since)).total_seconds() / 86400)
    return score * 0.5 ** (days / rules.half_life_days)


def add_interactions(score: float, kinds: Iterable[str], rules: Relationship) -> float:
    return max(0.0, score + sum(rules.points.get(kind, 0.0) for kind in kinds))


def stage_for(score: float, rules: Relationship) -> str:
    """The highest stage whose threshold ``score`` reaches."""
    stage = STAGES[0]
    for name in STAGES[1:]:
        threshold = rules.stages.get(name)
        if threshold is not None and score >= threshold:
            stage = name
    return stage

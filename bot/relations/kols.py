"""Influence: which fans bring in others who stay (KOLs, key opinion leaders).

The formula (docs/relationships.md, "KOLs and influence")::

    influence = Σ over fans brought in directly    (10 + their score)
              + ½ × Σ over fans they brought in    (10 + their score)
              + ½ × the fan's own score

and 0 for a fan who brought in nobody: influence is about word that spreads, so a very engaged
fan who never invited anyone is loyal (their stage says so), not a KOL.
Scores are decayed to *now* (``scoring.decayed``), so influence fades with the relationships it
is made of. A fan whose influence reaches the persona's ``relationship.kol_threshold`` gets the
``kol`` tag (and a ``kol`` event); it goes again (``kol_lost``) below 80% of the threshold, so a
fan hovering around the line does not flap. Dialogs branch on it with ``has_tag: kol``.

The engine re-tags during a turn: the fan who spoke, and the one or two fans above them in the
referral chain (whose influence that fan's score is part of). ``brandbot kols`` ranks everybody
from one pass over the fans.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.persona.model import Relationship
from bot.relations.scoring import decayed
from bot.relations.store import Store, dumps, iso, log_event

KOL_TAG = "kol"
PER_FAN = 10.0  # what a brought-in fan is worth before their own engagement
SECOND_LEVEL = 0.5
OWN = 0.5
KEEP_RATIO = 0.8  # the tag stays until influence drops below 80% of the threshold


def influence(direct: Iterable[float], second: Iterable[float], own: float) -> float:
    """The documented formula, from the (decayed) scores of the fans involved."""
    direct = list(direct)
    if not direct:
        return 0.0
    return (
        sum(PER_FAN + s for s in direct)
        + SECOND_LEVEL * sum(PER_FAN + s for s in second)
        + OWN * own
    )


def _children(conn, fan_ids: list[int], now: datetime, rules: Relationship,
              cache: dict[int, list[tuple]] | None = None) -> list[tuple]:
    """(id, decayed score) of the fans that ``fan_ids`` brought in; ``cache`` avoids re-reading
    a fan's referrals when a chain is walked (a parent's children are its parent's 2nd level)."""
    cache = {} if cache is None else cache
    missing = [i for i in fan_ids if i not in cache]
    if missing:
        for fan_id in missing:
            cache[fan_id] = []
        marks = ",".join("?" * len(missing))
        for parent, child, score, score_at in conn.execute(
            f"SELECT referred_by, id, score, score_at FROM fans WHERE referred_by IN ({marks})",
            missing,
        ):
            cache[parent].append((child, decayed(score, score_at, now, rules)))
    return [child for fan_id in fan_ids for child in cache[fan_id]]


def influence_of(conn, fan_id: int, own_score: float, now: datetime, rules: Relationship,
                 cache: dict[int, list[tuple]] | None = None) -> float:
    """One fan's influence (``own_score`` already decayed to ``now``)."""
    cache = {} if cache is None else cache
    direct = _children(conn, [fan_id], now, rules, cache)
    second = _children(conn, [c[0] for c in direct], now, rules, cache) if direct else []
    return influence((s for _, s in direct), (s for _, s in second), own_score)


def kol_change(tags: set[str], value: float, threshold: float) -> str | None:
    """``"kol"`` if the fan becomes a KOL now, ``"kol_lost"`` if they stop, else None."""
    if KOL_TAG not in tags and value >= threshold:
        return "kol"
    if KOL_TAG in tags and value < threshold * KEEP_RATIO:
        return "kol_lost"
    return None


def tag_speaker(conn, rules: Relationship, fan_id: int, score: float, now: datetime,
                tags: set[str], cache: dict[int, list[tuple]] | None = None,
                referrals: int | None = None) -> tuple[str, dict[str, Any]] | None:
    """Re-tag one fan (``score`` decayed to now): edits ``tags``; returns the event to log.

    ``referrals``: the fan's ``referrals`` column when known; 0 means no influence to look up.
    """
    if rules.kol_threshold is None:
        return None
    value = 0.0 if referrals == 0 else influence_of(conn, fan_id, score, now, rules, cache)
    change = kol_change(tags, value, rules.kol_threshold)
    if change == "kol":
        tags.add(KOL_TAG)
    elif change == "kol_lost":
        tags.discard(KOL_TAG)
    return (change, {"score": round(value, 2)}) if change else None


def retag_referrers(conn, rules: Relationship, referred_by: int | None, now: datetime) -> None:
    """Re-tag the fan who brought the speaker in, and the one who brought *them* in."""
    if rules.kol_threshold is None:
        return
    fan_id, cache = referred_by, {}
    for _ in range(2):
        if fan_id is None:
            return
        row = conn.execute(
            "SELECT score, score_at, tags, referred_by FROM fans WHERE id = ?", (fan_id,)
        ).fetchone()
        if row is None:
            return
        tags = set(json.loads(row[2]))
        score = decayed(row[0], row[1], now, rules)
        event = tag_speaker(conn, rules, fan_id, score, now, tags, cache)
        if event is not None:
            conn.execute("UPDATE fans SET tags = ? WHERE id = ?", (dumps(sorted(tags)), fan_id))
            log_event(conn, fan_id, *event, iso(now))
        fan_id = row[3]


@dataclass(frozen=True, slots=True)
class Kol:
    fan_id: int
    channel: str
    name: str
    stage: str
    direct: int
    second: int
    score: float
    influence: float
    tagged: bool


def rank(store: Store, persona: str, rules: Relationship, now: datetime) -> list[Kol]:
    """Every fan of ``persona`` who brought anyone in, by influence (highest first)."""
    rows = store.fetch_all(
        "SELECT id, channel, external_id, display_name, stage, score, score_at, referred_by, "
        "tags FROM fans WHERE persona = ?",
        (persona,),
    )
    score: dict[int, float] = {}
    children: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        score[r[0]] = decayed(r[5], r[6], now, rules)
        if r[7] is not None:
            children[r[7]].append(r[0])
    out = []
    for r in rows:
        direct = children.get(r[0])
        if not direct:
            continue
        second = [g for c in direct for g in children.get(c, ())]
        value = influence((score[c] for c in direct), (score[g] for g in second), score[r[0]])
        out.append(
            Kol(r[0], r[1], r[3] or r[2], r[4], len(direct), len(second), score[r[0]], value,
                KOL_TAG in json.loads(r[8]))
        )
    out.sort(key=lambda k: (-k.influence, k.fan_id))
    return out

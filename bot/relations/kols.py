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
referral chain (whose influence that fan's score is part of), from sums each fan keeps of the
scores of their two levels (:func:`pass_on`), so a turn costs the same under a fan with 50,000
referrals as under one with none. ``brandbot kols`` ranks everybody in one SQL aggregation over
the fans, from the log itself.
"""

from __future__ import annotations

import json
import math
import sqlite3
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


def _level_sum(conn, sql: str, fan_id: int, now: datetime, rules: Relationship) -> float:
    return sum(decayed(score, score_at, now, rules)
               for score, score_at in conn.execute(sql, (fan_id,)))


def _decay_factor(since: str, now: datetime, rules: Relationship) -> float:
    return decayed(1.0, since, now, rules)


def kept_sums(conn, fan_id: int, row, now: datetime, rules: Relationship) -> tuple[float, float]:
    """The decayed scores of the fans ``fan_id`` brought in, summed per level, at ``now``.

    ``row``: the fan's ``(kin_score, kin2_score, kin_at)``. The sums are kept on the fan (see
    :func:`pass_on`), decayed to ``kin_at``: every score in them halves at the same rate, so
    one factor brings the sums to any later moment. ``kin_at`` NULL means not known (a log made
    before the columns, or the referral tree changed under the fan): they are computed from the
    tree this once — the only read of the fans below — and kept.
    """
    kin, kin2, at = row
    if at is not None:
        factor = _decay_factor(at, now, rules)
        return kin * factor, kin2 * factor
    kin = _level_sum(conn, "SELECT score, score_at FROM fans WHERE referred_by = ?",
                     fan_id, now, rules)
    kin2 = _level_sum(conn, "SELECT score, score_at FROM fans WHERE referred_by IN "
                      "(SELECT id FROM fans WHERE referred_by = ?)", fan_id, now, rules)
    conn.execute("UPDATE fans SET kin_score = ?, kin2_score = ?, kin_at = ? WHERE id = ?",
                 (kin, kin2, iso(now), fan_id))
    return kin, kin2


def influence_of(conn, fan_id: int, own_score: float, now: datetime, rules: Relationship,
                 row=None) -> float:
    """One fan's influence (``own_score`` already decayed to ``now``), from the kept sums.

    ``row``: the fan's ``(referrals, referrals2, kin_score, kin2_score, kin_at)`` when the
    caller has them. The cost does not depend on how many fans the fan brought in.
    """
    if row is None:
        row = conn.execute(
            "SELECT referrals, referrals2, kin_score, kin2_score, kin_at FROM fans WHERE id = ?",
            (fan_id,),
        ).fetchone()
        if row is None:
            return 0.0
    referrals, referrals2 = row[0], row[1]
    if not referrals:
        return 0.0
    kin, kin2 = kept_sums(conn, fan_id, row[2:], now, rules)
    return (PER_FAN * referrals + kin + SECOND_LEVEL * (PER_FAN * referrals2 + kin2)
            + OWN * own_score)


def kol_change(tags: set[str], value: float, threshold: float) -> str | None:
    """``"kol"`` if the fan becomes a KOL now, ``"kol_lost"`` if they stop, else None."""
    if KOL_TAG not in tags and value >= threshold:
        return "kol"
    if KOL_TAG in tags and value < threshold * KEEP_RATIO:
        return "kol_lost"
    return None


def tag_speaker(conn, rules: Relationship, fan_id: int, score: float, now: datetime,
                tags: set[str], fan: dict[str, Any] | None = None
                ) -> tuple[str, dict[str, Any]] | None:
    """Re-tag one fan (``score`` decayed to now): edits ``tags``; returns the event to log.

    ``fan``: the fan's row when the caller has it (its referral counts and kept sums).
    """
    if rules.kol_threshold is None:
        return None
    row = None if fan is None else (fan["referrals"], fan["referrals2"], fan["kin_score"],
                                    fan["kin2_score"], fan["kin_at"])
    return _retag(tags, influence_of(conn, fan_id, score, now, rules, row), rules.kol_threshold)


def _retag(tags: set[str], value: float, threshold: float) -> tuple[str, dict[str, Any]] | None:
    change = kol_change(tags, value, threshold)
    if change == "kol":
        tags.add(KOL_TAG)
    elif change == "kol_lost":
        tags.discard(KOL_TAG)
    return (change, {"score": round(value, 2)}) if change else None


def pass_on(conn, rules: Relationship, referred_by: int | None, change: float, now: datetime,
            retag: bool = True) -> None:
    """A fan's score moved by ``change`` (both decayed to ``now``): add it to the kept sums of
    the fan who brought them in (first level) and of the one above (second level), and re-tag
    those two (their influence contains that score) when ``retag``.

    Two rows read and written whatever the number of referrals: what made a turn under a fan
    with 50,000 referrals read all of them (and theirs) is gone. Ancestors whose sums are not
    known yet keep them unknown (computed from the tree when first needed, change included).
    """
    fan_id = referred_by
    for level in (0, 1):
        if fan_id is None:
            return
        row = conn.execute(
            "SELECT score, score_at, tags, referred_by, referrals, referrals2, kin_score, "
            "kin2_score, kin_at FROM fans WHERE id = ?", (fan_id,)
        ).fetchone()
        if row is None:
            return
        if row[8] is None:  # not known: made from the tree (with the change) when needed
            kin = kin2 = None
        else:
            kin, kin2 = kept_sums(conn, fan_id, (row[6], row[7], row[8]), now, rules)
            if change:
                if level == 0:
                    kin += change
                else:
                    kin2 += change
                conn.execute("UPDATE fans SET kin_score = ?, kin2_score = ?, kin_at = ? "
                             "WHERE id = ?", (kin, kin2, iso(now), fan_id))
        if retag and rules.kol_threshold is not None:
            if kin is None and row[4]:
                kin, kin2 = kept_sums(conn, fan_id, (None, None, None), now, rules)
            score = decayed(row[0], row[1], now, rules)
            value = (PER_FAN * row[4] + kin + SECOND_LEVEL * (PER_FAN * row[5] + kin2)
                     + OWN * score) if row[4] else 0.0
            tags = set(json.loads(row[2]))
            event = _retag(tags, value, rules.kol_threshold)
            if event is not None:
                conn.execute("UPDATE fans SET tags = ? WHERE id = ?",
                             (dumps(sorted(tags)), fan_id))
                log_event(conn, fan_id, *event, iso(now))
        fan_id = row[3]


def retag_referrers(conn, rules: Relationship, referred_by: int | None, now: datetime,
                    change: float = 0.0) -> None:
    """Re-tag the fan who brought the speaker in, and the one who brought *them* in, after the
    speaker's score moved by ``change``."""
    pass_on(conn, rules, referred_by, change, now)


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


def _has_pow(conn) -> bool:
    try:
        conn.execute("SELECT pow(2, 2)").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def rank(store: Store, persona: str, rules: Relationship, now: datetime,
         limit: int | None = None) -> list[Kol]:
    """Fans of ``persona`` who brought anyone in, by influence (highest first; ``limit``: the
    first so many).

    Aggregated by SQLite from the log itself (not the sums turns keep), one pass over the
    fans: what Python holds is the result, not the fan table (1,000,000 fans: 830 MB and 22 s
    when it did). Scores decay in SQL by the formula of ``scoring.decayed`` (``julianday``
    reads timestamps to the millisecond: a relative difference below 1e-9).
    """
    decay = ("CASE WHEN {t}.score = 0 OR {t}.score_at IS NULL THEN {t}.score ELSE {t}.score * "
             "pow(0.5, max(0.0, :now - julianday({t}.score_at)) / :half_life) END")
    # d: the fans somebody brought in (the only ones whose scores count for others).
    sql = f"""
        WITH d AS MATERIALIZED (
            SELECT id, referred_by AS parent, {decay.format(t="fans")} AS s
            FROM fans WHERE persona = :persona AND referred_by IS NOT NULL),
        kids AS (SELECT parent, count(*) AS n, sum(:per_fan + s) AS v FROM d GROUP BY parent),
        grand AS (SELECT d.parent, sum(kids.n) AS n, sum(kids.v) AS v
                  FROM kids JOIN d ON d.id = kids.parent GROUP BY d.parent),
        ranked AS (
            SELECT f.id, f.channel, coalesce(nullif(f.display_name, ''), f.external_id) AS name,
                   f.stage, kids.n AS direct, coalesce(grand.n, 0) AS second,
                   {decay.format(t="f")} AS score, kids.v + :second * coalesce(grand.v, 0)
                   + :own * {decay.format(t="f")} AS influence, f.tags
            FROM kids JOIN fans f ON f.id = kids.parent AND f.persona = :persona
            LEFT JOIN grand ON grand.parent = kids.parent)
        SELECT * FROM ranked ORDER BY influence DESC, id LIMIT :limit
    """
    params = {"persona": persona, "per_fan": PER_FAN, "second": SECOND_LEVEL, "own": OWN,
              "limit": -1 if limit is None else limit, "half_life": rules.half_life_days,
              "now": now.timestamp() / 86400 + 2440587.5}  # as a Julian day, like julianday()
    with store.lock:
        if not _has_pow(store.conn):  # an SQLite built without its math functions
            store.conn.create_function("pow", 2, math.pow, deterministic=True)
        rows = store.conn.execute(sql, params).fetchall()
    return [Kol(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], KOL_TAG in json.loads(r[8]))
            for r in rows]

"""``brandbot fans`` and ``brandbot handoff list``: one page of fans, chosen by SQLite.

A log may hold a million fans: filtering, ordering and the LIMIT all happen in SQL, and
Python only ever sees the rows it prints (or streams them one by one for ``--json``).

Filters are ``FIELD=VALUE`` (``--filter channel=web --filter subscribed=yes``); sorts are a
field name, ``-`` in front for the highest/latest first (``--sort -score``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.i18n import _
from bot.relations.desk import OPERATOR_KEY
from bot.relations.store import Store

# Filter name → (SQL column, kind). "flag" takes yes/no (是/否, 1/0, true/false).
FILTERS: dict[str, tuple[str, str]] = {
    "persona": ("persona", "text"),
    "channel": ("channel", "text"),
    "stage": ("stage", "text"),
    "language": ("language", "text"),
    "subscribed": ("subscribed", "flag"),
    "handoff": ("handoff", "flag"),
    "blocked": ("blocked", "flag"),
    "name": ("coalesce(nullif(display_name, ''), external_id)", "like"),
}
SORTS: dict[str, str] = {
    "last_seen": "last_seen", "first_seen": "first_seen", "score": "score", "id": "id",
    "name": "coalesce(nullif(display_name, ''), external_id)", "stage": "stage",
}
_YES = {"yes", "y", "1", "true", "是", "on"}
_NO = {"no", "n", "0", "false", "否", "off"}


class ListingError(ValueError):
    """A filter or sort the operator mistyped; the message says what is accepted."""


@dataclass(frozen=True)
class Query:
    """``WHERE`` and ``ORDER BY`` clauses with their parameters."""

    where: str
    params: tuple
    order: str


def build_query(filters: list[str], sort: str | None, persona: str | None = None) -> Query:
    """SQL for ``filters`` (``FIELD=VALUE`` each) and ``sort`` (``[-]FIELD``; default: the
    most recently seen first), for fans of ``persona`` when given."""
    clauses, params = [], []
    if persona:
        clauses.append("persona = ?")
        params.append(persona)
    for item in filters:
        field, sep, value = item.partition("=")
        field, value = field.strip().lower(), value.strip()
        if not sep or field not in FILTERS:
            raise ListingError(_(
                "--filter {item!r}: write FIELD=VALUE with FIELD one of {fields} (过滤条件写成 "
                "字段=值，如 channel=web)").format(item=item, fields=", ".join(FILTERS)))
        column, kind = FILTERS[field]
        if kind == "flag":
            if value.lower() not in _YES | _NO:
                raise ListingError(_("--filter {item!r}: {field} takes yes or no (是/否)").format(
                    item=item, field=field))
            clauses.append(f"{column} = ?")
            params.append(1 if value.lower() in _YES else 0)
        elif kind == "like":
            clauses.append(f"{column} LIKE ? ESCAPE '\\'")
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        else:
            clauses.append(f"{column} = ?")
            params.append(value)
    key = (sort or "-last_seen").strip()
    descending = key.startswith("-")
    name = key.lstrip("-+").lower()
    if name not in SORTS:
        raise ListingError(_("--sort {sort!r}: one of {fields}, with - in front for "
                             "highest/latest first (排序字段，前加 - 表示倒序)").format(
            sort=sort, fields=", ".join(SORTS)))
    direction = "DESC" if descending else "ASC"
    return Query(" WHERE " + " AND ".join(clauses) if clauses else "", tuple(params),
                 f" ORDER BY {SORTS[name]} {direction}, id {direction}")


def count(store: Store, query: Query) -> int:
    return store.fetch_one(f"SELECT count(*) FROM fans{query.where}", query.params)[0]


def page(store: Store, query: Query, limit: int | None) -> list[dict[str, Any]]:
    """At most ``limit`` fans (None: all) in the query's order."""
    return list(stream(store, query, limit))


def stream(store: Store, query: Query, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The query's fans one at a time (memory stays flat however many match)."""
    cursor = store.conn.execute(f"SELECT * FROM fans{query.where}{query.order} LIMIT ?",
                                (*query.params, -1 if limit is None else limit))
    for row in cursor:
        yield dict(row)


# -- the operator desk ----------------------------------------------------------------------------


def handoffs(store: Store) -> list[dict[str, Any]]:
    """Fans a human holds, longest waiting first, each with ``started`` (when the handoff
    began), ``reason_intent`` (the intent of the turn that began it: ``complaint``,
    ``human``…; None when not recorded), ``waiting_since`` (the handoff or the
    last operator reply, whichever is later) and the fan's ``last_message``."""
    rows = store.fetch_all(
        "SELECT f.*, e.created_at AS started, e.payload AS started_payload, "
        " (SELECT max(m.created_at) FROM messages m WHERE m.fan_id = f.id AND m.direction = 'out'"
        "  AND m.reply_key = ?) AS operator_at, "
        " (SELECT m.text FROM messages m WHERE m.fan_id = f.id AND m.direction = 'in' "
        "  AND m.kind = 'message' ORDER BY m.id DESC LIMIT 1) AS last_message "
        "FROM fans f LEFT JOIN events e ON e.id = (SELECT max(id) FROM events x "
        " WHERE x.fan_id = f.id AND x.kind = 'handoff') "
        "WHERE f.handoff = 1",
        (OPERATOR_KEY,),
    )
    out = []
    for r in rows:
        row = dict(r)
        try:
            payload = json.loads(row.pop("started_payload") or "{}")
        except ValueError:
            payload = {}
        row["reason_intent"] = payload.get("intent") if isinstance(payload, dict) else None
        row["waiting_since"] = max(x for x in (row["started"] or row["last_seen"],
                                               row["operator_at"] or "") if x is not None)
        out.append(row)
    out.sort(key=lambda r: r["waiting_since"])
    return out


def reason(intent: str | None, language: str = "en") -> str:
    """Why the conversation went to a human, in words."""
    known = {"complaint": ("投诉", "complaint"), "human": ("要求人工", "asked for a human"),
             None: ("未记录", "not recorded")}
    zh, en = known.get(intent, (f"意图：{intent}", f"intent: {intent}"))
    return zh if language == "zh" else en

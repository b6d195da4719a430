"""Audience expressions for newsletters, compiled: which of a persona's fans a broadcast is for.

The grammar (docs/relationships.md, "Newsletters") is read by bot/persona/audience.py;
here the tree becomes one SQL ``WHERE`` clause on ``fans`` with parameters, so planning a
broadcast over a million fans is one pass over the table.

``all`` (the default) is every fan of the persona; consent is not part of the audience — fans in
it who are not subscribed are reported as skipped ("unsubscribed"), never sent to.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.persona.audience import AudienceError, Node, read
from bot.relations.store import dumps

__all__ = ["Audience", "AudienceError", "parse"]


@dataclass(frozen=True, slots=True)
class Audience:
    text: str
    where: str
    params: tuple


def parse(text: str | None) -> Audience:
    """Compile ``text`` (None or empty: ``all``) into a SQL condition on ``fans``."""
    source, tree = read(text)
    where, params = _sql(tree)
    return Audience(source, where, tuple(params))


def _sql(node: Node) -> tuple[str, list]:
    kind = node[0]
    if kind in ("and", "or"):
        parts = [_sql(part) for part in node[1]]
        op = kind.upper()
        return f" {op} ".join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]
    if kind == "not":
        sql, params = _sql(node[1])
        return f"NOT ({sql})", params
    if kind == "all":
        return "1", []
    if kind == "subscribed":
        return "subscribed = 1", []
    if kind == "stages":
        chosen = list(node[1])
        if not chosen:
            return "0", []
        return f"stage IN ({','.join('?' * len(chosen))})", chosen
    if kind == "tag":
        # tags are a JSON list written by dumps(): look for the quoted tag.
        return "instr(tags, ?) > 0", [dumps(node[1])]
    if kind == "lang":
        return "language = ?", [node[1]]
    if kind == "channel":
        return "channel = ?", [node[1]]
    raise AssertionError(f"unknown audience node {node!r}")  # the reader makes no others

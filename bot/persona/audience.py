"""Audience expressions for newsletters, read: which of a persona's fans a broadcast is for.

Grammar (docs/relationships.md, "Newsletters")::

    expr   := and ("or" and)*
    and    := unary (["and" | ","] unary)*
    unary  := "not" unary | "(" expr ")" | term
    term   := all | subscribers | stage>=STAGE (also > = <= <) | tag:TAG | lang:LANG
            | channel:CHANNEL

:func:`read` turns the text into a small tree of tuples, checking stages and languages against
the persona vocabulary; bot/relations/audience.py compiles the tree into SQL on the log. The
grammar lives here, below both, because a persona file's calendar names audiences and its
validation must not reach up into the relationship log.

Nodes: ``("all",)``, ``("subscribed",)``, ``("stages", (STAGE, ...))``, ``("tag", TAG)``,
``("lang", LANG)``, ``("channel", CHANNEL)``, ``("not", node)``, ``("and", [node, ...])``,
``("or", [node, ...])`` (and/or always with two or more).
"""

from __future__ import annotations

import re
from typing import Any

from bot.persona.model import LANGUAGES, STAGES

_TOKEN = re.compile(r"\s*(\(|\)|,|stage\s*(?:>=|<=|=|>|<)\s*[A-Za-z]+|[^\s(),]+)")
_STAGE = re.compile(r"stage\s*(>=|<=|=|>|<)\s*([A-Za-z]+)$")

Node = tuple[Any, ...]


class AudienceError(ValueError):
    """An expression that cannot be read; the message says what to write instead."""


def read(text: str | None) -> tuple[str, Node]:
    """The expression's source (None or empty: ``all``) and its tree, or AudienceError."""
    source = (text or "all").strip() or "all"
    tokens, pos = [], 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:  # only trailing whitespace is left
            break
        tokens.append(match.group(1))
        pos = match.end()
    parser = _Parser(tokens, source)
    tree = parser.expr()
    if parser.pos != len(tokens):
        raise AudienceError(f"audience {source!r}: unexpected {tokens[parser.pos]!r}")
    return source, tree


class _Parser:
    def __init__(self, tokens: list[str], source: str):
        self.tokens, self.source, self.pos = tokens, source, 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expr(self) -> Node:
        parts = [self.conj()]
        while (self._peek() or "").lower() == "or":
            self.pos += 1
            parts.append(self.conj())
        return _join(parts, "or")

    def conj(self) -> Node:
        parts = [self.unary()]
        while True:
            token = self._peek()
            if token is None or token == ")" or token.lower() == "or":
                break
            if token == "," or token.lower() == "and":
                self.pos += 1
            parts.append(self.unary())
        return _join(parts, "and")

    def unary(self) -> Node:
        token = self._peek()
        if token is None:
            raise AudienceError(f"audience {self.source!r}: expected a term at the end")
        if token.lower() == "not":
            self.pos += 1
            return ("not", self.unary())
        if token == "(":
            self.pos += 1
            result = self.expr()
            if self._peek() != ")":
                raise AudienceError(f"audience {self.source!r}: missing ')'")
            self.pos += 1
            return result
        self.pos += 1
        return _term(token, self.source)


def _join(parts: list[Node], op: str) -> Node:
    return parts[0] if len(parts) == 1 else (op, parts)


def _term(token: str, source: str) -> Node:
    low = token.lower()
    if low in ("all", "*"):
        return ("all",)
    if low in ("subscribers", "subscribed"):
        return ("subscribed",)
    stage = _STAGE.match(low)
    if stage:
        op, name = stage.groups()
        if name not in STAGES:
            raise AudienceError(f"audience {source!r}: unknown stage {name!r}; "
                                f"use one of {', '.join(STAGES)}")
        index = STAGES.index(name)
        return ("stages", tuple(s for i, s in enumerate(STAGES) if _compare(i, op, index)))
    key, _, value = token.partition(":")
    if value:
        key = key.lower()
        if key == "tag":
            return ("tag", value)
        if key in ("lang", "language"):
            if value not in LANGUAGES:
                raise AudienceError(f"audience {source!r}: unknown language {value!r}; "
                                    f"use one of {', '.join(LANGUAGES)}")
            return ("lang", value)
        if key == "channel":
            return ("channel", value.lower())
    raise AudienceError(
        f"audience {source!r}: cannot read {token!r}; write all, subscribers, stage>=friend, "
        "tag:NAME, lang:zh, channel:telegram, combined with and / or / not / parentheses"
    )


def _compare(a: int, op: str, b: int) -> bool:
    return {">=": a >= b, ">": a > b, "=": a == b, "<=": a <= b, "<": a < b}[op]

"""Audience expressions for newsletters: which of a persona's fans a broadcast is for.

Grammar (docs/relationships.md, "Newsletters")::

    expr   := and ("or" and)*
    and    := unary (["and" | ","] unary)*
    unary  := "not" unary | "(" expr ")" | term
    term   := all | subscribers | stage>=STAGE (also > = <= <) | tag:TAG | lang:LANG
            | channel:CHANNEL

``all`` (the default) is every fan of the persona; consent is not part of the audience — fans in
it who are not subscribed are reported as skipped ("unsubscribed"), never sent to. Expressions
compile to one SQL ``WHERE`` clause with parameters, so planning a broadcast over a million fans
is one pass over the ``fans`` table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.persona.model import LANGUAGES, STAGES
from bot.relations.store import dumps

_TOKEN = re.compile(r"\s*(\(|\)|,|stage\s*(?:>=|<=|=|>|<)\s*[A-Za-z]+|[^\s(),]+)")
_STAGE = re.compile(r"stage\s*(>=|<=|=|>|<)\s*([A-Za-z]+)$")


class AudienceError(ValueError):
    """An expression that cannot be read; the message says what to write instead."""


@dataclass(frozen=True, slots=True)
class Audience:
    text: str
    where: str
    params: tuple


def parse(text: str | None) -> Audience:
    """Compile ``text`` (None or empty: ``all``) into a SQL condition on ``fans``."""
    source = (text or "all").strip() or "all"
    tokens, pos = [], 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:  # only trailing whitespace is left
            break
        tokens.append(match.group(1))
        pos = match.end()
    parser = _Parser(tokens, source)
    where, params = parser.expr()
    if parser.pos != len(tokens):
        raise AudienceError(f"audience {source!r}: unexpected {tokens[parser.pos]!r}")
    return Audience(source, where, tuple(params))


class _Parser:
    def __init__(self, tokens: list[str], source: str):
        self.tokens, self.source, self.pos = tokens, source, 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expr(self) -> tuple[str, list]:
        parts = [self.conj()]
        while (self._peek() or "").lower() == "or":
            self.pos += 1
            parts.append(self.conj())
        return _join(parts, "OR")

    def conj(self) -> tuple[str, list]:
        parts = [self.unary()]
        while True:
            token = self._peek()
            if token is None or token == ")" or token.lower() == "or":
                break
            if token == "," or token.lower() == "and":
                self.pos += 1
            parts.append(self.unary())
        return _join(parts, "AND")

    def unary(self) -> tuple[str, list]:
        token = self._peek()
        if token is None:
            raise AudienceError(f"audience {self.source!r}: expected a term at the end")
        if token.lower() == "not":
            self.pos += 1
            sql, params = self.unary()
            return f"NOT ({sql})", params
        if token == "(":
            self.pos += 1
            result = self.expr()
            if self._peek() != ")":
                raise AudienceError(f"audience {self.source!r}: missing ')'")
            self.pos += 1
            return result
        self.pos += 1
        return _term(token, self.source)


def _join(parts: list[tuple[str, list]], op: str) -> tuple[str, list]:
    if len(parts) == 1:
        return parts[0]
    return f" {op} ".join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]


def _term(token: str, source: str) -> tuple[str, list]:
    low = token.lower()
    if low in ("all", "*"):
        return "1", []
    if low in ("subscribers", "subscribed"):
        return "subscribed = 1", []
    stage = _STAGE.match(low)
    if stage:
        op, name = stage.groups()
        if name not in STAGES:
            raise AudienceError(f"audience {source!r}: unknown stage {name!r}; "
                                f"use one of {', '.join(STAGES)}")
        index = STAGES.index(name)
        chosen = [s for i, s in enumerate(STAGES) if _compare(i, op, index)]
        if not chosen:
            return "0", []
        return f"stage IN ({','.join('?' * len(chosen))})", chosen
    key, _, value = token.partition(":")
    if value:
        key = key.lower()
        if key == "tag":
            # tags are a JSON list written by dumps(): look for the quoted tag.
            return "instr(tags, ?) > 0", [dumps(value)]
        if key in ("lang", "language"):
            if value not in LANGUAGES:
                raise AudienceError(f"audience {source!r}: unknown language {value!r}; "
                                    f"use one of {', '.join(LANGUAGES)}")
            return "language = ?", [value]
        if key == "channel":
            return "channel = ?", [value.lower()]
    raise AudienceError(
        f"audience {source!r}: cannot read {token!r}; write all, subscribers, stage>=friend, "
        "tag:NAME, lang:zh, channel:telegram, combined with and / or / not / parentheses"
    )


def _compare(a: int, op: str, b: int) -> bool:
    return {">=": a >= b, ">": a > b, "=": a == b, "<=": a <= b, "<": a < b}[op]

"""YAML syntax errors an operator can act on: the right line, a caret, a plain hint.

PyYAML says ``expected <block end>, but found '<block mapping start>'`` for a line indented 3
spaces among lines indented 2, reports a de-indented key on the *next* line, and says
``mapping values are not allowed here`` for ``hours: 营业时间: 9点``. Here each error is
explained in words (Chinese or English, :mod:`bot.i18n`) and pointed at the line to fix:

* indentation: a line that matches none of the enclosing levels, or that goes deeper after a
  line that opens nothing — blamed on the odd line out (the de-indented one, not its neighbour);
* a tab in the indentation; an unquoted ``: `` inside text; an unclosed quote or bracket
  (reported where it opens); text after a closing quote.

:func:`syntax_problems` finds every syntax error in one pass: after each one it blanks the
offending line (line numbers stay) and parses again, up to a limit, so an operator fixes a file
in one round instead of one error per run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from bot.errors import Problem
from bot.i18n import _

MAX_SYNTAX_PROBLEMS = 20
_BLOCK_SCALAR = re.compile(r"(?::|^-|\s-)\s*[|>][+-]?\d*\s*(?:#.*)?$")
_KEY = re.compile(r"""^(?:-\s+)*(?:"[^"]*"|'[^']*'|[^\s'"#\[\]{},:][^#]*?)\s*:(?:\s|$)""")


@dataclass(frozen=True)
class _Suspect:
    line: int  # 1-based
    indent: int
    expected: tuple[int, ...]


def syntax_problems(path: str, text: str, parse) -> list[Problem]:
    """Every syntax error in ``text``, explained; ``parse(text)`` raises yaml.YAMLError."""
    lines = text.splitlines()
    problems: list[Problem] = []
    seen: set[int] = set()
    current = list(lines)
    for _attempt in range(MAX_SYNTAX_PROBLEMS):
        try:
            parse("\n".join(current) + "\n")
            break
        except yaml.MarkedYAMLError as exc:
            problem = explain(path, current, exc, original=lines)
        except yaml.YAMLError as exc:
            problem = Problem(path, 1, 1, "", _("YAML syntax error: {exc}").format(exc=exc))
        if problem.line in seen or not 1 <= problem.line <= len(current):
            if problem.line not in seen:
                problems.append(problem)
            break
        seen.add(problem.line)
        problems.append(problem)
        current[problem.line - 1] = ""
    return problems or [Problem(path, 1, 1, "", _("YAML syntax error"))]


def explain(path: str, lines: list[str], exc: yaml.MarkedYAMLError,
            original: list[str] | None = None) -> Problem:
    """One PyYAML error as a located problem with a plain hint."""
    original = original or lines
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    column = mark.column + 1 if mark else 1
    problem_text = exc.problem or ""
    context_text = exc.context or ""
    context_line = exc.context_mark.line + 1 if exc.context_mark else line

    def at(n: int, col: int, message: str) -> Problem:
        source = original[n - 1] if 1 <= n <= len(original) else None
        return Problem(path, n, max(col, 1), "", _("YAML syntax error: ")
                       + message, source)

    # A tab anywhere in the indentation of the lines read so far.
    for n in range(1, min(line, len(lines)) + 1):
        raw = lines[n - 1]
        lead = raw[: len(raw) - len(raw.lstrip(" \t"))]
        if "\t" in lead:
            return at(n, lead.index("\t") + 1, _(
                "line {n} is indented with a tab; YAML indents with spaces only: replace the "
                "tab with spaces (2 per level)").format(n=n))

    if "quoted scalar" in context_text:
        quote = _char_at(lines, context_line, exc.context_mark.column + 1) or '"'
        return at(context_line, exc.context_mark.column + 1, _(
            "the quote {quote} opened here is never closed; add the closing {quote} at the "
            "end of the text").format(quote=quote))

    if "flow sequence" in context_text or "flow mapping" in context_text:
        opener = "[" if "sequence" in context_text else "{"
        closer = "]" if opener == "[" else "}"
        if context_line != line and problem_text.startswith("expected ','"):
            return at(context_line, exc.context_mark.column + 1, _(
                "the {opener} opened here is never closed; add {closer} at the end of the "
                "list").format(opener=opener, closer=closer))
        if "got ':'" in problem_text:
            return at(line, column, _(
                "text containing ': ' must be quoted: write \"a: b\" inside the brackets"))

    suspects = indentation_suspects(lines[:line])
    near = [s for s in suspects if line - 3 <= s.line <= line]
    if near and ("mapping values" in problem_text or "block end" in problem_text
                 or "block mapping" in problem_text or "block collection" in problem_text):
        s = near[-1]
        return at(s.line, s.indent + 1, _indent_hint(s))

    raw = lines[line - 1] if 1 <= line <= len(lines) else ""
    if "mapping values are not allowed" in problem_text:
        key = _KEY.match(raw.strip())
        value_col = (len(raw) - len(raw.lstrip()) + key.end() + 1) if key else column
        return at(line, value_col, _(
            "text containing ': ' must be quoted: put the whole value in quotes, e.g. hours: "
            "\"营业时间: 9点\""))

    if "found '<scalar>'" in problem_text and _quoted_then_text(raw):
        return at(line, column, _(
            "text after a closing quote: put the whole value inside the quotes (inside '...' "
            "write '' for an apostrophe)"))

    if "block end" in problem_text or "block mapping" in problem_text:
        return at(line, column, _(
            "this line does not fit the structure above it; check its indentation and that "
            "the line above is complete"))

    return at(line, column, _("{detail} (see docs/personas.md for the format)").format(
        detail=problem_text or context_text or "invalid YAML",
        detail_zh=problem_text or context_text or "格式无效"))


def _char_at(lines: list[str], line: int, column: int) -> str:
    raw = lines[line - 1] if 1 <= line <= len(lines) else ""
    return raw[column - 1] if 0 < column <= len(raw) else ""


def _quoted_then_text(raw: str) -> bool:
    return bool(re.search(r""":\s*(?:"[^"]*"|'[^']*')\s*[^\s#]""", raw))


def _indent_hint(s: _Suspect) -> str:
    levels = [e for e in s.expected if e != s.indent]
    use = " or ".join(str(e) for e in levels) if levels else "?"
    use_zh = " 或 ".join(str(e) for e in levels) if levels else "?"
    spaces = "space" if s.indent == 1 else "spaces"
    return _(
        "line {line} is indented {indent} {spaces}; the lines around it use {use}: line it "
        "up with the lines it belongs with").format(
        line=s.line, indent=s.indent, spaces=spaces, use=use, use_zh=use_zh)


def indentation_suspects(lines: list[str]) -> list[_Suspect]:
    """Lines whose indentation fits no enclosing level, or that go deeper after a line that
    opens nothing. A line that steps out and back in (``parking:`` at 0 between two facts at 2)
    is blamed, not the one after it; a first child indented by an unusual step is blamed when
    its sibling lines up with the usual step."""
    content = _content_lines(lines)
    step = _usual_step(content)
    suspects: list[_Suspect] = []
    # (indent, line that set this level, its parent indent)
    stack: list[tuple[int, int, int]] = [(0, 0, -1)]
    opens = False
    prev_indent, prev_stack = 0, list(stack)  # the stack as it was before the previous line
    prev_orphaned: int | None = None
    for n, indent, text in content:
        levels = [lvl for lvl, _, _ in stack]
        before_line = list(stack)
        orphaned = None  # the opener's indent when this line should have been its child
        if opens and (indent > levels[-1] or (indent == levels[-1] and text.startswith("-"))):
            if indent > levels[-1]:
                stack.append((indent, n, levels[-1]))
        elif indent in levels:
            if opens and indent <= levels[-1]:
                orphaned = levels[-1]
            while stack[-1][0] > indent:
                stack.pop()
        elif indent > levels[-1]:
            # Deeper after a line that opened nothing: a stray indent, or the line above stepped
            # out of a block this one is still in.
            before = [lvl for lvl, _, _ in prev_stack]
            if prev_orphaned is not None and prev_orphaned < indent and _looks_structural(text):
                # `facts:` then `hours:` at the facts' own level then `  parking:`: the
                # de-indented `hours:` is the line to fix.
                suspects.append(_Suspect(n - _gap(content, n), prev_indent, (indent,)))
                stack = [e for e in prev_stack if e[0] <= prev_orphaned]
                stack.append((indent, n, prev_orphaned))
            elif indent in before and prev_indent < indent:
                suspects.append(_Suspect(n - _gap(content, n), prev_indent, (indent,)))
                stack = [e for e in prev_stack if e[0] <= indent]
            elif _looks_structural(text):
                suspects.append(_Suspect(n, indent, _neighbours(content, n, indent)))
                prev_indent, prev_stack, prev_orphaned = indent, before_line, None
                opens = False
                continue
        else:
            top, set_by, parent = stack[-1]
            if top - parent != step and indent - parent == step and parent >= 0:
                suspects.append(_Suspect(set_by, top, (indent,)))
                stack.pop()
                stack.append((indent, n, parent))
            else:
                below = max(lvl for lvl in levels if lvl < indent)
                above = min(lvl for lvl in levels if lvl > indent)
                around = _neighbours(content, n, indent)
                suspects.append(_Suspect(n, indent, around if len(around) == 1
                                         and not _opens_block(text) else (below, above)))
        prev_indent, prev_stack, prev_orphaned = indent, before_line, orphaned
        opens = _opens_block(text)
        if text.startswith("- ") and not opens:
            # `- key: value` continues at the item's content column.
            inner = indent + 2 + (len(text[2:]) - len(text[2:].lstrip(" ")))
            if _KEY.match(text):
                stack.append((inner, n, indent))
    return suspects


def _gap(content: list[tuple[int, int, str]], n: int) -> int:
    index = next(i for i, (m, _, _) in enumerate(content) if m == n)
    return n - content[index - 1][0] if index else 0


def _neighbours(content: list[tuple[int, int, str]], n: int, indent: int) -> tuple[int, ...]:
    index = next(i for i, (m, _, _) in enumerate(content) if m == n)
    around = [content[i][1] for i in (index - 1, index + 1) if 0 <= i < len(content)]
    return tuple(sorted({a for a in around if a != indent})) or (indent,)


def _looks_structural(text: str) -> bool:
    return text.startswith("- ") or bool(_KEY.match(text))


def _opens_block(text: str) -> bool:
    stripped = re.sub(r"\s+#.*$", "", text).rstrip()
    return stripped.endswith(":") or stripped == "-" or bool(_BLOCK_SCALAR.search(stripped))


def _usual_step(content: list[tuple[int, int, str]]) -> int:
    steps: dict[int, int] = {}
    for (_n, a, _t), (_m, b, _u) in zip(content, content[1:], strict=False):
        if b > a:
            steps[b - a] = steps.get(b - a, 0) + 1
    return max(steps, key=lambda k: (steps[k], -k)) if steps else 2


def _content_lines(lines: list[str]) -> list[tuple[int, int, str]]:
    """(line number, indent, text) of lines that carry structure: no blanks, comments, block
    scalar bodies, or continuation lines of a bracketed list."""
    out: list[tuple[int, int, str]] = []
    scalar_indent: int | None = None
    depth = 0
    for n, raw in enumerate(lines, 1):
        text = raw.lstrip(" ")
        indent = len(raw) - len(text)
        if not text.strip() or text.startswith("#"):
            continue
        if scalar_indent is not None:
            if indent > scalar_indent:
                continue
            scalar_indent = None
        if depth > 0:
            depth = max(0, depth + _bracket_balance(text))
            continue
        if text.startswith("\t"):
            continue
        out.append((n, indent, text.rstrip()))
        depth = max(0, _bracket_balance(text))
        if _BLOCK_SCALAR.search(re.sub(r"\s+#.*$", "", text).rstrip()):
            scalar_indent = indent
    return out


def _bracket_balance(text: str) -> int:
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", re.sub(r"\s#.*$", "", text))
    return unquoted.count("[") + unquoted.count("{") - unquoted.count("]") - unquoted.count("}")

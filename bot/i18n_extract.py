"""A Babel extractor for our Python files: the usual ``_()``/``N_()``/``pgettext()`` calls, plus
the texts click shows as help, which are not calls: each click command's docstring and every
``help="..."`` argument; and the names given to ``columns()`` (table headers).

Used by ``pybabel extract -F babel.cfg`` (docs/i18n.md); bot/i18n.py translates those texts
when help is printed, with the same msgids (``inspect.cleandoc`` of the text). Babel is a
development dependency only: nothing here is imported at run time.
"""

from __future__ import annotations

import ast
import inspect
import io
from collections.abc import Iterator

_CLICK_DECORATORS = {"command", "group"}


def extract(fileobj, keywords, comment_tags, options) -> Iterator[tuple]:
    """Babel's ``extract_python`` results, then the click help texts of the file."""
    from babel.messages.extract import extract_python

    source = fileobj.read()
    yield from extract_python(io.BytesIO(source), keywords, comment_tags, options)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    yield from _help_texts(tree)


def _is_click_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    return name in _CLICK_DECORATORS


def _help_texts(tree: ast.AST) -> Iterator[tuple]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
            _is_click_decorator(d) for d in node.decorator_list
        ):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield node.body[0].lineno, None, inspect.cleandoc(doc), ["click help"]
        elif isinstance(node, ast.Call):
            target = node.func
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name == "columns":  # bot.i18n.columns("id", "fan", ...): table column names
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        yield arg.lineno, "pgettext", ("column", arg.value), ["table column"]
            for keyword in node.keywords:
                if (keyword.arg == "help" and isinstance(keyword.value, ast.Constant)
                        and isinstance(keyword.value.value, str) and keyword.value.value):
                    yield (keyword.value.lineno, None, inspect.cleandoc(keyword.value.value),
                           ["click help"])

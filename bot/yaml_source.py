"""YAML with line numbers: load a file and remember where every value came from.

Operators fix files by line. PyYAML's composed node tree knows each node's position, so we walk
it once, building the plain data and a map from field path (``("intents", "hours", "examples")``)
to ``(line, column)``. Validation errors, which know only field paths, are then reported as
``path:line:col: field.path: message``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError, Problem

M = TypeVar("M", bound=BaseModel)
FieldPath = tuple[str | int, ...]
Positions = dict[FieldPath, tuple[int, int]]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads yes/no/on/off/y/n as booleans, so a fan line `say: yes` or a reply variant
    `[no]` would silently become True/False. Operators mean the words.
    """


_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(path: str | Path, text: str | None = None) -> tuple[Any, Positions]:
    """Parse ``path`` (or ``text`` when given) and return ``(data, positions)``.

    Raises :class:`ConfigError` for syntax errors and duplicate keys, with the line.
    """
    path = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                [Problem(path, 1, 1, "", f"not UTF-8 text ({exc.reason}); save the file as UTF-8")]
            ) from None
        except OSError as exc:
            raise ConfigError(
                [Problem(path, 1, 1, "", f"cannot read file: {exc.strerror}")]
            ) from None
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([Problem(path, line, col, "", f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(path, 1, 1, "", f"YAML syntax error: {exc}")]) from None
    finally:
        loader.dispose()
    if node is None:
        raise ConfigError(
            [Problem(path, 1, 1, "", "the file is empty; see docs/ for a complete example")]
        )
    positions: Positions = {}
    problems: list[Problem] = []
    data = _build(node, (), positions, problems, path, set())
    if problems:
        raise ConfigError(problems)
    return data, positions


def yaml_files(paths: list[Path]) -> list[Path]:
    """The YAML files among ``paths`` (folders searched recursively, sorted; missing skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.y*ml") if p.is_file()))
        elif path.exists():
            files.append(path)
    return files


def load_model(path: str | Path, model: type[M], text: str | None = None) -> tuple[M, Positions]:
    """Load ``path`` and validate it as pydantic ``model``; ConfigError with located problems."""
    data, positions = load_yaml(path, text)
    try:
        return model.model_validate(data), positions
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, str(path), positions)) from None


def _build(
    node: yaml.Node,
    where: FieldPath,
    positions: Positions,
    problems: list[Problem],
    path: str,
    seen: set[int],
) -> Any:
    positions[where] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        # An alias (*name) of a list or mapping is the same node again. Refuse it: nested
        # aliases expand exponentially ("billion laughs") and would hang a reload.
        if id(node) in seen:
            problems.append(Problem(path, node.start_mark.line + 1, node.start_mark.column + 1,
                                    _dotted(where), "YAML aliases (*name) of lists or mappings "
                                    "are not supported; write the value out"))
            return None
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            )
            if isinstance(key, bool) or key is None or not isinstance(key, str | int | float):
                # YAML 1.1 reads keys like `yes`, `no`, `on` as booleans; operators mean words.
                key = str(key_node.value)
            if key in result:
                problems.append(
                    Problem(
                        path,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        _dotted(where + (key,)),
                        f"duplicate key {key!r}; keep only one",
                    )
                )
                continue
            result[key] = _build(value_node, where + (key,), positions, problems, path, seen)
            # Point errors about a key (unknown field, wrong type) at the key itself.
            positions[where + (key,)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, where + (i,), positions, problems, path, seen)
            for i, item in enumerate(node.value)
        ]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(where: FieldPath) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def position_of(positions: Positions, where: FieldPath) -> tuple[int, int]:
    """The position of ``where`` or of its nearest ancestor that exists in the file."""
    where = tuple(where)
    while where and where not in positions:
        where = where[:-1]
    return positions.get(where, (1, 1))


def problem_at(path: str, positions: Positions, where: FieldPath, message: str) -> Problem:
    """A :class:`Problem` located at field path ``where``."""
    line, col = position_of(positions, where)
    return Problem(str(path), line, col, _dotted(where), message)


def problems_from_validation(
    exc: ValidationError, path: str, positions: Positions
) -> list[Problem]:
    """Turn pydantic's errors into located problems phrased as fixes."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        problems.append(problem_at(path, positions, loc, _phrase(err, loc)))
    # pydantic reports one error per union branch; keep one message per field.
    seen: set[tuple[int, int, str]] = set()
    unique = []
    for p in problems:
        if (p.line, p.column, p.field) in seen:
            continue
        seen.add((p.line, p.column, p.field))
        unique.append(p)
    return unique


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the union member's name ("str", "dict[...]", "list[str]") into loc.
    return isinstance(part, str) and (part in {"str", "int", "float", "bool"} or "[" in part)


def _phrase(err: dict[str, Any], loc: FieldPath) -> str:
    kind, msg = err["type"], err["msg"]
    name = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        return f"unknown field {name!r}; check the spelling or remove it (see docs/)"
    if kind == "missing":
        return f"required field {name!r} is missing; add it"
    if kind == "literal_error":
        return f"{msg.replace('Input should be', 'must be')}"
    if kind.endswith("_type") or kind in {"model_type", "dict_type", "list_type"}:
        got = type(err.get("input")).__name__
        return f"{msg.replace('Input should be', 'must be')} (got {got})"
    return msg.replace("Value error, ", "").replace("Input should be", "must be")

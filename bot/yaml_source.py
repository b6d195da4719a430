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

from bot.errors import ConfigError, Problem, did_you_mean
from bot.i18n import _, pgettext
from bot.yaml_syntax import syntax_problems

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
                [Problem(path, 1, 1, "", _(
                    "not UTF-8 text ({reason}); save the file as UTF-8").format(reason=exc.reason))]
            ) from None
        except OSError as exc:
            raise ConfigError(
                [Problem(path, 1, 1, "", _("cannot read file: {strerror}").format(
                    strerror=exc.strerror))]
            ) from None
    try:
        node = _compose(text)
    except yaml.YAMLError:
        # Explained, at the line to fix, and every one of them (bot/yaml_syntax.py).
        raise ConfigError(syntax_problems(path, text, _compose)) from None
    if node is None:
        raise ConfigError(
            [Problem(path, 1, 1, "", _("the file is empty; see docs/ for a complete example"))]
        )
    positions: Positions = {}
    problems: list[Problem] = []
    data = _build(node, (), positions, problems, path, set())
    if problems:
        raise ConfigError(problems)
    return data, positions


def _compose(text: str) -> yaml.Node | None:
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


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
        raise ConfigError(problems_from_validation(exc, str(path), positions, model)) from None


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
                                    _dotted(where), _(
                                        "YAML aliases (*name) of lists or mappings are not "
                                        "supported; write the value out")))
            return None
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                _readable(key_node, where, problems, path)
                if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            )
            if isinstance(key, bool) or key is None or not isinstance(key, str | int | float):
                # YAML 1.1 reads keys like `yes`, `no`, `on` as booleans; operators mean words.
                key = str(key_node.value)
            if key in result:
                first_line = positions[where + (key,)][0]
                problems.append(
                    Problem(
                        path,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        _dotted(where + (key,)),
                        _("duplicate key {key!r} (first on line {first_line}); keep only "
                          "one").format(key=key, first_line=first_line),
                        _source_line(key_node.start_mark),
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
    return _readable(node, where, problems, path)


_PLAIN_TAGS = {f"tag:yaml.org,2002:{name}"
               for name in ("str", "int", "float", "bool", "null", "timestamp")}


def _readable(node: yaml.Node, where: FieldPath, problems: list[Problem], path: str) -> Any:
    """The scalar's value; a problem (not a crash) for a tag we refuse or a value that cannot be
    read, such as the date ``2026-13-45`` or ``!!python/object``."""
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if node.tag not in _PLAIN_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        problems.append(Problem(path, line, col, _dotted(where), _(
            "the tag {tag!r} is not allowed; remove it (quote the value to keep it as text)"
        ).format(tag=tag),
            _source_line(node.start_mark)))
        return None
    try:
        return _scalar(node)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(Problem(path, line, col, _dotted(where), _(
            "not a valid date or number ({reason}); fix it, or quote it to keep it as text").format(
            reason=reason),
            _source_line(node.start_mark)))
        return None


def _source_line(mark: yaml.Mark) -> str | None:
    """The whole line ``mark`` points into (PyYAML keeps the text it parsed in the mark)."""
    buffer = getattr(mark, "buffer", None)
    if not buffer:
        return None
    start = buffer.rfind("\n", 0, mark.pointer) + 1
    end = buffer.find("\n", mark.pointer)
    return buffer[start: end if end >= 0 else len(buffer)].rstrip("\r\x00")


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
    exc: ValidationError, path: str, positions: Positions, model: type[BaseModel] | None = None
) -> list[Problem]:
    """Turn pydantic's errors into located problems phrased as fixes (with "did you mean" for
    a misspelt field when ``model`` is given)."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        message = _phrase(err, loc)
        if err["type"] == "extra_forbidden" and model is not None and loc:
            message += did_you_mean(loc[-1], _field_names(model, loc[:-1]))
        problems.append(problem_at(path, positions, loc, message))
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


def _field_names(model: Any, parent: FieldPath) -> list[str]:
    """The field names of the model at ``parent`` inside ``model`` (through lists and dicts)."""
    import typing

    def step(annotation: Any, part: str | int) -> list[Any]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            return [field.annotation] if field is not None else []
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (dict, typing.Mapping) or (origin is not None and args and origin is list):
            return [args[-1]]
        return [a for arg in args for a in step(arg, part)]  # Optional[...], unions

    def models(annotation: Any) -> list[Any]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in typing.get_args(annotation) for m in models(arg)]

    current: list[Any] = [model]
    for part in parent:
        current = [a for annotation in current for a in step(annotation, part)]
    return sorted({name for a in current for m in models(a) for name in m.model_fields})


def _phrase(err: dict[str, Any], loc: FieldPath) -> str:
    kind, msg = err["type"], err["msg"]
    name = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        return _("unknown field {name!r}; check the spelling or remove it (see docs/)").format(
            name=name)
    if kind == "missing":
        return _("required field {name!r} is missing; add it").format(name=name)
    if kind == "literal_error":
        # msgid "{must_be}": English shows pydantic's text; Chinese prefixes and rephrases it
        return pgettext("pydantic literal_error", "{must_be}").format(
            must_be=msg.replace("Input should be", "must be"),
            should_be=msg.replace("Input should be ", "应为 "))
    if kind.endswith("_type") or kind in {"model_type", "dict_type", "list_type"}:
        got = type(err.get("input")).__name__
        return _("{must_be} (got {got})").format(
            must_be=msg.replace("Input should be", "must be"), got=got,
            should_be=msg.replace("Input should be ", "应为 "))
    return msg.replace("Value error, ", "").replace("Input should be", "must be")

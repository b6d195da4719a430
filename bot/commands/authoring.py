"""Commands for the people writing persona and dialog files: check, test, schema, dialog draw,
nlu eval.

Each command's docstring is its help text and ends with an example.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bot.commands.common import fail, load_brand, show_problems
from bot.errors import ConfigError
from bot.i18n import _, lang_option, pgettext
from bot.tables import echo, json_text


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@lang_option(help="Language of the messages (default: from LANG/LC_ALL; zh* is Chinese).")
def check(paths: tuple[Path, ...], lang: str | None) -> None:
    """Validate persona and dialog files (default: ./personas and ./dialogs).

    Prints every problem as `path:line:col: field: what is wrong and how to fix it` (syntax
    errors with the line and a caret), then each file checked, and exits 1 if there is any.
    Warnings (a reply hard-coding a fact's value, a copied persona's old names) are printed the
    same way but never change the exit status.
    检查人格和对话文件（默认 ./personas 和 ./dialogs），逐条指出问题所在的行和改法；警告照样列出，
    但不影响退出码。

    Example: brandbot check personas/ dialogs/
    """
    _check(paths)


def _check(paths: tuple[Path, ...]) -> None:
    from bot.brand import check_paths
    from bot.yaml_source import yaml_files

    targets = list(paths) or [Path(kind) for kind in ("personas", "dialogs")
                              if Path(kind).is_dir()]
    if not targets:
        fail(_("no ./personas or ./dialogs folder here; run this in your brand's folder or "
               "name the files: brandbot check path/to/persona.yaml"), 2)
    files = yaml_files(targets)
    if not files:
        fail(_("no .yaml files in {folders}").format(folders=", ".join(map(str, targets)),
                                                     folders_zh="、".join(map(str, targets))), 2)
    warnings: list = []
    problems, count = check_paths(targets, warnings)
    warnings = sorted(set(warnings))
    read: dict[str, list[str]] = {}
    for problem in problems + warnings:
        echo(_with_source(problem, read).render())
    bad = {Path(p.path).resolve() for p in problems}
    for file in files:
        n = sum(1 for p in problems if Path(p.path).resolve() == file.resolve())
        mark = (_("{count} problem(s)").format(count=n) if file.resolve() in bad
                else pgettext("file checked", "ok"))
        w = sum(1 for p in warnings if Path(p.path).resolve() == file.resolve())
        if w:  # warnings are shown but never fail the check (like `brandbot doctor`)
            mark += _(", {count} warning(s)").format(count=w)
        echo(f"{mark}: {file}")
    if problems:
        click.echo(_("{problems} problem(s) in {count} file(s)").format(
            problems=len(problems), count=count), err=True)
        sys.exit(1)
    tail = _(", {count} warning(s)").format(count=len(warnings)) if warnings else ""
    click.echo(_("ok: {count} file(s) checked").format(count=count) + tail)


def _with_source(problem, _cache: dict[str, list[str]]):
    """The problem with its file's line attached, so render() shows it under a caret
    (``_cache``: the files read so far in this run)."""
    import dataclasses
    import re

    if problem.source is not None:
        return problem
    if problem.path not in _cache:
        try:
            _cache[problem.path] = Path(problem.path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            _cache[problem.path] = []
    lines = _cache[problem.path]
    if not 1 <= problem.line <= len(lines):
        return problem
    line = lines[problem.line - 1].lstrip("\ufeff")
    name = re.sub(r"\[\d+\]", "", problem.field).rsplit(".", 1)[-1]
    if name and name not in line:
        return problem  # a missing field: its parent's line would only mislead
    return dataclasses.replace(problem, source=line)


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--verbose", "-v", is_flag=True, help="Print every turn.")
def test_cmd(paths: tuple[Path, ...], verbose: bool) -> None:
    """Run conversation tests (YAML scripts of fan turns with expectations).

    Each conversation runs on a fresh temporary database with a fixed clock and seed. See
    docs/conversation-tests.md for the format.

    Example: brandbot test tests/conversations/
    """
    from bot.testing import collect, run_file

    files = collect(list(paths) or [Path("tests/conversations")])
    if not files:
        fail(_("no conversation test files found (*.yaml)"))
    failed = passed = 0
    for file in files:
        try:
            results = run_file(file)
        except ConfigError as exc:
            show_problems(exc, err=False)
            failed += 1
            continue
        for result in results:
            if result.ok:
                passed += 1
                echo(f"PASS {file}::{result.name}")
            else:
                failed += 1
                echo(f"FAIL {file}::{result.name}")
                for line in result.failures:
                    echo(f"    {line}")
            if verbose:
                for line in result.transcript:
                    echo(f"      {line}")
    click.echo(_("{passed} passed, {failed} failed").format(passed=passed, failed=failed))
    sys.exit(1 if failed else 0)


@click.command()
@click.argument("kind", type=click.Choice(["persona", "dialog"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of persona or dialog files, for editors.

    Save it and add `# yaml-language-server: $schema=../schemas/persona.schema.json` as the
    first line of a persona file to get completion and errors while typing.

    Example: brandbot schema persona > schemas/persona.schema.json
    """
    from bot.dialog.spec import DialogSpec
    from bot.persona.model import Persona

    model = Persona if kind == "persona" else DialogSpec
    click.echo(json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2))


@click.group()
def dialog() -> None:
    """Dialog tools."""


@dialog.command("draw")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "svg", "png"]), default="mermaid",
              show_default=True, help="svg/png need mermaid-cli (mmdc) installed.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write svg/png (default: the dialog's name with that extension).")
def dialog_draw(file: Path, fmt: str, output: Path | None) -> None:
    """Draw a dialog: Mermaid state-diagram text, or an SVG/PNG picture.

    One arrow per pair of states with every trigger on it (conditions in [..], actions and
    replies after →); what happens without moving is listed inside each state; transitions
    that can never fire are left out (as %% comments; `brandbot check` reports them).

    Example: brandbot dialog draw dialogs/default.yaml --format svg -o dialog.svg
    """
    from bot.dialog.draw import RenderError, render
    from bot.dialog.loader import load_dialog

    try:
        text = load_dialog(file).to_mermaid()
    except ConfigError as exc:
        show_problems(exc, err=True)
        sys.exit(1)
    if fmt == "mermaid":
        click.echo(text, nl=False)
        return
    target = output or Path(file.stem + "." + fmt)
    try:
        render(text, target, fmt)
    except RenderError as exc:
        fail(_("cannot draw {fmt}: {exc}").format(fmt=fmt, exc=exc), 2)
    click.echo(_("wrote {target}").format(target=target))


@click.group()
def nlu() -> None:
    """Intent understanding tools."""


@nlu.command("eval")
@click.option("--persona", "-p", default="laowang-kitchen", show_default=True)
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object, with every message's result."
)
@click.option(
    "--by", default=None, metavar="FIELD", help="Group the metrics by this field (e.g. cat)."
)
def nlu_eval(persona: str, data: Path, as_json: bool, by: str | None) -> None:
    """Measure intent matching on labelled fan messages (JSON lines: text, intent or null, any
    other fields). Reports the threshold in use and what other thresholds would give.
    测量意图识别：每行一个 JSON（text、intent 或 null，可带其他字段）。

    Example: brandbot nlu eval -p laowang-kitchen --by cat tests/data/nlu/laowang-heldout.jsonl
    """
    from bot.nlu.evaluate import evaluate

    brand = load_brand(persona)
    rows = []
    for number, line in enumerate(data.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append({**row, "text": str(row["text"]), "intent": row.get("intent")})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            fail(_('{data}:{number}: expected {{"text": ..., "intent": NAME or null}} ({exc})')
                 .format(data=data, number=number, exc=exc))
    report = evaluate(brand.understander, rows, by=by)
    if as_json:
        click.echo(json_text(report.to_dict()))
    else:
        echo(report.format_text())

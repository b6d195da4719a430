"""The ``brandbot`` command. Each command's docstring is its help text and ends with an example."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bot import i18n
from bot.commands.common import DEFAULT_DB, fail, one_fan, open_store, print_table
from bot.errors import BrandbotError, ConfigError
from bot.i18n import _, columns, pgettext, pick, short_language
from bot.tables import echo, json_text


def _delivery_word(status: str) -> str:
    """How a delivery status (sent, queued, failed) reads in the operator's language."""
    words = {"sent": pgettext("delivery", "sent"), "queued": pgettext("delivery", "queued"),
             "failed": pgettext("delivery", "failed")}
    return words.get(status, status)


def _load_brand(persona: str):
    from bot.brand import load_brand

    try:
        return load_brand(persona)
    except ConfigError as exc:
        for problem in exc.problems:
            echo(str(problem), err=True)
        fail(_("persona {persona!r} is invalid ({count} problem(s)); fix the lines above").format(
            persona=persona, count=len(exc.problems)), 1)
    except BrandbotError as exc:
        fail(str(exc))


class BrandbotGroup(click.Group):
    """The root group: chooses the language before click parses anything (``--help`` is
    printed while parsing) and puts the previous one back afterwards (bot/i18n.py)."""

    restores_language = True

    def main(self, *args, **kwargs):
        previous = i18n.language()
        i18n.set_language(None)  # the locale; --lang (eager) may change it while parsing
        try:
            return super().main(*args, **kwargs)
        finally:
            i18n.set_language(previous)


@click.group(cls=BrandbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brandbot")
@i18n.lang_option(help="Language of messages and help: zh (zh_CN), zh_TW or en (default: "
                       "from LC_ALL, LC_MESSAGES or LANG; zh_CN.UTF-8 is Chinese).")
def main(lang: str | None) -> None:
    """brandbot: a brand's human voice in chat (Telegram, WeChat, terminal, web).

    Start with `brandbot serve` (web chat on http://127.0.0.1:8080/, Telegram and WeChat when
    configured) or `brandbot chat` to talk to the demo brand in the terminal.
    """


@main.command()
@click.option(
    "--persona", "-p", default="laowang-kitchen", show_default=True, help="Persona id or path."
)
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite relationship log.")
@click.option("--fan", default="local-fan", show_default=True, help="Which fan you are.")
@click.option("--lang", type=click.Choice(["zh", "en"]), help="Reply language (default: detected).")
@click.option("--ref", help="A referral or campaign code carried by your first message.")
def chat(persona: str, db: str, fan: str, lang: str | None, ref: str | None) -> None:
    """Talk to a persona in the terminal.

    Interactive in a terminal; with piped input it reads one fan message per line and prints
    each reply on its own line. The same --fan continues the same conversation.

    Example: printf '你好\\n你们几点开门\\n' | brandbot chat --db /tmp/t.db
    """
    from bot.channels.console import ConsoleChannel
    from bot.engine import Engine
    from bot.relations import Store

    brand = _load_brand(persona)
    store = Store(db)
    try:
        channel = ConsoleChannel(
            Engine(store, brand), persona=brand.id, fan=fan, language=lang, ref=ref
        )
        channel.run(sys.stdin, interactive=sys.stdin.isatty())
    finally:
        store.close()


@main.command()
@click.option("--config", "-c", "config", help="Settings file (default: $BRANDBOT_CONFIG, "
              "else ./brandbot.yaml if present).")
@click.option("--host", help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (default 8080; 0 picks a free one).")
@click.option("--db", help="SQLite relationship log (default brandbot.db).")
@click.option("--persona", "-p", "personas", multiple=True,
              help="Persona id or path to serve on every channel (repeatable).")
@click.option("--log-format", type=click.Choice(["text", "json"]), 
              help="Log lines as text or JSON.")
@click.option("--reload/--no-reload", default=None, help="Watch personas/ and dialogs/.")
def serve(config, host, port, db, personas, log_format, reload) -> None:
    """Run the daemon: web chat, health, metrics, hot reload of personas and dialogs.

    With no settings it serves the demo persona on http://127.0.0.1:8080/ with brandbot.db.
    Settings: brandbot.yaml + BRANDBOT_* environment (docs/configuration.md); these flags win.
    SIGHUP reloads personas; SIGTERM or Ctrl-C stops cleanly. Exit 2: invalid settings.

    Example: brandbot serve --port 8080 --persona laowang-kitchen
    """
    from bot.config import SettingsError, load_settings
    from bot.daemon import serve as run_daemon

    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            db=db,
            personas=list(personas) or None,
            log_format=log_format,
            reload=reload,
        )
    except SettingsError as exc:
        for line in exc.lines:
            click.echo(_("error: {message}").format(message=line), err=True)
        click.echo(_("brandbot serve: invalid settings; see docs/configuration.md"), err=True)
        sys.exit(2)
    sys.exit(run_daemon(settings))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@i18n.lang_option(help="Language of the messages (default: from LANG/LC_ALL; zh* is Chinese).")
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


@main.command("test")
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
            for problem in exc.problems:
                echo(str(problem))
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


@main.group()
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

    brand = _load_brand(persona)
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


@main.group()
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
        for problem in exc.problems:
            echo(str(problem), err=True)
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


@main.command()
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--persona", "-p", help="Only this persona's fans.")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
              help="Only fans with FIELD=VALUE (repeatable, all must hold): persona, channel, "
                   "stage, language, subscribed/handoff/blocked=yes|no, name=PART.")
@click.option("--sort", metavar="[-]FIELD", default="-last_seen", show_default=True,
              help="Order by last_seen, first_seen, score, name, stage or id; "
                   "- in front for highest/latest first.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Show at most N fans (table default: 50; --json default: all).")
@click.option("--tz", help="Show times in this IANA zone (default: each persona's timezone).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (raw values).")
def fans(db: str, persona: str | None, filters: tuple[str, ...], sort: str,
         limit: int | None, tz: str | None, as_json: bool) -> None:
    """List fans: name, channel, stage, score, subscribed, handoff, last seen.

    Times show in the persona's time zone ("今天 14:05"); --json keeps the raw log values.

    Example: brandbot fans --filter channel=web --filter subscribed=yes --sort -score --limit 20
    """
    from bot.commands.common import now, persona_zone, zone_option
    from bot.humantime import flag, when
    from bot.relations.fan_list import ListingError, build_query, count, page, stream

    zone_option(tz)
    store = open_store(db)
    try:
        try:
            query = build_query(list(filters), sort, persona)
        except ListingError as exc:
            fail(str(exc), 2)
        fields = [
            "id",
            "persona",
            "channel",
            "external_id",
            "display_name",
            "stage",
            "score",
            "subscribed",
            "handoff",
            "dialog_state",
            "last_seen",
        ]
        if as_json:
            for row in stream(store, query, limit):
                click.echo(json_text({c: row[c] for c in fields}))
            return
        shown = page(store, query, limit or 50)
        total = count(store, query) if len(shown) == (limit or 50) else len(shown)
    finally:
        store.close()
    lang, moment = short_language(), now()
    header = columns("id", "persona", "channel", "fan", "stage", "score", "subscribed", "handoff",
                     "last seen")
    print_table(header, [
        [r["id"], r["persona"], r["channel"], r["display_name"] or r["external_id"],
         r["stage"], r["score"], pick(flag(r["subscribed"]), flag(r["subscribed"], lang)),
         pick(flag(r["handoff"]), flag(r["handoff"], lang)),
         pick(when(r["last_seen"], persona_zone(r["persona"], tz), moment),
              when(r["last_seen"], persona_zone(r["persona"], tz), moment, lang))]
        for r in shown
    ], fit=True, keep=(0, 5, 6, 7, 8))
    if total > len(shown):
        click.echo(_("{shown} of {total} fan(s) shown (--limit N for more)").format(
            shown=len(shown), total=total))
    else:
        click.echo(_("{total} fan(s)").format(total=total))


@main.command()
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


@main.group()
def handoff() -> None:
    """The operator desk: conversations a human holds."""


@handoff.command("list")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--tz", help="Show times in this IANA zone (default: each persona's timezone).")
def handoff_list(db: str, tz: str | None) -> None:
    """List conversations waiting for or held by a human, longest waiting first: why the
    human was asked for, how long the fan has waited, their last message.

    Example: brandbot handoff list
    """
    from bot.commands.common import now, persona_zone, zone_option
    from bot.humantime import ago, when
    from bot.relations.fan_list import handoffs, reason
    from bot.tables import terminal_safe, truncate

    zone_option(tz)
    store = open_store(db)
    try:
        rows = handoffs(store)
    finally:
        store.close()
    lang, moment = short_language(), now()
    header = columns("id", "persona", "channel", "fan", "reason", "started", "waiting",
                     "last message")
    print_table(header, [
        [
            str(r["id"]),
            r["persona"],
            r["channel"],
            r["display_name"] or r["external_id"],
            pick(reason(r["reason_intent"]), reason(r["reason_intent"], lang)),
            pick(when(r["started"] or r["last_seen"], persona_zone(r["persona"], tz), moment),
                 when(r["started"] or r["last_seen"], persona_zone(r["persona"], tz), moment,
                      lang)),
            pick(ago(r["waiting_since"], moment), ago(r["waiting_since"], moment, lang)),
            truncate(terminal_safe(r["last_message"] or ""), 40),
        ]
        for r in rows
    ], fit=True, keep=(0, 4, 5, 6))
    click.echo(_("{count} conversation(s) in handoff").format(count=len(rows)))


@handoff.command("end")
@click.argument("fan")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--persona", "-p", help="Persona id or path (default: the fan's persona id).")
@click.option("--config", help="Settings file with the channels' credentials (brandbot.yaml).")
def handoff_end(fan: str, db: str, persona: str | None, config: str | None) -> None:
    """Give a conversation back to the bot (FAN: id, external id or name).

    Prints the in-voice message and delivers it through the fan's channel (Telegram and WeChat
    by their APIs with the daemon's settings; web chat through the page's outbox).

    Example: brandbot handoff end local-fan
    """
    from bot.engine import Engine
    from bot.messages import FanRef, Inbound

    store = open_store(db)
    try:
        row = one_fan(store, fan, prefer_handoff=True)
        if not row["handoff"]:
            fail(_("fan {fan!r} is not in handoff").format(fan=fan))
        brand = _load_brand(persona or row["persona"])
        if brand.id != row["persona"]:
            fail(_("fan {fan!r} talks to persona {persona!r}, not {other!r}").format(
                fan=fan, persona=row["persona"], other=brand.id))
        engine = Engine(store, brand)
        replies = engine.handle(
            Inbound(FanRef(row["channel"], row["external_id"]), kind="event", event="handoff_end")
        )
        for reply in replies:
            echo(reply.text)
        if replies and row["channel"] != "console":
            # Tell the fan too, through their channel (web chat: the outbox their page polls).
            from bot.commands.marketing import _push, _settings

            status, why = _push(_settings(config, db), store, brand.id, row, replies)
            echo(_delivery_word(status) + (_(": ") + why if why else ""), err=True)
            if status == "failed":
                sys.exit(1)
    finally:
        store.close()


@main.group()
def wechat() -> None:
    """WeChat Official Account tools (docs/channels/wechat.md)."""


@wechat.command("qrcode")
@click.option("--scene", required=True, help="Referral or campaign code scans carry (1-64 chars).")
@click.option("--permanent", is_flag=True, help="Permanent (max 100,000 per account), not 30 days.")
def wechat_qrcode(scene: str, permanent: bool) -> None:
    """Create a parametric QR code for a referral or campaign code and print its URL.

    Verified service accounts only. Reads BRANDBOT_WECHAT_APPID, _TOKEN, _SECRET, _VERIFIED
    (and _API_URL).

    Example: brandbot wechat qrcode --scene spring26
    """
    from bot.channels.wechat import WeChatChannelSettings, WeChatConfigError, qrcode
    from bot.channels.wechat_api import WeChatAPIError

    try:
        settings = WeChatChannelSettings.from_env()
        if settings is None:
            fail(_("set BRANDBOT_WECHAT_APPID and BRANDBOT_WECHAT_TOKEN (and "
                   "BRANDBOT_WECHAT_SECRET, BRANDBOT_WECHAT_VERIFIED=true) first; see "
                   "docs/channels/wechat.md"), 2)
        code = qrcode(settings, scene, permanent)
    except WeChatConfigError as exc:
        fail(str(exc), 2)
    except (WeChatAPIError, ValueError) as exc:
        fail(str(exc), 1)
    echo(code.url)
    echo(_("image: {url}").format(url=code.image_url))
    click.echo(_("permanent") if code.permanent else _("expires in {days} days").format(
        days=code.expire_seconds // 86400))


def _register_more() -> None:
    # Relationship marketing (issue 6) lives in bot/commands/; registered last so its commands
    # can reuse the helpers above.
    from bot.commands import register

    register(main, handoff)
    from bot.commands.doctor import doctor  # brandbot doctor: checks a deployment end to end

    main.add_command(doctor)
    from bot.commands.wechat_menu import menu as wechat_menu

    wechat.add_command(wechat_menu)
    i18n.localize_commands(main)  # help texts translate when shown, in the chosen language


_register_more()

if __name__ == "__main__":
    main()

"""``brandbot doctor``: check a deployment end to end and say what to fix, in the operator's words.

Operators do not read stack traces. Each check here ends in one line — ok, a warning, or a
failure with the fix named (which setting, which console page, which command) — in Chinese or
English (``--lang``, else the locale). Nothing is sent to anyone: Telegram is asked ``getMe`` and
``getWebhookInfo``, WeChat for an access_token, the public URL for ``/healthz``; the clock is
compared with the HTTP ``Date`` header of those answers. Secrets never appear in the output:
every line goes through the same masking filter the daemon's logs use.

Exit status: 0 when nothing failed (warnings allowed), 1 when something must be fixed, 2 when
the settings themselves are invalid (nothing else can be checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import click

from bot.i18n import N_, _, lang_option

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
TIMEOUT = 10.0
CLOCK_FAIL_SECONDS = 60  # WeChat push timestamps, TLS and logs need a clock within a minute
MIN_FREE_BYTES = 100 * 1024 * 1024
MIN_OPEN_FILES = 1024
WECHAT_CONSOLE = "mp.weixin.qq.com → 设置与开发 → 基本配置"


@dataclass(frozen=True)
class Finding:
    status: str
    what: str
    detail: str
    fix: str = ""


class Dates:
    """Clock offsets (server minus this machine, seconds) from the HTTP Date headers seen."""

    def __init__(self) -> None:
        self.offsets: list[tuple[str, float]] = []

    def record(self, source: str, header: str | None) -> None:
        if not header:
            return
        try:
            server = parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError):
            return
        # Date has whole seconds: compare with the middle of the second we are in.
        self.offsets.append((source, server + 0.5 - time.time()))


def _tag(status: str) -> str:
    return {
        OK: _("ok  "), WARN: _("WARN"), FAIL: _("FAIL"),
        SKIP: _("skip"),
    }[status]


# -- the checks -----------------------------------------------------------------------------------


def check_settings(config: str | None):
    from bot.config import SettingsError, config_path, load_settings

    what = _("settings")
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        return None, Finding(FAIL, what, "\n".join(exc.lines), _(
            "fix the lines above (docs/configuration.md)"))
    path = config_path(config)
    source = str(path) if path else _("defaults and BRANDBOT_* environment")
    return settings, Finding(OK, what, _("valid ({source})").format(source=source))


def check_database(db: str) -> list[Finding]:
    what = _("database")
    path = Path(db)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return [Finding(FAIL, what, _("the folder {folder} does not exist").format(folder=folder),
                        _("create it (mkdir -p {folder}) or set db: in brandbot.yaml").format(
                            folder=folder))]
    findings = []
    try:
        if path.exists():
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=2)
            try:
                conn.execute("BEGIN IMMEDIATE")  # takes the write lock, writes nothing
                conn.rollback()
            finally:
                conn.close()
            findings.append(Finding(OK, what, _("{path} is writable").format(path=path)))
        elif os.access(folder, os.W_OK):
            findings.append(Finding(OK, what, _(
                "{path} will be created on the first start ({folder} is writable)").format(
                path=path, folder=folder)))
        else:
            raise PermissionError(str(folder))
    except (sqlite3.Error, PermissionError) as exc:
        findings.append(Finding(FAIL, what, _("{path} is not writable ({exc})").format(
            path=path, exc=exc),
                                _(
                                    "give the brandbot user write access to {folder} and the "
                                    "file (chown brandbot …)").format(folder=folder)))
    free = shutil.disk_usage(folder).free
    mib = free // (1024 * 1024)
    if free < MIN_FREE_BYTES:
        findings.append(Finding(FAIL, _("disk space"),
                                _("only {mib} MiB free where the database lives").format(mib=mib),
                                _(
                                    "free some space (old logs, backups) or move db: to a "
                                    "bigger disk")))
    else:
        findings.append(Finding(OK, _("disk space"),
                                _("{mib} MiB free").format(mib=mib)))
    return findings


def check_personas(settings) -> list[Finding]:
    from bot.brand import check_paths
    from bot.errors import BrandbotError
    from bot.persona.loader import resolve_file

    findings = []
    for entry in settings.personas:
        what = _("persona {persona}").format(persona=entry.persona)
        try:
            file = resolve_file(entry.persona, "personas")
        except BrandbotError as exc:
            findings.append(Finding(FAIL, what, str(exc), _(
                "fix personas: in brandbot.yaml or add the file")))
            continue
        problems, _count = check_paths([file])
        if problems:
            shown = "\n".join(p.render() for p in problems[:5])
            more = len(problems) - 5
            if more > 0:
                shown += _("\n… and {more} more").format(more=more)
            findings.append(Finding(FAIL, what, shown, _(
                "fix the lines above; `brandbot check {file}` lists them all").format(file=file)))
        else:
            findings.append(Finding(OK, what, _("{file} is valid").format(file=file)))
    return findings


def check_telegram(settings, dates: Dates, timeout: float) -> list[Finding]:
    tg = settings.telegram
    what = "Telegram"
    if not tg.enabled:
        return [Finding(SKIP, what, _("no bot token (BRANDBOT_TELEGRAM_TOKEN): Telegram is off"))]
    return asyncio.run(_telegram(settings, dates, timeout))


async def _telegram(settings, dates: Dates, timeout: float) -> list[Finding]:
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError
    from telegram.request import HTTPXRequest

    from bot.channels.telegram import DEFAULT_API_URL

    tg = settings.telegram
    base = (tg.api_url or DEFAULT_API_URL).rstrip("/")

    async def on_response(response) -> None:
        dates.record("Telegram", response.headers.get("date"))

    request = HTTPXRequest(connect_timeout=timeout, read_timeout=timeout,
                           httpx_kwargs={"event_hooks": {"response": [on_response]}})
    bot = Bot(tg.token.get_secret_value(), base_url=base, request=request)
    findings: list[Finding] = []
    try:
        try:
            me = await bot.get_me()
        except InvalidToken:
            return [Finding(FAIL, "Telegram getMe", _("Telegram refused the bot token"), _(
                    "copy the token again from @BotFather (/mybots → API Token) into "
                    "BRANDBOT_TELEGRAM_TOKEN"))]
        except NetworkError as exc:
            return [Finding(FAIL, "Telegram getMe", _(
                "cannot reach the Bot API at {origin} ({message})").format(
                origin=_origin(base), message=exc.message), _(
                    "check this machine's network/proxy, or telegram.api_url"))]
        findings.append(Finding(OK, "Telegram getMe", f"@{me.username}"))
        if tg.bot_username and tg.bot_username.lstrip("@").lower() != (me.username or "").lower():
            findings.append(Finding(WARN, "telegram.bot_username", _(
                "is @{bot_username} but the token belongs to @{username}").format(
                bot_username=tg.bot_username.lstrip('@'), username=me.username), _(
                    "set telegram.bot_username to {username} (or remove it)").format(
                    username=me.username)))
        findings.append(_webhook_finding(await bot.get_webhook_info(), tg.webhook_url))
    except TelegramError as exc:
        findings.append(Finding(FAIL, "Telegram", _("the Bot API said: {message}").format(
            message=exc.message)))
    finally:
        await request.shutdown()
    return findings


def _webhook_finding(info, configured: str | None) -> Finding:
    what = _("Telegram webhook")
    if configured and info.url != configured:
        now_set = info.url or _("none")
        return Finding(WARN, what, _("Telegram has {now_set}, settings say {configured}").format(
            now_set=now_set, configured=configured),
                       _("`brandbot serve` sets it when it starts: (re)start the daemon"))
    if not configured and info.url:
        return Finding(WARN, what, _("a webhook is set ({url}) but the settings poll").format(
            url=info.url),
                       _(
                           "set telegram.webhook_url to it, or restart `brandbot serve`, "
                           "which polls and removes it"))
    if info.last_error_message:
        return Finding(FAIL, what, _(
            "Telegram cannot deliver to {url}: {last_error_message} ({pending_update_count} "
            "update(s) waiting)").format(
            url=info.url, last_error_message=info.last_error_message,
            pending_update_count=info.pending_update_count), _(
                "make the URL reachable over HTTPS with a valid certificate (docs/deploy.md)"))
    mode = info.url or _("long polling")
    return Finding(OK, what, _("{mode}; {pending_update_count} update(s) waiting").format(
        mode=mode, pending_update_count=info.pending_update_count))


# errcode: (what is wrong, the fix); {wechat_console} is filled in when shown.
_WECHAT_ERRORS: dict[int, tuple[str, str]] = {
    40125: (N_("the AppSecret is wrong"), N_(
        "copy 开发者密码 AppSecret again ({wechat_console}) into BRANDBOT_WECHAT_SECRET")),
    40001: (N_("the AppSecret is wrong"), N_(
        "copy 开发者密码 AppSecret again ({wechat_console}) into BRANDBOT_WECHAT_SECRET")),
    40013: (N_("the AppID is wrong"), N_(
        "copy 开发者ID AppID again ({wechat_console}) into BRANDBOT_WECHAT_APPID")),
    40243: (N_("the AppSecret is frozen"), N_("unfreeze or reset it in {wechat_console}")),
    89503: (N_("this IP needs an administrator's confirmation"),
            N_("the account administrator confirms it in the WeChat message they got")),
    -1: (N_("WeChat is busy"), N_("run `brandbot doctor` again in a minute")),
}


def check_wechat(settings, dates: Dates) -> list[Finding]:
    import requests

    from bot.channels.wechat_api import TokenOwner, WeChatAPIError

    wc = settings.wechat
    what = _("WeChat access_token")
    if not wc.app_id:
        return [Finding(SKIP, _("WeChat"), _(
            "no AppID (BRANDBOT_WECHAT_APPID): WeChat is off"))]
    if wc.app_secret is None or not wc.app_secret.get_secret_value():
        return [Finding(WARN, what, _(
            "no AppSecret: brandbot can answer fans only within 5 seconds of their message "
            "(no customer-service messages, newsletters or QR codes)"),
            _("set BRANDBOT_WECHAT_SECRET"))]
    owner = TokenOwner(wc.app_id, wc.app_secret.get_secret_value(), wc.api_url)
    owner.client._http.hooks["response"].append(
        lambda response, *args, **kwargs: dates.record("WeChat", response.headers.get("Date")))
    try:
        owner.refresh(None)
    except WeChatAPIError as exc:
        return [_wechat_error(what, exc)]
    except requests.RequestException as exc:
        return [Finding(FAIL, what, _("cannot reach the WeChat API at {origin} ({name})").format(
            origin=_origin(owner.api_url), name=type(exc).__name__),
            _("check this machine's network/proxy, or wechat.api_url"))]
    return [Finding(OK, what, _("fetched (AppID and AppSecret are right, this IP is allowed)"))]


def _wechat_error(what: str, exc) -> Finding:
    code = exc.errcode
    if code == 40164:
        found = re.search(r"invalid ip ([0-9A-Fa-f.:]+)", str(exc))
        ip = found.group(1) if found else _("this server's IP")
        return Finding(FAIL, what, _(
            "this server's IP {ip} is not on the account's IP whitelist (error 40164)"
        ).format(ip=ip), _(
            "add {ip} in {wechat_console} → IP白名单 (IP whitelist), then run doctor again"
        ).format(ip=ip, wechat_console=WECHAT_CONSOLE))
    if code in _WECHAT_ERRORS:
        problem, fix = _WECHAT_ERRORS[code]
        return Finding(FAIL, what, _("{problem} (error {code})").format(
            problem=_(problem), code=code), _(fix).format(wechat_console=WECHAT_CONSOLE))
    return Finding(FAIL, what, str(exc), _("see docs/channels/wechat.md for the error code"))


def check_public_url(settings, dates: Dates, timeout: float) -> list[Finding]:
    import requests

    what = _("public URL")
    url = settings.public_url
    if not url:
        return [Finding(WARN, what, _(
            "public_url is not set: campaign links and QR codes would point at 127.0.0.1"), _(
                "set public_url: https://your-domain/ in brandbot.yaml (or "
                "BRANDBOT_PUBLIC_URL)"))]
    health = url.rstrip("/") + "/healthz"
    try:
        response = requests.get(health, timeout=timeout)
    except requests.exceptions.SSLError:
        return [Finding(FAIL, what, _("{health}: the HTTPS certificate is not valid").format(
            health=health), _("renew or fix the certificate (certbot renew; docs/deploy.md)"))]
    except requests.RequestException as exc:
        return [Finding(FAIL, what, _(
            "{health} cannot be reached from this machine ({name})"
        ).format(health=health, name=type(exc).__name__), _(
            "is `brandbot serve` running, does the domain point at this server, does nginx "
            "forward to it? (docs/deploy.md)"))]
    dates.record("public URL", response.headers.get("Date"))
    if response.status_code != 200:
        return [Finding(FAIL, what, _("{health} answered HTTP {status_code}").format(
            health=health, status_code=response.status_code), _(
                                            "check that nginx forwards to `brandbot serve` "
                                            "(docs/deploy.md)"))]
    findings = [Finding(OK, what, _("{health} answers").format(health=health))]
    if not url.startswith("https://"):
        findings.append(Finding(WARN, what, _(
            "not HTTPS: Telegram webhooks need HTTPS, and browsers warn fans"), _(
                "put nginx with a certificate in front (docs/deploy.md)")))
    return findings


def check_clock(dates: Dates) -> list[Finding]:
    what = _("clock")
    if not dates.offsets:
        return [Finding(SKIP, what, _("no server answered with a date to compare with"))]
    source, offset = max(dates.offsets, key=lambda item: abs(item[1]))
    seconds = abs(round(offset))
    amount = f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
    amount_zh = f"{seconds // 60} 分 {seconds % 60} 秒" if seconds >= 60 else f"{seconds} 秒"
    if seconds < CLOCK_FAIL_SECONDS:
        return [Finding(OK, what, _("within {max} s of {source}").format(
            max=max(seconds, 1), source=source))]
    ahead = offset < 0
    off = (_("this machine's clock is {amount} ahead of {source}") if ahead
           else _("this machine's clock is {amount} behind {source}"))
    return [Finding(FAIL, what, off.format(amount=amount, source=source, amount_zh=amount_zh), _(
            "turn on time sync: sudo timedatectl set-ntp true (or install chrony)"))]


def check_file_limit() -> list[Finding]:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    what = _("open files limit")
    if soft != resource.RLIM_INFINITY and soft < MIN_OPEN_FILES:
        return [Finding(WARN, what, _("{soft}: too low for many fans at once").format(soft=soft), _(
                                            "set LimitNOFILE=65536 in the systemd unit "
                                            "(deploy/), or ulimit -n 65536"))]
    shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    return [Finding(OK, what, shown)]


def _origin(url: str) -> str:
    """Scheme and host only: a Bot API URL carries the token in its path."""
    match = re.match(r"^([a-z]+://[^/]+)", url)
    return match.group(1) if match else url


# -- the command ----------------------------------------------------------------------------------


def run_checks(config: str | None, timeout: float,
               emit: Callable[[Finding], None]) -> int:
    """Run every check, handing each finding to ``emit``; the exit status."""
    settings, finding = check_settings(config)
    emit(finding)
    if settings is None:
        return 2
    dates = Dates()
    findings: list[Finding] = []
    steps: list[Callable[[], list[Finding]]] = [
        lambda: check_database(settings.db),
        lambda: check_personas(settings),
        lambda: check_telegram(settings, dates, timeout),
        lambda: check_wechat(settings, dates),
        lambda: check_public_url(settings, dates, timeout),
        lambda: check_clock(dates),
        check_file_limit,
    ]
    for step in steps:
        for item in step():
            findings.append(item)
            emit(item)
    return 1 if any(f.status == FAIL for f in findings) else 0


@click.command()
@click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")
@lang_option(help="Language of the report (default: from LANG/LC_ALL; zh* is Chinese).")
@click.option("--timeout", type=float, default=TIMEOUT, show_default=True,
              help="Seconds to wait for each server.")
def doctor(config: str | None, lang: str | None, timeout: float) -> None:
    """Check a deployment end to end and say what to fix (sends nothing to anyone).

    Settings, database (writable, free space), personas, Telegram (getMe, webhook), WeChat
    (access_token: AppSecret, IP whitelist), the public URL, the clock, the open-files limit.
    检查部署是否正常（设置、数据库、人格、Telegram、微信、公网地址、时钟），并说明怎么修。
    Exit 0: all fine (warnings allowed); 1: something to fix; 2: invalid settings.

    Example: brandbot doctor --config /etc/brandbot/brandbot.yaml
    """
    from bot.redact import SecretFilter
    from bot.tables import terminal_safe

    masks: list[Any] = [SecretFilter()]

    def emit(finding: Finding) -> None:
        colon = _(": ")  # outside the f-string, where pybabel can see it
        lines = [f"[{_tag(finding.status)}] {finding.what}{colon}"
                 + finding.detail.replace("\n", "\n        ")]
        if finding.fix:
            lines.append("        " + _("fix: ") + finding.fix)
        for line in lines:  # details quote servers (error texts): never raw on the terminal
            click.echo(masks[0].redact(terminal_safe(line, keep_newlines=True)))

    from bot.config import SettingsError, load_settings

    with contextlib.suppress(SettingsError):
        masks[0].add(*load_settings(config).secrets())
    status = run_checks(config, timeout, emit)
    summary = {0: _("all checks passed"),
               1: _("something needs fixing (see the lines marked FAIL)"),
               2: _("the settings are invalid; fix them first")}
    click.echo(summary[status])
    raise SystemExit(status)

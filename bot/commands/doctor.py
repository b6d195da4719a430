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

from bot.errors import say

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
        OK: say("ok  ", "正常"), WARN: say("WARN", "注意"), FAIL: say("FAIL", "失败"),
        SKIP: say("skip", "跳过"),
    }[status]


# -- the checks -----------------------------------------------------------------------------------


def check_settings(config: str | None):
    from bot.config import SettingsError, config_path, load_settings

    what = say("settings", "设置")
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        return None, Finding(FAIL, what, "\n".join(exc.lines), say(
            "fix the lines above (docs/configuration.md)",
            "按上面各行修改（见 docs/configuration.md）"))
    path = config_path(config)
    source = str(path) if path else say("defaults and BRANDBOT_* environment",
                                         "默认值和 BRANDBOT_* 环境变量")
    return settings, Finding(OK, what, say(f"valid ({source})", f"有效（{source}）"))


def check_database(db: str) -> list[Finding]:
    what = say("database", "数据库")
    path = Path(db)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return [Finding(FAIL, what, say(f"the folder {folder} does not exist",
                                        f"文件夹 {folder} 不存在"),
                        say(f"create it (mkdir -p {folder}) or set db: in brandbot.yaml",
                            f"创建它（mkdir -p {folder}），或在 brandbot.yaml 里改 db:"))]
    findings = []
    try:
        if path.exists():
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=2)
            try:
                conn.execute("BEGIN IMMEDIATE")  # takes the write lock, writes nothing
                conn.rollback()
            finally:
                conn.close()
            findings.append(Finding(OK, what, say(f"{path} is writable", f"{path} 可写")))
        elif os.access(folder, os.W_OK):
            findings.append(Finding(OK, what, say(
                f"{path} will be created on the first start ({folder} is writable)",
                f"{path} 会在第一次启动时创建（{folder} 可写）")))
        else:
            raise PermissionError(str(folder))
    except (sqlite3.Error, PermissionError) as exc:
        findings.append(Finding(FAIL, what, say(f"{path} is not writable ({exc})",
                                                f"{path} 不可写（{exc}）"),
                                say(f"give the brandbot user write access to {folder} and the "
                                    "file (chown brandbot …)",
                                    f"让运行 brandbot 的用户能写 {folder} 和数据库文件"
                                    "（chown brandbot …）")))
    free = shutil.disk_usage(folder).free
    mib = free // (1024 * 1024)
    if free < MIN_FREE_BYTES:
        findings.append(Finding(FAIL, say("disk space", "磁盘空间"),
                                say(f"only {mib} MiB free where the database lives",
                                    f"数据库所在磁盘只剩 {mib} MiB"),
                                say("free some space (old logs, backups) or move db: to a "
                                    "bigger disk",
                                    "清理空间（旧日志、备份），或把 db: 移到更大的磁盘")))
    else:
        findings.append(Finding(OK, say("disk space", "磁盘空间"),
                                say(f"{mib} MiB free", f"剩余 {mib} MiB")))
    return findings


def check_personas(settings) -> list[Finding]:
    from bot.brand import check_paths
    from bot.errors import BrandbotError
    from bot.persona.loader import resolve_file

    findings = []
    for entry in settings.personas:
        what = say(f"persona {entry.persona}", f"人格 {entry.persona}")
        try:
            file = resolve_file(entry.persona, "personas")
        except BrandbotError as exc:
            findings.append(Finding(FAIL, what, str(exc), say(
                "fix personas: in brandbot.yaml or add the file",
                "改 brandbot.yaml 里的 personas:，或补上人格文件")))
            continue
        problems, _ = check_paths([file])
        if problems:
            shown = "\n".join(p.render() for p in problems[:5])
            more = len(problems) - 5
            if more > 0:
                shown += say(f"\n… and {more} more", f"\n……还有 {more} 个")
            findings.append(Finding(FAIL, what, shown, say(
                f"fix the lines above; `brandbot check {file}` lists them all",
                f"按上面各行修改；`brandbot check {file}` 会列出全部问题")))
        else:
            findings.append(Finding(OK, what, say(f"{file} is valid", f"{file} 有效")))
    return findings


def check_telegram(settings, dates: Dates, timeout: float) -> list[Finding]:
    tg = settings.telegram
    what = "Telegram"
    if not tg.enabled:
        return [Finding(SKIP, what, say("no bot token (BRANDBOT_TELEGRAM_TOKEN): Telegram is off",
                                        "没有设置机器人令牌（BRANDBOT_TELEGRAM_TOKEN）："
                                        "未启用 Telegram"))]
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
            return [Finding(FAIL, "Telegram getMe", say(
                "Telegram refused the bot token", "Telegram 拒绝了机器人令牌"), say(
                "copy the token again from @BotFather (/mybots → API Token) into "
                "BRANDBOT_TELEGRAM_TOKEN", "在 @BotFather（/mybots → API Token）重新复制令牌，填到 "
                "BRANDBOT_TELEGRAM_TOKEN"))]
        except NetworkError as exc:
            return [Finding(FAIL, "Telegram getMe", say(
                f"cannot reach the Bot API at {_origin(base)} ({exc.message})",
                f"连不上 Bot API {_origin(base)}（{exc.message}）"), say(
                "check this machine's network/proxy, or telegram.api_url",
                "检查本机网络或代理，或 telegram.api_url 设置"))]
        findings.append(Finding(OK, "Telegram getMe", f"@{me.username}"))
        if tg.bot_username and tg.bot_username.lstrip("@").lower() != (me.username or "").lower():
            findings.append(Finding(WARN, "telegram.bot_username", say(
                f"is @{tg.bot_username.lstrip('@')} but the token belongs to @{me.username}",
                f"写的是 @{tg.bot_username.lstrip('@')}，但令牌属于 @{me.username}"), say(
                f"set telegram.bot_username to {me.username} (or remove it)",
                f"把 telegram.bot_username 改成 {me.username}（或删掉）")))
        findings.append(_webhook_finding(await bot.get_webhook_info(), tg.webhook_url))
    except TelegramError as exc:
        findings.append(Finding(FAIL, "Telegram", say(f"the Bot API said: {exc.message}",
                                                      f"Bot API 返回：{exc.message}")))
    finally:
        await request.shutdown()
    return findings


def _webhook_finding(info, configured: str | None) -> Finding:
    what = say("Telegram webhook", "Telegram Webhook")
    if configured and info.url != configured:
        now_set = info.url or say("none", "无")
        return Finding(WARN, what, say(f"Telegram has {now_set}, settings say {configured}",
                                       f"Telegram 上登记的是 {now_set}，设置里是 {configured}"),
                       say("`brandbot serve` sets it when it starts: (re)start the daemon",
                           "`brandbot serve` 启动时会设置它：启动或重启服务"))
    if not configured and info.url:
        return Finding(WARN, what, say(f"a webhook is set ({info.url}) but the settings poll",
                                       f"Telegram 上登记了 Webhook（{info.url}），但设置是轮询"),
                       say("set telegram.webhook_url to it, or restart `brandbot serve`, which "
                           "polls and removes it", "把 telegram.webhook_url 设成它，或重启 "
                           "`brandbot serve`（轮询模式会删除它）"))
    if info.last_error_message:
        return Finding(FAIL, what, say(
            f"Telegram cannot deliver to {info.url}: {info.last_error_message} "
            f"({info.pending_update_count} update(s) waiting)",
            f"Telegram 无法投递到 {info.url}：{info.last_error_message}"
            f"（{info.pending_update_count} 条消息在等待）"), say(
            "make the URL reachable over HTTPS with a valid certificate (docs/deploy.md)",
            "确保该地址可通过 HTTPS 访问且证书有效（见 docs/deploy.md）"))
    mode = info.url or say("long polling", "长轮询")
    return Finding(OK, what, say(f"{mode}; {info.pending_update_count} update(s) waiting",
                                 f"{mode}；{info.pending_update_count} 条消息在等待"))


_WECHAT_ERRORS: dict[int, tuple[str, str, str, str]] = {
    40125: ("the AppSecret is wrong", "AppSecret 不对",
            f"copy 开发者密码 AppSecret again ({WECHAT_CONSOLE}) into BRANDBOT_WECHAT_SECRET",
            f"在 {WECHAT_CONSOLE} 重新复制「开发者密码 AppSecret」，填到 BRANDBOT_WECHAT_SECRET"),
    40001: ("the AppSecret is wrong", "AppSecret 不对",
            f"copy 开发者密码 AppSecret again ({WECHAT_CONSOLE}) into BRANDBOT_WECHAT_SECRET",
            f"在 {WECHAT_CONSOLE} 重新复制「开发者密码 AppSecret」，填到 BRANDBOT_WECHAT_SECRET"),
    40013: ("the AppID is wrong", "AppID 不对",
            f"copy 开发者ID AppID again ({WECHAT_CONSOLE}) into BRANDBOT_WECHAT_APPID",
            f"在 {WECHAT_CONSOLE} 重新复制「开发者ID AppID」，填到 BRANDBOT_WECHAT_APPID"),
    40243: ("the AppSecret is frozen", "AppSecret 已被冻结",
            f"unfreeze or reset it in {WECHAT_CONSOLE}", f"在 {WECHAT_CONSOLE} 解冻或重置"),
    89503: ("this IP needs an administrator's confirmation", "此 IP 调用需要管理员确认",
            "the account administrator confirms it in the WeChat message they got",
            "公众号管理员在微信里收到的提醒中确认"),
    -1: ("WeChat is busy", "微信系统繁忙", "run `brandbot doctor` again in a minute",
         "过一分钟再运行 `brandbot doctor`"),
}


def check_wechat(settings, dates: Dates) -> list[Finding]:
    import requests

    from bot.channels.wechat_api import TokenOwner, WeChatAPIError

    wc = settings.wechat
    what = say("WeChat access_token", "微信 access_token")
    if not wc.app_id:
        return [Finding(SKIP, say("WeChat", "微信"), say(
            "no AppID (BRANDBOT_WECHAT_APPID): WeChat is off",
            "没有设置 AppID（BRANDBOT_WECHAT_APPID）：未启用微信"))]
    if wc.app_secret is None or not wc.app_secret.get_secret_value():
        return [Finding(WARN, what, say(
            "no AppSecret: brandbot can answer fans only within 5 seconds of their message "
            "(no customer-service messages, newsletters or QR codes)",
            "没有 AppSecret：只能在粉丝发消息后 5 秒内被动回复（不能发客服消息、群发、二维码）"),
            say("set BRANDBOT_WECHAT_SECRET", "设置 BRANDBOT_WECHAT_SECRET"))]
    owner = TokenOwner(wc.app_id, wc.app_secret.get_secret_value(), wc.api_url)
    owner.client._http.hooks["response"].append(
        lambda response, *args, **kwargs: dates.record("WeChat", response.headers.get("Date")))
    try:
        owner.refresh(None)
    except WeChatAPIError as exc:
        return [_wechat_error(what, exc)]
    except requests.RequestException as exc:
        return [Finding(FAIL, what, say(
            f"cannot reach the WeChat API at {_origin(owner.api_url)} ({type(exc).__name__})",
            f"连不上微信接口 {_origin(owner.api_url)}（{type(exc).__name__}）"),
            say("check this machine's network/proxy, or wechat.api_url",
                "检查本机网络或代理，或 wechat.api_url 设置"))]
    return [Finding(OK, what, say("fetched (AppID and AppSecret are right, this IP is allowed)",
                                  "获取成功（AppID、AppSecret 正确，本机 IP 在白名单内）"))]


def _wechat_error(what: str, exc) -> Finding:
    code = exc.errcode
    if code == 40164:
        found = re.search(r"invalid ip ([0-9A-Fa-f.:]+)", str(exc))
        ip = found.group(1) if found else say("this server's IP", "本服务器的 IP")
        return Finding(FAIL, what, say(
            f"this server's IP {ip} is not on the account's IP whitelist (error 40164)",
            f"本服务器的 IP {ip} 不在公众号的 IP 白名单里（错误 40164）"), say(
            f"add {ip} in {WECHAT_CONSOLE} → IP白名单 (IP whitelist), then run doctor again",
            f"在 {WECHAT_CONSOLE} → IP白名单 里添加 {ip}，然后再运行 doctor"))
    if code in _WECHAT_ERRORS:
        en, zh, fix_en, fix_zh = _WECHAT_ERRORS[code]
        return Finding(FAIL, what, say(f"{en} (error {code})", f"{zh}（错误 {code}）"),
                       say(fix_en, fix_zh))
    return Finding(FAIL, what, str(exc), say(
        "see docs/channels/wechat.md for the error code", "错误码含义见 docs/channels/wechat.md"))


def check_public_url(settings, dates: Dates, timeout: float) -> list[Finding]:
    import requests

    what = say("public URL", "公网地址")
    url = settings.public_url
    if not url:
        return [Finding(WARN, what, say(
            "public_url is not set: campaign links and QR codes would point at 127.0.0.1",
            "没有设置 public_url：活动链接和二维码会指向 127.0.0.1"), say(
            "set public_url: https://your-domain/ in brandbot.yaml (or BRANDBOT_PUBLIC_URL)",
            "在 brandbot.yaml 里设置 public_url: https://你的域名/（或 BRANDBOT_PUBLIC_URL）"))]
    health = url.rstrip("/") + "/healthz"
    try:
        response = requests.get(health, timeout=timeout)
    except requests.exceptions.SSLError:
        return [Finding(FAIL, what, say(f"{health}: the HTTPS certificate is not valid",
                                        f"{health}：HTTPS 证书无效"), say(
            "renew or fix the certificate (certbot renew; docs/deploy.md)",
            "续期或修正证书（certbot renew；见 docs/deploy.md）"))]
    except requests.RequestException as exc:
        return [Finding(FAIL, what, say(f"{health} cannot be reached from this machine "
                                        f"({type(exc).__name__})",
                                        f"从本机访问不到 {health}（{type(exc).__name__}）"), say(
            "is `brandbot serve` running, does the domain point at this server, does nginx "
            "forward to it? (docs/deploy.md)",
            "`brandbot serve` 在运行吗？域名解析到本服务器了吗？nginx 转发到它了吗？"
            "（见 docs/deploy.md）"))]
    dates.record("public URL", response.headers.get("Date"))
    if response.status_code != 200:
        return [Finding(FAIL, what, say(f"{health} answered HTTP {response.status_code}",
                                        f"{health} 返回 HTTP {response.status_code}"), say(
            "check that nginx forwards to `brandbot serve` (docs/deploy.md)",
            "检查 nginx 是否转发到 `brandbot serve`（见 docs/deploy.md）"))]
    findings = [Finding(OK, what, say(f"{health} answers", f"{health} 可以访问"))]
    if not url.startswith("https://"):
        findings.append(Finding(WARN, what, say(
            "not HTTPS: Telegram webhooks need HTTPS, and browsers warn fans",
            "不是 HTTPS：Telegram Webhook 需要 HTTPS，浏览器也会提示不安全"), say(
            "put nginx with a certificate in front (docs/deploy.md)",
            "用 nginx 加证书放在前面（见 docs/deploy.md）")))
    return findings


def check_clock(dates: Dates) -> list[Finding]:
    what = say("clock", "时钟")
    if not dates.offsets:
        return [Finding(SKIP, what, say("no server answered with a date to compare with",
                                        "没有服务器返回时间，无法比较"))]
    source, offset = max(dates.offsets, key=lambda item: abs(item[1]))
    seconds = abs(round(offset))
    amount = f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
    amount_zh = f"{seconds // 60} 分 {seconds % 60} 秒" if seconds >= 60 else f"{seconds} 秒"
    if seconds < CLOCK_FAIL_SECONDS:
        return [Finding(OK, what, say(f"within {max(seconds, 1)} s of {source}",
                                      f"与 {source} 相差不到 {max(seconds, 1)} 秒"))]
    ahead = offset < 0
    return [Finding(FAIL, what, say(
        f"this machine's clock is {amount} {'ahead of' if ahead else 'behind'} {source}",
        f"本机时钟比 {source} {'快' if ahead else '慢'}了 {amount_zh}"), say(
        "turn on time sync: sudo timedatectl set-ntp true (or install chrony)",
        "打开自动对时：sudo timedatectl set-ntp true（或安装 chrony）"))]


def check_file_limit() -> list[Finding]:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    what = say("open files limit", "打开文件数上限")
    if soft != resource.RLIM_INFINITY and soft < MIN_OPEN_FILES:
        return [Finding(WARN, what, say(f"{soft}: too low for many fans at once",
                                        f"{soft}：同时在线的粉丝多时不够用"), say(
            "set LimitNOFILE=65536 in the systemd unit (deploy/), or ulimit -n 65536",
            "在 systemd 服务文件里设 LimitNOFILE=65536（见 deploy/），或 ulimit -n 65536"))]
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
@click.option("--lang", type=click.Choice(["zh", "en"]),
              help="Language of the report (default: from LANG/LC_ALL; zh* is Chinese).")
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
    from bot.errors import language, set_language
    from bot.redact import SecretFilter
    from bot.tables import terminal_safe

    previous = language()
    set_language(lang)
    masks: list[Any] = [SecretFilter()]

    def emit(finding: Finding) -> None:
        lines = [f"[{_tag(finding.status)}] {finding.what}{say(': ', '：')}"
                 + finding.detail.replace("\n", "\n        ")]
        if finding.fix:
            lines.append("        " + say("fix: ", "怎么修：") + finding.fix)
        for line in lines:  # details quote servers (error texts): never raw on the terminal
            click.echo(masks[0].redact(terminal_safe(line, keep_newlines=True)))

    try:
        from bot.config import SettingsError, load_settings

        with contextlib.suppress(SettingsError):
            masks[0].add(*load_settings(config).secrets())
        status = run_checks(config, timeout, emit)
        summary = {0: say("all checks passed", "全部检查通过"),
                   1: say("something needs fixing (see the lines marked FAIL)",
                          "有需要修复的问题（见标为「失败」的行）"),
                   2: say("the settings are invalid; fix them first", "设置无效，请先修正")}
        click.echo(summary[status])
    finally:
        set_language(previous)
    raise SystemExit(status)

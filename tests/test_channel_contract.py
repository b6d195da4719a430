"""The channel contract (bot/channels/contract.py) and its registry: every real channel keeps the
contract, and a new channel is added through the registry alone.

The new channel here is "loop": a small real adapter defined in this file, whose platform is a
list in this process (what docs/channels/adding-a-channel.md builds as a LINE adapter). It is
only ever :func:`registry.register`-ed; no other module is edited, yet the settings accept its
section and its environment name, the daemon builds it, serves its webhook over real HTTP and
prints its banner line, operator replies reach it, campaign links include it, and the broadcast
planner sends newsletters to it under its own reach rule.
"""

from __future__ import annotations

import ast
import asyncio
import hmac
import logging
import signal
from datetime import timedelta

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels import registry
from bot.channels.base import NotSent
from bot.channels.contract import (
    ChannelAdapter,
    ChannelConfigError,
    ChannelKind,
    ChannelServices,
    Reach,
    reply_texts,
)
from bot.config import SettingsError, load_settings
from bot.messages import FanRef, Inbound, Reply
from bot.relations import Store
from bot.relations.broadcast import channel_reasons, create, deliver, outlets_from_settings
from bot.relations.store import iso
from tests.conftest import ROOT, TINY, clear_brandbot_env
from tests.test_broadcast import NOW, PERSONA, add_fans, statuses

SECRET = "loop-secret-0123456789"
LOOP_WINDOW = "outside the loop's 1-hour window"

# The loop "platform": what it received from us, as (user, text).
PLATFORM: list[tuple[str, str]] = []


class LoopSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    secret: SecretStr | None = None
    path: str = "/loop/hook"


class LoopKind(ChannelKind):
    name = "loop"
    settings_model = LoopSettings
    env_aliases = {"BRANDBOT_LOOP_SECRET": "secret"}
    enable_hint = "set loop.enabled: true and BRANDBOT_LOOP_SECRET"
    one_persona = True
    mask_invalid_values = True
    reach = Reach(window=timedelta(hours=1), window_reason=LOOP_WINDOW)

    def enabled(self, section: LoopSettings) -> bool:
        return section.enabled

    def create(self, section: LoopSettings, personas: list[str], services: ChannelServices):
        secret = section.secret.get_secret_value() if section.secret else ""
        if len(secret) < 16:
            raise ChannelConfigError(["loop.secret: at least 16 characters; set "
                                      "BRANDBOT_LOOP_SECRET"])
        return LoopChannel(section, secret, personas[0], services)

    def outlet(self, section: LoopSettings, store, persona: str, *, rate=30.0):
        return LoopOutlet() if section.enabled else "loop is off: set loop.enabled: true"

    def campaign_link(self, code, targets):
        return f"loop://start?code={code}"


class LoopChannel:
    name = "loop"

    def __init__(self, section: LoopSettings, secret: str, persona: str,
                 services: ChannelServices):
        self.section, self.secret, self.persona, self.services = section, secret, persona, services
        self.running = False

    def routes(self) -> list:
        return [Route(self.section.path, self.hook, methods=["POST"])]

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    async def send(self, fan, replies, persona=None):
        if not self.running:
            return NotSent(len(replies), "the loop channel is not running")
        PLATFORM.extend((fan.external_id, text) for text in reply_texts(replies))
        return None

    def banner(self, url: str) -> str:
        return f"channel loop: on, POST {url.rstrip('/')}{self.section.path}"

    async def hook(self, request: Request) -> Response:
        given = request.headers.get("x-loop-secret", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return Response(status_code=403)
        body = await request.json()
        inbound = Inbound(FanRef("loop", body["user"]), text=body["text"],
                          platform_msg_id=body["id"])
        replies = await self.services.run_turn(inbound, self.persona)
        return JSONResponse({"replies": reply_texts(replies)})


class LoopOutlet:
    name = "loop"
    reach = LoopKind.reach

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def deliver(self, items):
        PLATFORM.extend((item.external_id, item.text) for item in items)
        return {item.delivery_id: ("sent", None) for item in items}


@pytest.fixture
def loop(monkeypatch):
    """The loop channel registered for one test (and gone afterwards)."""
    clear_brandbot_env(monkeypatch)
    registry.register(LoopKind())
    PLATFORM.clear()
    yield
    registry.unregister("loop")
    PLATFORM.clear()


# -- every real channel keeps the contract -------------------------------------------------------


def test_every_builtin_channel_declares_what_the_registry_needs():
    assert registry.names()[:3] == ["web", "telegram", "wechat"]
    off = {"web": {"enabled": False}}  # the web chat is on by default, the others off
    for kind in registry.BUILTIN:
        section = kind.settings_model(**off.get(kind.name, {}))
        assert kind.settings_model.model_config.get("extra") == "forbid", kind.name
        assert kind.enable_hint and not kind.enabled(section), kind.name
        for variable, key in kind.env_aliases.items():
            assert variable.startswith(f"BRANDBOT_{kind.name.upper()}_"), variable
            assert key in kind.settings_model.model_fields, variable
        assert isinstance(kind.outlet(section, None, PERSONA), str)  # off: why there is none
        assert kind.campaign_link("spring", {"web_url": "https://x.example/",
                                             "telegram_bot": "shop_bot"})
    secrets = {kind.name: set(kind.secret_fields()) for kind in registry.BUILTIN}
    assert secrets == {"web": {"cookie_secret", "api_key"},
                       "telegram": {"token", "webhook_secret"},
                       "wechat": {"app_secret", "token", "aes_key", "previous_aes_key"}}
    assert registry.get("telegram").reach.window is None  # any time
    wechat = registry.get("wechat").reach
    assert (wechat.window, wechat.quota) == (timedelta(hours=48), 5)


def test_every_builtin_channel_builds_an_adapter_that_keeps_the_contract(
        tiny_engine, fresh_db, tmp_path):
    async def run_turn(inbound, persona):
        return tiny_engine.handle(inbound, persona)

    async def deliver_(fan, persona, replies):
        return None

    services = ChannelServices(run_turn=run_turn, persona_info=lambda p: {"id": p},
                               store=fresh_db, engine=tiny_engine, deliver=deliver_,
                               write_fault=lambda: None, on_rejected=lambda status: None,
                               db=str(tmp_path / "brandbot.db"))
    sections = {
        "web": {},
        "telegram": {"token": "123:abc", "webhook_url": "https://x.example/telegram/webhook",
                     "webhook_secret": "s3cret", "operator_group_id": -100},
        "wechat": {"token": "wxtoken123", "app_id": "wx0123456789", "app_secret": "s" * 32,
                   "verified": True},
    }
    for kind in registry.BUILTIN:
        section = kind.settings_model(**sections[kind.name])
        assert kind.enabled(section), kind.name
        adapter = kind.create(section, ["tiny"], services)
        assert isinstance(adapter, ChannelAdapter), kind.name
        assert adapter.name == kind.name
        assert adapter.routes() and all(isinstance(r, Route) for r in adapter.routes())
        assert adapter.banner("http://127.0.0.1:8080/").startswith(f"channel {kind.name}: on")
        outlet = kind.outlet(section, fresh_db, "tiny")
        assert not isinstance(outlet, str), kind.name
        assert outlet.name == kind.name and outlet.reach == kind.reach
    # The desk comes with the Telegram adapter that has an operator group.
    telegram = registry.get("telegram").create(
        registry.get("telegram").settings_model(**sections["telegram"]), ["tiny"], services)
    assert telegram.operator_desk is not None and telegram.desk is not None


def test_a_channel_that_cannot_work_says_which_setting_to_fix(tiny_engine, fresh_db, tmp_path):
    services = ChannelServices(run_turn=None, persona_info=dict, store=fresh_db,
                               engine=tiny_engine, deliver=None, write_fault=lambda: None,
                               on_rejected=lambda status: None, db=str(tmp_path / "b.db"))
    telegram, wechat = registry.get("telegram"), registry.get("wechat")
    with pytest.raises(ChannelConfigError) as exc:
        telegram.create(telegram.settings_model(token="no-colon"), ["tiny"], services)
    assert exc.value.lines[0].startswith("telegram: telegram token is missing or malformed")
    with pytest.raises(ChannelConfigError) as exc:
        wechat.create(wechat.settings_model(token="t!", app_id="wx1"), ["tiny"], services)
    assert exc.value.lines[0].startswith("wechat: wechat token")


def test_the_relationship_log_never_imports_channel_code():
    """bot/relations sits below the channels: outlets and reach rules come in as objects
    (through Settings.channel_sections), never by importing bot.channels (an import cycle)."""
    offenders = []
    for path in sorted((ROOT / "bot" / "relations").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n == "bot.channels" or n.startswith("bot.channels.")]
    assert offenders == []


# -- a new channel through the registry only ------------------------------------------------------


def test_an_unregistered_channels_section_is_refused(tmp_path, monkeypatch):
    clear_brandbot_env(monkeypatch)
    config = tmp_path / "brandbot.yaml"
    config.write_text("loop:\n  enabled: true\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="unknown key 'loop'"):
        load_settings(str(config))


def test_settings_accept_a_registered_channels_section(loop, tmp_path, monkeypatch):
    config = tmp_path / "brandbot.yaml"
    config.write_text("loop:\n  enabled: true\npersonas: [{persona: tiny, channels: [loop]}]\n",
                      encoding="utf-8")
    monkeypatch.setenv("BRANDBOT_LOOP_SECRET", SECRET)
    settings = load_settings(str(config))
    assert settings.loop.enabled and settings.loop.secret.get_secret_value() == SECRET
    assert settings.channel_enabled("loop") and SECRET in settings.secrets()
    assert SECRET not in repr(settings)
    assert "loop" in load_settings(None).personas[0].channels  # every channel by default
    config.write_text("loop:\n  enabeld: true\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"loop.enabeld: unknown key 'enabeld'.*'enabled'"):
        load_settings(str(config))
    config.write_text(f"loop:\n  enabled: {SECRET}\n", encoding="utf-8")
    with pytest.raises(SettingsError) as exc:  # a pasted secret is never echoed
        load_settings(str(config))
    assert SECRET not in str(exc.value) and "loop.enabled" in str(exc.value)


def _daemon(tmp_path, monkeypatch, **env: str):
    from bot.daemon import Daemon

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BRANDBOT_RELOAD", "false")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(None, personas=[str(TINY)], db=str(tmp_path / "d.db"), port=0)
    daemon = Daemon(settings)
    daemon.open()
    return daemon


def test_the_daemon_builds_serves_and_announces_a_registered_channel(loop, tmp_path,
                                                                      monkeypatch, caplog):
    daemon = _daemon(tmp_path, monkeypatch, BRANDBOT_LOOP__ENABLED="true",
                     BRANDBOT_LOOP_SECRET=SECRET)

    async def scenario() -> tuple[int, dict, int]:
        running = asyncio.create_task(daemon.run())
        for _ in range(2000):  # until the banner is out (or the daemon failed)
            if daemon.ready_after is not None or running.done():
                break
            await asyncio.sleep(0.01)
        assert daemon.ready_after is not None, "the daemon did not start"
        async with httpx.AsyncClient(base_url=daemon.url, timeout=10) as http:
            answer = await http.post("loop/hook", headers={"X-Loop-Secret": SECRET},
                                     json={"user": "u1", "text": "你好", "id": "m1"})
            forged = await http.post("loop/hook", headers={"X-Loop-Secret": "wrong"},
                                     json={"user": "u2", "text": "你好", "id": "m2"})
        # An operator's reply (the daemon's deliver) goes out through the loop adapter.
        assert await daemon.deliver(FanRef("loop", "u1"), "tiny",
                                    [Reply("an operator here", "operator")]) is None
        daemon.request_stop(signal.SIGTERM)
        return await running, answer.json(), forged.status_code

    with caplog.at_level(logging.INFO, logger="brandbot.daemon"):
        code, answer, forged = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert code == 0 and forged == 403
    assert answer["replies"] and all(isinstance(t, str) and t for t in answer["replies"])
    assert ("u1", "an operator here") in PLATFORM
    assert "channel loop: on, POST http://127.0.0.1:" in caplog.text
    store = Store(tmp_path / "d.db")
    try:
        fans = store.fetch_all("SELECT channel, external_id FROM fans")
        assert [tuple(f) for f in fans] == [("loop", "u1")]  # the forged push made no fan
    finally:
        store.close()


def _banner_of(daemon, caplog) -> None:
    """Build the daemon's app and log its banner into ``caplog``; close the daemon."""
    try:
        daemon._build_app()
        daemon.url, daemon.ready_after = "http://127.0.0.1:1/", 0.0
        with caplog.at_level(logging.INFO, logger="brandbot.daemon"):
            daemon._banner()
    finally:
        daemon.close()


def test_the_banner_says_how_to_enable_a_registered_channel_that_is_off(loop, tmp_path,
                                                                        monkeypatch, caplog):
    daemon = _daemon(tmp_path, monkeypatch)
    _banner_of(daemon, caplog)
    assert "loop" not in daemon.channels
    assert ("channel loop: off; to enable, set loop.enabled: true and BRANDBOT_LOOP_SECRET"
            in caplog.text)


def test_a_configured_channel_no_persona_answers_on_is_named_in_the_banner(
        tmp_path, monkeypatch, caplog):
    clear_brandbot_env(monkeypatch)
    config = tmp_path / "brandbot.yaml"
    config.write_text(f"personas: [{{persona: {TINY}, channels: [web]}}]\nreload: false\n"
                      f"db: {tmp_path / 'd.db'}\n", encoding="utf-8")
    monkeypatch.setenv("BRANDBOT_TELEGRAM_TOKEN", "123:abc")
    from bot.daemon import Daemon

    daemon = Daemon(load_settings(str(config)))
    daemon.open()
    _banner_of(daemon, caplog)
    assert ("channel telegram: configured, but no persona answers on it (add it to a "
            "persona's channels); not started") in caplog.text
    assert "adapter yet" not in caplog.text


def test_the_broadcast_planner_delivers_to_a_registered_channel_under_its_reach(
        loop, fresh_db, demo_brand, monkeypatch):
    monkeypatch.setenv("BRANDBOT_LOOP__ENABLED", "true")
    settings = load_settings(None)
    add_fans(fresh_db, 3, channel="loop", start=1)
    ids = {r[1]: r[0] for r in fresh_db.conn.execute("SELECT id, external_id FROM fans")}
    with fresh_db.transaction() as conn:  # 1 wrote 10 minutes ago, 2 two hours ago, 3 never
        for ext, ago in (("1", timedelta(minutes=10)), ("2", timedelta(hours=2))):
            conn.execute("INSERT INTO messages (fan_id, direction, text, created_at, kind) "
                         "VALUES (?, 'in', 'hi', ?, 'message')", (ids[ext], iso(NOW - ago)))
    outlets, missing = outlets_from_settings(settings, fresh_db, PERSONA)
    assert isinstance(outlets["loop"], LoopOutlet) and "loop" not in missing
    broadcast_id, plan = create(fresh_db, demo_brand.persona, "周末有新菜", "channel:loop", NOW,
                                channel_reasons(outlets, missing))
    assert plan.recipients == 1 and plan.reasons == {LOOP_WINDOW: 2}
    final = asyncio.run(deliver(fresh_db, broadcast_id, demo_brand.persona,
                                {"loop": outlets["loop"]}, clock=lambda: NOW))
    assert final == statuses(fresh_db, broadcast_id) == {"sent": 1, "skipped": 2}
    assert [user for user, _ in PLATFORM] == ["1"]
    assert PLATFORM[0][1].startswith("周末有新菜")


def test_campaign_links_include_a_registered_channel(loop):
    links = registry.campaign_links("spring", web_url="https://chat.example/")
    assert links["loop"] == "loop://start?code=spring"
    assert links["web"] == "https://chat.example/?ref=spring"
    assert list(links)[:3] == ["web", "telegram", "wechat"]

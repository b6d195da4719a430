"""Outbound WeChat calls against the fake WeChat API over real HTTP: the token owner's
single-flight refresh and bounded retry, the customer-service quota, QR codes, and secrets kept
out of the logs."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from bot.channels.wechat import WeChatChannelSettings, WeChatConfigError, plain, qrcode
from bot.channels.wechat_api import Quota, TokenOwner, WeChatAPIError, send_texts
from bot.messages import FanRef, Reply
from tests.fakes.wechat_api import AES_KEY, APP_ID, APP_SECRET, TOKEN, FakeWeChat
from tests.test_wechat import OPENID, channel, run, slow, until


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake():
    with FakeWeChat() as server:
        yield server


def owner_for(fake: FakeWeChat) -> TokenOwner:
    return TokenOwner(APP_ID, APP_SECRET, fake.api_url)


def open_quota(openid: str = OPENID) -> Quota:
    quota = Quota()
    quota.opened_by(openid, "message")
    return quota


# -- the token owner -----------------------------------------------------------------------------


def test_a_token_is_fetched_once_and_reused(fake):
    owner = owner_for(fake)
    quota = open_quota()
    assert send_texts(owner, quota, OPENID, ["one", "two", "three"]).sent == 3
    assert fake.count("token") == 1
    tokens = {c.query["access_token"] for c in fake.sent()}
    assert len(tokens) == 1


@pytest.mark.parametrize("code", [40001, 42001])
def test_a_rejected_token_is_refreshed_once_by_one_thread_for_all(fake, code):
    owner = owner_for(fake)
    owner.token()
    fake.expire_tokens(code)
    barrier = threading.Barrier(8)
    results = []

    def send(i: int) -> None:
        quota = open_quota(f"oFan{i}")
        barrier.wait()
        results.append(send_texts(owner, quota, f"oFan{i}", [f"hello {i}"]))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [r.sent for r in results] == [1] * 8
    assert fake.count("token") == 2  # the first fetch and exactly one refresh
    assert len(fake.sent()) == 8


def test_a_token_error_that_persists_is_retried_once_then_reported(fake, caplog):
    owner = owner_for(fake)
    fake.fail("message/custom/send", 40001, times=None)
    with caplog.at_level(logging.WARNING):
        result = send_texts(owner, open_quota(), OPENID, ["a", "b"])
    assert result.sent == 0 and result.skipped == 2 and "40001" in result.reason
    # wechatpy's own auto-retry would recurse (hundreds of token fetches); ours stops here.
    assert fake.count("token") == 2
    assert fake.count("message/custom/send") == 2


def test_a_refused_appsecret_says_what_to_check(fake):
    owner = TokenOwner(APP_ID, "wrong-secret-0000", fake.api_url)
    with pytest.raises(WeChatAPIError) as err:
        owner.token()
    assert err.value.errcode == 40125 and "AppSecret" in str(err.value)
    assert "wrong-secret-0000" not in str(err.value)


# -- quota ---------------------------------------------------------------------------------------


def test_a_fans_message_allows_five_sends_in_48_hours():
    clock = Clock()
    quota = Quota(clock)
    assert quota.take(OPENID) is not None  # never wrote: no window
    quota.opened_by(OPENID, "message")
    assert [quota.take(OPENID) for _ in range(5)] == [None] * 5
    assert "quota" in quota.take(OPENID)
    quota.opened_by(OPENID, "message")  # the next message opens a new window
    assert quota.left(OPENID) == 5
    clock.now += 48 * 3600 + 1
    assert "window" in quota.take(OPENID)


def test_follow_scan_and_click_allow_three_sends_within_a_minute():
    clock = Clock()
    quota = Quota(clock)
    quota.opened_by(OPENID, "event")
    assert quota.left(OPENID) == 3
    clock.now += 61
    assert quota.left(OPENID) == 0
    # A click does not shorten an open 48 h window with more sends left.
    quota.opened_by(OPENID, "message")
    quota.opened_by(OPENID, "event")
    assert quota.left(OPENID) == 5


@pytest.mark.parametrize("code", [45015, 45047])
def test_wechat_quota_errors_are_logged_and_not_retried(fake, caplog, code):
    owner = owner_for(fake)
    quota = open_quota()
    fake.fail("message/custom/send", code, times=1)
    with caplog.at_level(logging.WARNING):
        result = send_texts(owner, quota, OPENID, ["a", "b", "c"])
        later = send_texts(owner, quota, OPENID, ["d"])
    assert (result.sent, result.skipped) == (0, 3) and str(code) in result.reason
    assert later.sent == 0 and "window" in later.reason  # the window is closed: not attempted
    assert fake.count("message/custom/send") == 1
    assert fake.count("token") == 1
    assert any(str(code) in r.getMessage() for r in caplog.records)


def test_sends_over_the_quota_are_not_attempted(fake):
    owner = owner_for(fake)
    quota = open_quota()
    result = send_texts(owner, quota, OPENID, [str(i) for i in range(7)])
    assert (result.sent, result.skipped) == (5, 2)
    assert fake.count("message/custom/send") == 5


# -- through the channel -------------------------------------------------------------------------


def test_a_slow_turn_refreshes_an_expired_token_once_and_delivers(tiny_engine, fake):
    async def scenario():
        release = asyncio.Event()
        async with channel(slow(tiny_engine, release), fake=fake, verified=True,
                           reply_budget=0.05) as h:
            await asyncio.to_thread(h.channel.owner.token)
            fake.expire_tokens(42001)
            r = await h.text("几点开门", 9001)
            assert r.content == b""
            release.set()
            await until(lambda: fake.sent())
    run(scenario())
    assert fake.count("token") == 2 and len(fake.sent()) == 1


def test_proactive_send_uses_the_fans_open_window_only(tiny_engine, fake):
    async def scenario():
        async with channel(tiny_engine, fake=fake, verified=True) as h:
            fan = FanRef("wechat", OPENID)
            none_yet = await h.channel.send(fan, [Reply("news")])
            await h.text("几点开门", 9101)
            sent = await h.channel.send(fan, [Reply("news one"), Reply("news two")])
            return none_yet, sent
    none_yet, sent = run(scenario())
    assert none_yet.skipped == 1 and "window" in none_yet.reason
    assert sent is None  # all sent
    assert [c.body["text"]["content"] for c in fake.sent()] == ["news one", "news two"]


def test_proactive_send_on_an_unverified_account_is_skipped(tiny_engine, fake):
    async def scenario():
        async with channel(tiny_engine, fake=fake) as h:
            return await h.channel.send(FanRef("wechat", OPENID), [Reply("news")])
    result = run(scenario())
    assert result.skipped == 1 and "not verified" in result.reason and fake.calls == []


# -- QR codes ------------------------------------------------------------------------------------


def settings(fake: FakeWeChat, **extra) -> WeChatChannelSettings:
    return WeChatChannelSettings(token=TOKEN, app_id=APP_ID, app_secret=APP_SECRET,
                                 api_url=fake.api_url, **extra)


def test_qrcode_creates_temporary_and_permanent_scene_codes(fake):
    temp = qrcode(settings(fake, verified=True), "spring26")
    perm = qrcode(settings(fake, verified=True), "store-7", permanent=True)
    bodies = [c.body for c in fake.sent("qrcode/create")]
    assert bodies[0] == {"action_name": "QR_STR_SCENE", "expire_seconds": 2592000,
                         "action_info": {"scene": {"scene_str": "spring26"}}}
    assert bodies[1] == {"action_name": "QR_LIMIT_STR_SCENE",
                         "action_info": {"scene": {"scene_str": "store-7"}}}
    assert temp.url.endswith("spring26") and temp.expire_seconds == 2592000
    assert perm.expire_seconds is None
    assert perm.image_url.startswith("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=")
    assert "%3D%3D" in perm.image_url  # the ticket is URL-quoted


def test_qrcode_explains_48001_and_unverified_accounts(fake):
    fake.fail("qrcode/create", 48001)
    with pytest.raises(WeChatAPIError) as err:
        qrcode(settings(fake, verified=True), "spring26")
    assert "verified service account" in str(err.value)
    with pytest.raises(WeChatConfigError, match="VERIFIED"):
        qrcode(settings(fake), "spring26")
    with pytest.raises(ValueError, match="1-64"):
        qrcode(settings(fake, verified=True), "x" * 65)


# -- secrets -------------------------------------------------------------------------------------


def test_access_token_and_appsecret_never_appear_in_logs(tiny_engine, fake, caplog):
    """DEBUG logging of everything: urllib3 logs request URLs (token, secret) at DEBUG."""
    async def scenario():
        release = asyncio.Event()  # each turn outlasts the budget: its replies go late
        async with channel(slow(tiny_engine, release), fake=fake, verified=True, aes_key=AES_KEY,
                           reply_budget=0.05) as h:
            fake.fail("message/custom/send", 40001, times=1)
            await h.text("几点开门", 9201)
            release.set()
            await until(lambda: fake.sent())
            release.clear()
            fake.fail("message/custom/send", 45047, times=1)
            await h.text("有停车位吗", 9202)
            release.set()
            await until(lambda: fake.count("message/custom/send") >= 3)
        # Leaving the block stops the channel, which finishes (and logs) the sends in flight.
        return repr(h.channel), repr(h.channel.settings)

    with caplog.at_level(logging.DEBUG):
        reprs = run(scenario())
        with pytest.raises(WeChatAPIError):
            TokenOwner(APP_ID, APP_SECRET, fake.api_url + "missing/").token()
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "access_token=***" in logged or "secret=***" in logged  # urllib3 did log the URLs
    tokens = list(fake.tokens)
    assert len(tokens) >= 2
    for secret in [APP_SECRET, TOKEN, AES_KEY, *tokens]:
        assert secret not in logged
        for text in reprs:
            assert secret not in text


def test_settings_from_the_environment():
    env = {"BRANDBOT_WECHAT_TOKEN": TOKEN, "BRANDBOT_WECHAT_APPID": APP_ID,
           "BRANDBOT_WECHAT_SECRET": APP_SECRET, "BRANDBOT_WECHAT_AES_KEY": AES_KEY,
           "BRANDBOT_WECHAT_API_URL": "http://127.0.0.1:9/cgi-bin/",
           "BRANDBOT_WECHAT_VERIFIED": "true"}
    s = WeChatChannelSettings.from_env(env)
    assert (s.encryption, s.path, s.verified, s.reply_budget) == ("safe", "/wechat", True, 4.0)
    assert s.api_url == "http://127.0.0.1:9/cgi-bin/"
    assert WeChatChannelSettings.from_env({}) is None
    plain = WeChatChannelSettings.from_env({"BRANDBOT_WECHAT_TOKEN": TOKEN,
                                            "BRANDBOT_WECHAT_APPID": APP_ID})
    assert plain.encryption == "plain" and plain.app_secret is None
    for bad, match in (
        ({"BRANDBOT_WECHAT_AES_KEY": "short"}, "43 letters"),
        ({"BRANDBOT_WECHAT_TOKEN": "a b"}, "TOKEN"),
        ({"BRANDBOT_WECHAT_ENCRYPTION": "safe", "BRANDBOT_WECHAT_AES_KEY": ""}, "AES_KEY"),
        ({"BRANDBOT_WECHAT_REPLY_BUDGET": "5"}, "below 5"),
        ({"BRANDBOT_WECHAT_VERIFIED": "yes", "BRANDBOT_WECHAT_SECRET": ""}, "SECRET"),
    ):
        with pytest.raises(ValueError, match=match):
            WeChatChannelSettings.from_env({**env, **bad})
    assert "0123456789abcdef" not in repr(s) and AES_KEY not in repr(s)


def test_settings_from_the_daemons_wechat_section_and_environment():
    from bot.config import WeChatSettings

    section = WeChatSettings(app_id=APP_ID, app_secret=APP_SECRET, token=TOKEN, aes_key=AES_KEY)
    s = WeChatChannelSettings.from_section(section, environ={})
    secrets = tuple(map(plain, (s.app_secret, s.token, s.aes_key)))  # SecretStr, as in config
    assert (s.app_id, *secrets) == (APP_ID, APP_SECRET, TOKEN, AES_KEY)
    assert s.encryption == "safe" and not s.verified
    s = WeChatChannelSettings.from_section(section, environ={
        "BRANDBOT_WECHAT_VERIFIED": "true", "BRANDBOT_WECHAT_PATH": "/wx/brand"})
    assert s.verified and s.path == "/wx/brand" and plain(s.aes_key) == AES_KEY
    assert WeChatChannelSettings.from_section(WeChatSettings(), environ={}) is None
    assert WeChatChannelSettings.from_section(None, environ={
        "BRANDBOT_WECHAT_TOKEN": TOKEN, "BRANDBOT_WECHAT_APPID": APP_ID}).encryption == "plain"

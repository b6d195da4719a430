"""`brandbot wechat menu push | show | delete`: the custom menu from YAML, against the fake WeChat
API over real HTTP. A menu over WeChat's limits is refused with every problem and its fix, and
nothing reaches WeChat; the AppSecret and access_token appear in no output."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from bot.channels.wechat_menu import MenuError, load_menu
from bot.cli import main
from bot.commands.common import load_persona
from tests.conftest import ROOT, clear_brandbot_env
from tests.fakes.wechat_api import APP_ID, APP_SECRET, TOKEN, FakeWeChat

EXAMPLE = ROOT / "deploy" / "wechat-menu.yaml"


@pytest.fixture
def fake(monkeypatch, tmp_path):
    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    with FakeWeChat() as server:
        for name, value in (("TOKEN", TOKEN), ("APPID", APP_ID), ("SECRET", APP_SECRET),
                            ("API_URL", server.api_url)):
            monkeypatch.setenv(f"BRANDBOT_WECHAT_{name}", value)
        yield server


def cli(*args: str):
    result = CliRunner().invoke(main, ["wechat", "menu", *args])
    assert APP_SECRET not in result.output and "FAKE-ACCESS-TOKEN" not in result.output
    return result


def write(tmp_path, data) -> str:
    path = tmp_path / "menu.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def test_the_example_menu_is_pushed_shown_and_deleted(fake, tmp_path):
    out = cli("push", str(EXAMPLE))
    assert out.exit_code == 0, out.output
    assert "menu updated: 3 button(s), 10 sub-button(s)" in out.output
    [call] = fake.sent("menu/create")
    assert [b["name"] for b in call.body["button"]] == ["点菜", "优惠活动", "找老王"]
    assert "persona" not in call.body  # only what WeChat takes

    shown = cli("show")
    assert shown.exit_code == 0, shown.output
    assert yaml.safe_load(shown.output)["button"] == call.body["button"]
    # What show prints can be pushed back as it is.
    again = cli("push", write(tmp_path, {"persona": "laowang-kitchen",
                                         **yaml.safe_load(shown.output)}))
    assert again.exit_code == 0, again.output

    out = cli("delete", "--yes", "--lang", "zh")
    assert out.exit_code == 0 and "菜单已删除" in out.output
    assert fake.menu is None
    shown = cli("show", "--lang", "zh")
    assert shown.exit_code == 0 and "没有自定义菜单" in shown.output


def test_a_menu_over_wechats_limits_is_refused_with_fixes_and_nothing_is_sent(fake, tmp_path):
    leaf = {"name": "营业时间", "type": "click", "key": "MENU_HOURS"}
    menu = {"persona": "laowang-kitchen", "button": [
        {"name": "这个一级菜单名字太长了", "type": "click", "key": "MENU_DEALS"},  # 33 bytes
        {"name": "更多", "sub_button": [dict(leaf) for _ in range(6)]},
        {"name": "官网", "type": "view", "url": "ftp://example.com"},
        {"name": "第四个", "type": "click", "key": "MENU_HOURS"},
    ]}
    out = cli("push", write(tmp_path, menu))
    assert out.exit_code == 1
    text = out.output
    assert "at most 3 top-level buttons, this menu has 4" in text
    assert "button[0].name" in text and "33 bytes" in text and "at most 16 bytes" in text
    assert "button[1].sub_button" in text and "at most 5 sub-buttons" in text
    assert "button[2].url" in text and "http://" in text
    assert "nothing was sent" in text
    assert fake.count("menu/create") == 0 and fake.count("token") == 0

    zh = CliRunner().invoke(main, ["wechat", "menu", "push", write(tmp_path, menu),
                                   "--lang", "zh"])
    assert "一级菜单最多 3 个" in zh.output and "未发送任何内容" in zh.output


@pytest.mark.parametrize(("button", "expected"), [
    ({"name": "按钮", "type": "click"}, "a click button needs key"),
    ({"name": "按钮", "type": "click", "key": "K" * 129}, "key is at most 128 bytes"),
    ({"name": "按钮", "type": "view", "url": "https://x/" + "a" * 1020}, "url is at most 1024"),
    ({"name": "按钮", "type": "clik", "key": "MENU_HOURS"}, "type must be one of"),
    ({"name": "按钮", "type": "click", "key": "MENU_HOURS", "colour": "red"},
     "unknown button field 'colour'"),
    ({"name": "", "type": "click", "key": "MENU_HOURS"}, "needs a name"),
    ({"name": "菜单", "sub_button": [{"name": "子" * 21, "type": "click", "key": "MENU_HOURS"}]},
     "at most 60 bytes"),
    ({"name": "菜单", "sub_button": [{"name": "x", "sub_button": []}]},
     "cannot have sub-buttons"),
    ({"name": "按钮", "type": "miniprogram", "url": "https://x/", "appid": "wx1"},
     "needs pagepath"),
])
def test_each_limit_is_checked_before_sending(tmp_path, button, expected):
    with pytest.raises(MenuError) as caught:
        load_menu(write(tmp_path, {"button": [button]}))
    assert any(expected in p.en for p in caught.value.problems), caught.value


def test_click_keys_must_be_in_the_personas_menu_clicks(fake, tmp_path):
    persona = load_persona("laowang-kitchen")
    menu = write(tmp_path, {"button": [{"name": "特价", "type": "click", "key": "MENU_NOPE"}]})
    with pytest.raises(MenuError, match="MENU_NOPE.*not in persona laowang-kitchen's menu_clicks"):
        load_menu(menu, persona)
    broken = persona.model_copy(update={"menu_clicks": {"MENU_NOPE": "no_such_intent"}})
    with pytest.raises(MenuError, match="neither an intent nor a reply key"):
        load_menu(menu, broken)
    out = cli("push", menu, "-p", "laowang-kitchen")
    assert out.exit_code == 1 and "add `MENU_NOPE: <intent>`" in out.output
    assert fake.count("menu/create") == 0
    # view buttons carry no key: nothing to check.
    assert load_menu(write(tmp_path, {"button": [
        {"name": "官网", "type": "view", "url": "https://example.com/"}]}), persona)


def test_bad_yaml_and_missing_credentials_are_clear(fake, tmp_path, monkeypatch):
    path = tmp_path / "menu.yaml"
    path.write_text("button:\n  - name: [unclosed\n", encoding="utf-8")
    out = cli("push", str(path), "-p", "laowang-kitchen")
    assert out.exit_code == 1 and "menu.yaml:" in out.output and "YAML" in out.output
    monkeypatch.delenv("BRANDBOT_WECHAT_SECRET")
    out = cli("show", "--lang", "zh")
    assert out.exit_code == 2
    assert "BRANDBOT_WECHAT_SECRET" in out.output and "请先设置" in out.output


def test_an_account_without_menu_rights_gets_the_reason(fake):
    fake.fail("menu/create", 48001)
    out = cli("push", str(EXAMPLE))
    assert out.exit_code == 1
    assert "48001" in out.output and "verified" in out.output

"""The WeChat custom menu (自定义菜单): a YAML file, checked against WeChat's limits, then pushed.

The file uses WeChat's own shape (``button`` / ``sub_button``, the fields WeChat documents), so
what operators read in the 公众平台 documentation is what they write::

    persona: laowang-kitchen          # optional: whose menu_clicks the click keys are checked in
    button:
      - name: 今日特价
        type: click
        key: MENU_DEALS
      - name: 更多
        sub_button:
          - {name: 营业时间, type: click, key: MENU_HOURS}
          - {name: 官网, type: view, url: "https://example.com/"}

Everything WeChat would refuse is found here first, all at once, each with the line and the
fix — and then nothing is sent: at most 3 buttons, at most 5 sub-buttons each, names of at most
16 (top) / 60 (sub) UTF-8 bytes, keys of 128 bytes, URLs of 1024 bytes, the fields each type
needs. A ``click`` key must be one of the persona's ``menu_clicks`` (else the click would go to
the fallback reply), whose targets must be intents or reply keys.

API calls (``menu/create``, ``menu/get``, ``menu/delete``) go through wechatpy's ``client.menu``
via :class:`~bot.channels.wechat_api.TokenOwner`: one token owner, secrets masked in logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.channels.wechat_api import TokenOwner, WeChatAPIError

MAX_BUTTONS, MAX_SUB_BUTTONS = 3, 5
TOP_NAME_BYTES, SUB_NAME_BYTES = 16, 60
KEY_BYTES, URL_BYTES, MEDIA_ID_BYTES = 128, 1024, 128
KEY_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto",
                       "pic_photo_or_album", "pic_weixin", "location_select"})
# Fields each button type needs besides name (WeChat's menu/create documentation).
REQUIRED = {
    **{t: ("key",) for t in KEY_TYPES},
    "view": ("url",),
    "miniprogram": ("url", "appid", "pagepath"),
    "media_id": ("media_id",),
    "view_limited": ("media_id",),
    "article_id": ("article_id",),
    "article_view_limited": ("article_id",),
}
TYPES = tuple(sorted(REQUIRED))
BUTTON_FIELDS = frozenset({"name", "type", "key", "url", "appid", "pagepath", "media_id",
                           "article_id", "sub_button"})
NO_MENU = 46003  # "menu no exist"
ERRORS = {
    48001: ("这个公众号不能用接口设置菜单（48001）：需要已认证的公众号；"
            "未认证的号请在公众平台网页上编辑菜单",
            "this account may not set its menu through the API (48001): that needs a verified "
            "account; unverified accounts edit the menu on the mp.weixin.qq.com web console"),
    46003: ("公众号目前没有自定义菜单", "the account has no custom menu"),
}


@dataclass(frozen=True, slots=True)
class MenuProblem:
    """One thing to fix in the menu file, in both languages, with where it is."""

    where: str  # path:line:col
    field: str  # button[1].sub_button[0].name
    zh: str
    en: str

    def text(self, language: str) -> str:
        return f"{self.where}: {self.field}: {self.zh if language == 'zh' else self.en}"


class MenuError(Exception):
    """The menu file cannot be pushed; ``problems`` says why (nothing was sent)."""

    def __init__(self, problems: list[MenuProblem]):
        self.problems = problems
        super().__init__("\n".join(p.text("en") for p in problems))


@dataclass(frozen=True, slots=True)
class Menu:
    persona: str | None
    body: dict[str, Any]  # what menu/create receives: {"button": [...]}

    def click_keys(self) -> list[str]:
        return [b["key"] for b in _all_buttons(self.body) if b.get("type") in KEY_TYPES]

    def summary(self) -> tuple[int, int]:
        """(top-level buttons, sub-buttons)."""
        top = self.body["button"]
        return len(top), sum(len(b.get("sub_button", [])) for b in top)


def _all_buttons(body: dict[str, Any]):
    for button in body.get("button", []):
        yield button
        yield from button.get("sub_button", [])


def load_menu(path: str | Path, persona: Any | None = None) -> Menu:
    """Read and check a menu file; MenuError listing every problem (bad YAML included).

    ``persona`` (a Persona model): its ``menu_clicks`` must cover every key the menu sends.
    """
    from bot.errors import ConfigError
    from bot.yaml_source import load_yaml

    try:
        data, positions = load_yaml(path)
    except ConfigError as exc:
        raise MenuError([MenuProblem(f"{p.path}:{p.line}:{p.column}", p.field or "file",
                                     p.message, p.message) for p in exc.problems]) from None
    checker = _Checker(str(path), positions)
    body = checker.menu(data)
    if persona is not None and not checker.problems:
        checker.clicks(body, persona)
    if checker.problems:
        raise MenuError(checker.problems)
    return Menu(data.get("persona") if isinstance(data, dict) else None, body)


class _Checker:
    def __init__(self, path: str, positions: dict):
        self.path, self.positions = path, positions
        self.problems: list[MenuProblem] = []

    def bad(self, where: tuple, zh: str, en: str) -> None:
        line, col = self.positions.get(where, (1, 1))
        self.problems.append(MenuProblem(f"{self.path}:{line}:{col}", _field(where), zh, en))

    def menu(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or "button" not in data:
            self.bad((), "菜单文件需要一个 button: 列表（最多 3 个按钮），"
                     "见 docs/channels/wechat.md",
                     "a menu file needs a `button:` list (at most 3 buttons); see "
                     "docs/channels/wechat.md")
            return {}
        for extra in sorted(set(data) - {"button", "persona"}):
            self.bad((extra,), f"不认识的字段 {extra!r}；顶层只能写 button 和 persona",
                     f"unknown field {extra!r}; the top level has only button and persona")
        buttons = data["button"]
        if not isinstance(buttons, list) or not buttons:
            self.bad(("button",), "button 应是按钮列表（1 到 3 个）",
                     "button must be a list of 1 to 3 buttons")
            return {}
        if len(buttons) > MAX_BUTTONS:
            self.bad(("button",), f"一级菜单最多 {MAX_BUTTONS} 个，现在有 {len(buttons)} 个；"
                     "请删掉或合并到子菜单（sub_button）",
                     f"at most {MAX_BUTTONS} top-level buttons, this menu has {len(buttons)}; "
                     "remove some or move them into a sub_button list")
        out = [self.button(b, ("button", i), top=True) for i, b in enumerate(buttons)]
        return {"button": out}

    def button(self, b: Any, where: tuple, top: bool) -> dict[str, Any]:
        if not isinstance(b, dict):
            self.bad(where, "每个按钮应是 name/type/... 字段的映射",
                     "each button is a mapping of name, type and its fields")
            return {}
        for extra in sorted(set(b) - BUTTON_FIELDS):
            self.bad((*where, extra),
                     f"按钮不认识字段 {extra!r}；可用：{', '.join(sorted(BUTTON_FIELDS))}",
                     f"unknown button field {extra!r}; buttons have "
                     f"{', '.join(sorted(BUTTON_FIELDS))}")
        limit = TOP_NAME_BYTES if top else SUB_NAME_BYTES
        name = b.get("name")
        if not isinstance(name, str) or not name.strip():
            self.bad((*where, "name") if "name" in b else where, "按钮需要名称 name",
                     "the button needs a name")
        elif len(name.encode("utf-8")) > limit:
            self.bad((*where, "name"),
                     f"名称 {name!r} 有 {len(name.encode('utf-8'))} 字节，"
                     f"{'一级' if top else '子'}菜单最多 {limit} 字节"
                     f"（约 {limit // 3} 个汉字）；请缩短",
                     f"name {name!r} is {len(name.encode('utf-8'))} bytes; a "
                     f"{'top-level' if top else 'sub-'}button name is at most {limit} bytes "
                     f"(about {limit // 3} Chinese characters); shorten it")
        if "sub_button" in b:
            if not top:
                self.bad((*where, "sub_button"), "子菜单里不能再有子菜单（只有两级）",
                         "a sub-button cannot have sub-buttons (menus have two levels)")
                return {}
            subs = b["sub_button"]
            if not isinstance(subs, list) or not subs:
                self.bad((*where, "sub_button"), "sub_button 应是 1 到 5 个按钮的列表",
                         "sub_button must be a list of 1 to 5 buttons")
                return {"name": name, "sub_button": []}
            if len(subs) > MAX_SUB_BUTTONS:
                self.bad((*where, "sub_button"),
                         f"每个一级菜单下最多 {MAX_SUB_BUTTONS} 个子菜单，"
                         f"这里有 {len(subs)} 个；请删减",
                         f"at most {MAX_SUB_BUTTONS} sub-buttons per button, this one has "
                         f"{len(subs)}; remove some")
            for extra in sorted(set(b) & (BUTTON_FIELDS - {"name", "sub_button"})):
                self.bad((*where, extra), f"有子菜单的按钮不能有 {extra}（点击它只展开子菜单）",
                         f"a button with sub-buttons cannot have {extra} (it only opens them)")
            return {"name": name, "sub_button": [
                self.button(s, (*where, "sub_button", i), top=False) for i, s in enumerate(subs)]}
        kind = b.get("type")
        if kind not in REQUIRED:
            self.bad((*where, "type") if "type" in b else where,
                     f"按钮类型应是 {', '.join(TYPES)} 之一（或写 sub_button 做子菜单）",
                     f"type must be one of {', '.join(TYPES)} (or give sub_button for a submenu)")
            return dict(b)
        out: dict[str, Any] = {"type": kind, "name": name}
        for needed in REQUIRED[kind]:
            value = b.get(needed)
            if not isinstance(value, str | int) or not str(value).strip():
                self.bad((*where, needed) if needed in b else where,
                         f"{kind} 类型的按钮需要 {needed}", f"a {kind} button needs {needed}")
                continue
            out[needed] = str(value)
        for field, limit_bytes in (("key", KEY_BYTES), ("url", URL_BYTES),
                                   ("media_id", MEDIA_ID_BYTES)):
            value = out.get(field)
            if value is not None and len(value.encode("utf-8")) > limit_bytes:
                self.bad((*where, field), f"{field} 最多 {limit_bytes} 字节，现在 "
                         f"{len(value.encode('utf-8'))} 字节；请缩短",
                         f"{field} is at most {limit_bytes} bytes, this one is "
                         f"{len(value.encode('utf-8'))}; shorten it")
        url = out.get("url")
        if url is not None and not url.startswith(("http://", "https://")):
            self.bad((*where, "url"), "url 应以 http:// 或 https:// 开头",
                     "url must start with http:// or https://")
        for extra in sorted(set(b) - {"name", "type", *REQUIRED[kind]}):
            self.bad((*where, extra), f"{kind} 类型的按钮用不到 {extra}；请删掉",
                     f"a {kind} button does not use {extra}; remove it")
        return out

    def clicks(self, body: dict[str, Any], persona: Any) -> None:
        targets = set(persona.intents) | set(persona.replies)
        for i, b in enumerate(body["button"]):
            subs = b.get("sub_button")
            pairs = ([((("button", i, "sub_button", j)), s) for j, s in enumerate(subs)]
                     if subs else [(("button", i), b)])
            for where, button in pairs:
                if button.get("type") not in KEY_TYPES:
                    continue
                key = button["key"]
                target = persona.menu_clicks.get(key)
                if target is None:
                    self.bad((*where, "key"),
                             f"key {key!r} 不在人设 {persona.id} 的 menu_clicks 里，"
                             f"点击后机器人不知道回什么；在人设里加一行 `{key}: 意图名`",
                             f"key {key!r} is not in persona {persona.id}'s menu_clicks, so a "
                             f"click would get the fallback reply; add `{key}: <intent>` under "
                             "menu_clicks in the persona")
                elif target not in targets:
                    self.bad((*where, "key"),
                             f"menu_clicks 把 {key!r} 指向 {target!r}，但它既不是意图也不是回复；"
                             "请改人设",
                             f"menu_clicks maps {key!r} to {target!r}, which is neither an intent "
                             "nor a reply key; fix the persona")


def _field(where: tuple) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "file"


# -- the API -------------------------------------------------------------------------------------


def push_menu(owner: TokenOwner, menu: Menu) -> None:
    """Replace the account's menu (menu/create). WeChatAPIError when refused."""
    _call(owner, lambda client: client.menu.create(menu.body))


def current_menu(owner: TokenOwner) -> dict[str, Any] | None:
    """The account's menu as ``{"button": [...]}`` (menu/get), or None when it has none."""
    try:
        result = _call(owner, lambda client: client.menu.get())
    except WeChatAPIError as exc:
        if exc.errcode == NO_MENU:
            return None
        raise
    if result is None:  # wechatpy answers None for 46003 itself
        return None
    menu = result.get("menu") or {}
    return {"button": menu.get("button", [])}


def delete_menu(owner: TokenOwner) -> None:
    _call(owner, lambda client: client.menu.delete())


def _call(owner: TokenOwner, fn):
    try:
        return owner.call(fn)
    except WeChatAPIError as exc:
        if exc.errcode in ERRORS and exc.errcode != NO_MENU:
            zh, en = ERRORS[exc.errcode]
            raise WeChatAPIError(exc.errcode, f"{en} / {zh}") from None
        raise


def to_yaml(body: dict[str, Any], persona: str | None = None) -> str:
    """A menu as a file ``push`` accepts (what ``show`` prints)."""
    import yaml

    data: dict[str, Any] = {"persona": persona} if persona else {}
    data["button"] = [_clean(b) for b in body.get("button", [])]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def _clean(button: dict[str, Any]) -> dict[str, Any]:
    # menu/get answers sub_button: [] on leaf buttons; keep only what create takes.
    out = {k: v for k, v in button.items() if k in BUTTON_FIELDS and k != "sub_button"}
    if button.get("sub_button"):
        out = {"name": button.get("name"), "sub_button": [_clean(s) for s in button["sub_button"]]}
    return out

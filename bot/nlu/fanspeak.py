"""How fans really write, turned into the words the intent examples use.

Two rewrites, both cheap table lookups (one compiled regex each) and neither ever raising:

* **Dialect vocabulary.** OpenCC converts Traditional *script* to Simplified, but Cantonese and
  Taiwanese fans also use other *words*: 冇 (没有), 喺 (在), 係咪 (是不是), 點樣 (怎么), 停車格
  (停车位)… :func:`mandarin` maps them, after script conversion, to the Mandarin the examples
  are written in. Only multi-character sequences or characters that exist solely in Cantonese
  are mapped, so Mandarin text is never changed (边 alone stays: 旁边; 食 alone stays: 食材).
* **Emoji as words.** Emoji normalise to nothing, so a fan sending "🕐?" or "🅿️🚗" used to be
  a blank message. :func:`emoji_words` replaces the emoji fans use *as questions* with words in
  the message's language. A curated table rather than the ``emoji`` package's CLDR names:
  the names describe the picture ("one o'clock", "一点"), not the question a fan means
  ("what time do you open"), and the curated words are what moved the dev figures.
"""

from __future__ import annotations

import re

__all__ = ["emoji_words", "has_emoji_words", "mandarin"]

# Cantonese (粤语) and Taiwanese (台湾) words → Mandarin, compared after normalize()'s
# Traditional→Simplified conversion (so keys are in Simplified script: 係 became 系, 搵 揾).
_DIALECT: dict[str, str] = {
    # Cantonese grammar words and particles
    "有冇": "有没有",
    "冇": "没有",
    "喺": "在",
    "哋": "们",
    "嘅": "的",
    "咗": "了",
    "乜嘢": "什么",
    "乜": "什么",
    "咩": "什么",
    "嘢": "东西",
    "系咪": "是不是",
    "系唔系": "是不是",
    "唔系": "不是",
    "唔该": "谢谢",
    "唔": "不",
    "佢": "他",
    "睇": "看",
    "嚟": "来",
    "揾": "找",
    "俾": "给",
    "畀": "给",
    "点样": "怎么",
    "点解": "为什么",
    "点去": "怎么去",
    "几多钱": "多少钱",
    "几多": "多少",
    "边度": "哪里",
    "边到": "哪里",
    "边个": "谁",
    "边间": "哪家",
    "咁": "这么",
    "啲": "些",
    "嗰": "那",
    "而家": "现在",
    "今日": "今天",
    "听日": "明天",
    "琴日": "昨天",
    "枱": "桌",
    "订台": "订桌",
    "泊车": "停车",
    "埋单": "买单",
    "食饭": "吃饭",
    "食咩": "吃什么",
    "食嘢": "吃东西",
    "收档": "关门",
    "开档": "开门",
    "闩门": "关门",
    "拍拖": "约会",
    "好食": "好吃",
    "唔使": "不用",
    "唔驶": "不用",
    "几耐": "多久",
    "几钱": "多少钱",
    "几多蚊": "多少钱",
    "几蚊": "多少钱",
    "收工": "关门",
    "收铺": "关门",
    "开铺": "开门",
    "嗌": "叫",
    "攞": "拿",
    "饮嘢": "喝东西",
    "饮咩": "喝什么",
    "有无": "有没有",
    # Taiwanese usage
    "停车格": "停车位",
    "捷运": "地铁",
    "内用": "堂食",
    "外带": "打包",
    "计程车": "出租车",
    "机车": "电动车",
    "网路": "网络",
    "公休": "休息",
    "讯息": "消息",
    "电子报": "周报",
    "外送": "外卖",
    "包厢": "包间",
    "脚踏车": "自行车",
    "冷气": "空调",
}
# Longest first, so 系唔系 wins over 唔 and 有冇 over 冇.
_DIALECT_RE = re.compile("|".join(map(re.escape, sorted(_DIALECT, key=len, reverse=True))))
# Characters that start a dialect key: a message without any of them is left alone at the cost
# of one set intersection instead of a regex pass.
_DIALECT_FIRST = frozenset(key[0] for key in _DIALECT)


def mandarin(normalized: str) -> str:
    """Dialect words of a normalised (Simplified) text replaced by their Mandarin words."""
    if normalized.isascii() or _DIALECT_FIRST.isdisjoint(normalized):
        return normalized
    return _DIALECT_RE.sub(lambda m: _DIALECT[m.group()], normalized)


# Emoji fans send as (part of) a question, with the words they stand for, zh and en.
_EMOJI_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("🕐🕑🕒🕓🕔🕕🕖🕗🕘🕙🕚🕛🕜🕝🕞🕟🕠🕡🕢🕣🕤🕥🕦🕧⏰⌚⏱⏲🕰⌛⏳", "几点开门", "what time open"),
    ("🅿🚗🚙🚘🏎🚕", "停车", "parking"),
    ("💰💵💴💶💷💲💸🤑💳", "多少钱", "how much price"),
    ("📍🗺🧭🏠🏡", "地址在哪", "where address"),
    ("🚇🚉🚆🚊", "地铁", "metro"),
    ("🍜🍲🍛🍚🥘🍽🍴🥢🍖🍗🥩", "菜单 吃什么", "menu food"),
    ("🥜🌰🦐🦀🌾", "过敏", "allergy"),
    ("🥟", "饺子", "dumplings"),
    ("👧👦🧒👪", "亲子 小朋友", "kids family"),
    ("🤖", "你是机器人吗", "are you a bot"),
    ("☕🥐🧋🍵", "咖啡 菜单", "coffee menu"),
    ("🛵📦🚚🍱🥡", "外卖", "delivery"),
    ("📞☎📱", "电话", "phone"),
    ("📶🛜💻", "wifi", "wifi"),
    ("🐶🐕🐩🐱🐈🦮", "宠物", "dog pets"),
    ("👶🍼", "宝宝椅", "high chair kids"),
    ("🎁🏷🎟", "优惠", "deals discount"),
    ("👋", "你好", "hello"),
    ("🙏💐🥰😘🙌❤💕💖😍🫶", "谢谢", "thanks"),
    ("😡🤬😠😤💢🤮🤢👎💩", "太差了 投诉", "terrible complaint"),
    ("🍺🍷🥤🧃🍹🍸🥂🍻", "有什么喝的", "what drinks"),
    ("🌶", "辣不辣", "spicy"),
    ("🥗🥦🌱🥬", "素菜", "vegetarian"),
    ("🎂", "生日", "birthday"),
    ("🪑📅🗓", "订位", "book a table"),
    ("🚭🚬", "抽烟", "smoking"),
    ("♿", "轮椅", "wheelchair"),
    ("🚻🚽🧻", "厕所", "toilet"),
    ("❄", "空调", "air conditioning"),
    ("🔌🔋", "插座", "outlets"),
    ("🎉🎊🎈", "活动", "events"),
    ("🆘", "找人工", "talk to a human"),
    ("🥛", "牛奶", "milk"),
    ("🫘", "豆子", "beans"),
    ("🍰🧁🍩🍪🍮", "甜品 菜单", "dessert menu"),
)
_EMOJI: dict[str, tuple[str, str]] = {
    ch: (zh, en) for chars, zh, en in _EMOJI_GROUPS for ch in chars
}
_EMOJI_RE = re.compile("[" + "".join(_EMOJI) + "]")


def has_emoji_words(text: str) -> bool:
    """Whether ``text`` has an emoji :func:`emoji_words` would turn into words."""
    return not text.isascii() and _EMOJI_RE.search(text) is not None


def emoji_words(text: str, language: str) -> str:
    """``text`` with each known emoji replaced by its words in ``language`` (zh, else en)."""
    if text.isascii():
        return text
    column = 0 if language == "zh" else 1
    return _EMOJI_RE.sub(lambda m: f" {_EMOJI[m.group()][column]} ", text)

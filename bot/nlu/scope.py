"""Is a message about *another* business, place or thing? Then our facts do not answer it.

A keyword such as 几点关门 or "close" lifts the hours intent, but "海底捞几点关门" and "what time
does the Apple store close" ask about someone else, and answering with our own hours at full
confidence is the worst reply a brand can give. :class:`OtherSubject` finds the subject of such
a question from three independent signals:

* a **gazetteer** of well-known chains, brands and companies (zh + en) — one signal, not the
  whole method;
* **subject patterns**: "X几点关门", "X的地址", "what time does the X close", "X's hours",
  "is X open", where X is a name that is not ours (not a pronoun, not "the shop", not one of
  the persona's own names);
* **general-knowledge patterns**: stock prices, exchange rates, capitals, population, weather —
  never about a restaurant or café's own facts.

Names that stand in a *relation* to us are about us: "离春熙路远吗", "near the metro?",
"你们在万达里面吗", "cheaper than Starbucks?". The persona's own names (brand, identity name,
``identity.aliases`` for branches, old names and nicknames) never count as other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.nlu.normalize import normalize

__all__ = ["OtherSubject"]

# Well-known chains, brands and companies a fan may ask about instead of us (normalised
# spelling). Platforms fans use to reach *us* (美团, 饿了么, 大众点评, wechat) are not here.
_GAZETTEER_ZH = (
    "海底捞|星巴克|麦当劳|肯德基|必胜客|瑞幸|喜茶|奈雪|蜜雪冰城|茶颜悦色|霸王茶姬|库迪|太二|西贝|外婆家"
    "|呷哺|全聚德|汉堡王|赛百味|德克士|真功夫|永和大王|鼎泰丰|眉州东坡|小龙坎|大龙燚|蜀大侠|巴奴|陈麻婆"
    "|沃尔玛|家乐福|山姆|开市客|宜家|优衣库|苹果店|苹果专卖店|苹果公司|华为|小米|特斯拉|比亚迪|腾讯"
    "|阿里巴巴|京东|拼多多|盒马|永辉|7-11|711便利店|全家便利店|罗森|漫咖啡|蓝瓶|迪士尼|万达影城|耐克|阿迪"
    "|茅台|可口可乐|百事|达美乐|棒约翰|塔斯汀|华莱士|书亦烧仙草|古茗|沪上阿姨|挪瓦|costa|manner|tims"
)
_GAZETTEER_EN = (
    "starbucks|mcdonalds|mcdonald|mcds|kfc|burger king|pizza hut|dominos|luckin|costa|tim hortons"
    "|dunkin|dunkin donuts|peets|blue bottle|haidilao|hai di lao|din tai fung|heytea|apple store"
    "|ikea|costco|walmart|tesla|amazon|google|microsoft|nvidia|uniqlo|zara|7 eleven|family mart"
    "|familymart|chipotle|shake shack|five guys|wendys|taco bell|panda express|nandos|wagamama"
    "|pret|pret a manger|whole foods|trader joes|disneyland|nike|adidas|coca cola|pepsi|manner"
    "|arabica|tims|bitcoin|ethereum|dogecoin|netflix|spotify|uber|airbnb"
)
# Words before a name that put it in relation to us ("离X", "near X") rather than make it the
# subject; and words after it ("X旁边", "X附近", "X里面").
_RELATION_BEFORE_ZH = re.compile(
    r"(离|距离|靠近|挨着|从|到|去|在|比|跟|和|对面是|旁边是|隔壁是|近|往|经过)\s*$"
)
_RELATION_AFTER_ZH = re.compile(
    r"^\s*(旁边|附近|对面|边上|楼上|楼下|隔壁|里面|里头|里|那边|这边|出来|过来|过去|走|远|近|比|一样|差不多)"
)
_RELATION_BEFORE_EN = re.compile(
    r"\b(near|next to|close to|from|across from|opposite|by|behind|beside|besides|inside|in|at the"
    r"|past|than|compared to|vs|versus|like|to|towards|around|walk from|far from|get to)\s*(the\s+)?$"
)
# Questions about a thing's attributes: "X几点关门", "X的地址", "X电话多少".
_ZH_SUBJECT = re.compile(
    r"(?P<x>[\u4e00-\u9fffa-z0-9]{2,12}?)(的)?\s*(几点|什么时候|啥时候|几时)\s*(开门|关门|营业|打烊|开|关|下班)"
    r"|(?P<y>[\u4e00-\u9fffa-z0-9]{2,12}?)(的)\s*(营业时间|地址|电话|菜单|价格|股价|总部|老板|官网)"
)
# Place/company suffixes: "那家火锅店", "春熙路那个商场": X ends in one of these → a named place.
_ZH_PLACE_SUFFIX = re.compile(
    r"(店|餐厅|饭店|酒店|宾馆|超市|商场|银行|医院|公园|机场|火车站|高铁站|大学|博物馆|图书馆|电影院|影城"
    r"|健身房|邮局|火锅|咖啡|奶茶|烧烤|面馆|酒吧|公司|集团|广场|商城)$"
)
# Pronouns and deictics that point at us: "你们几点关门", "这家店的地址", "店里几点开门".
_ZH_OURS = re.compile(
    r"^(你们|你家|你们家|你们店|您|贵店|本店|这家|这家店|这边|这里|店里|店|你|咱们|咱|我们|今天|明天|后天"
    r"|周[一二三四五六日天末]|星期[一二三四五六日天]|礼拜[一二三四五六日天]|晚上|早上|中午|下午|上午|平时"
    r"|工作日|节假日|过年|春节|国庆|现在|一般|大概|最晚|最早|通常|厨房|后厨|外卖|午市|晚市|包间)"
)
# "what time does the X close", "when does X open", "is X open", "X's hours".
_EN_SUBJECT = re.compile(
    r"\b(?:what time|when|how late|how early)\s+(?:does|do|is|will|are)\s+(?P<x>[a-z0-9 &]{2,40}?)\s+"
    r"(?:open|close|shut|get open|opening|closing)\b"
    r"|\bis\s+(?P<y>[a-z0-9 &]{2,40}?)\s+open\b"
    r"|\b(?P<z>[a-z0-9&]{2,30}?)s\s+(?:hours|opening hours|address|menu|prices|phone number|stock)\b"
)
_EN_OURS = re.compile(
    r"^(?:you|you guys|yall|u|your|your place|your shop|your store|your cafe|your restaurant|it"
    r"|the shop|the store|the cafe|the café|the restaurant|the kitchen|the place|the bar|the cafe today"
    r"|shop|store|cafe|restaurant|kitchen|place|this place|this shop|this cafe|this restaurant|the terrace"
    r"|the lunch|lunch|dinner|breakfast|brunch|the lunch menu|the dinner service|the kitchen today"
    r"|the delivery|delivery|the bakery counter|ur|ur place|ya)$"
)
# General knowledge that no restaurant or café fact answers.
_KNOWLEDGE = re.compile(
    r"股价|股票|市值|汇率|比特币|首都|省会|人口|天气预报|气温多少|纳斯达克|道琼斯|大盘|基金|彩票|时区"
    r"|\bstock\b|\bstocks\b|share price|market cap|\bnasdaq\b|dow jones|exchange rate|\bcrypto\b"
    r"|capital of|population of|\bweather in\b|weather forecast|time zone|lottery|\bforex\b"
    r"|\busd to\b|\bto usd\b|\beur to\b|\bto rmb\b|\bto cny\b|\bgdp\b"
)


def _names(pattern: str) -> re.Pattern[str]:
    words = sorted(pattern.split("|"), key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words))


_GAZ_ZH = _names(_GAZETTEER_ZH)
_GAZ_EN_WORDS = _names(_GAZETTEER_EN)
_GAZ_EN = re.compile(r"(?<![a-z0-9])(?:" + _GAZ_EN_WORDS.pattern + r")(?![a-z0-9])")


class OtherSubject:
    """Finds the other business/place/thing a message is about, given the persona's own names."""

    def __init__(self, own_names: Iterable[str]):
        own = {normalize(name) for name in own_names}
        own.discard("")
        # Own names are blanked out before looking, so "老王厨房几点关门" has no subject left.
        self._own = (
            re.compile("|".join(re.escape(n) for n in sorted(own, key=len, reverse=True)))
            if own
            else None
        )

    def find(self, normalized: str) -> str | None:
        """The other subject a normalised message asks about ("knowledge" for general
        knowledge), or None when it is (or may be) about us."""
        text = normalized[:300]
        if self._own is not None:
            text = self._own.sub(" 本店 ", text)
        knowledge = _KNOWLEDGE.search(text)
        if knowledge is not None:
            return "knowledge"
        for match in (*_GAZ_ZH.finditer(text), *_GAZ_EN.finditer(text)):
            if not self._related(text, match.start(), match.end()):
                return match.group()
        if not text.isascii():
            for match in _ZH_SUBJECT.finditer(text):
                name = match.group("x") or match.group("y") or ""
                subject = self._zh_subject(name)
                if subject and not self._related(text, match.start(), match.start() + len(name)):
                    return subject
        for match in _EN_SUBJECT.finditer(text):
            name = (match.group("x") or match.group("y") or match.group("z") or "").strip()
            if self._en_subject(name):
                return name
        return None

    @staticmethod
    def _related(text: str, start: int, end: int) -> bool:
        """Whether the name at ``text[start:end]`` stands in a relation to us (离X, near X)."""
        before, after = text[max(0, start - 12) : start], text[end : end + 6]
        return bool(
            _RELATION_BEFORE_ZH.search(before)
            or _RELATION_AFTER_ZH.search(after)
            or _RELATION_BEFORE_EN.search(before)
        )

    @staticmethod
    def _zh_subject(name: str) -> str | None:
        """A Chinese subject that names a place or business not ours, else None."""
        name = name.strip()
        name = re.sub(r"^(请问|问一下|问下|想问|那个|那家|哪家|这个|一下)", "", name)
        if "本店" in name or len(name) < 2 or _ZH_OURS.search(name):
            return None
        return name if _ZH_PLACE_SUFFIX.search(name) else None

    @staticmethod
    def _en_subject(name: str) -> bool:
        """Whether an English subject phrase names something other than us."""
        name = re.sub(r"^(?:the|a|an)\s+", "", name.strip())
        if not name or "本店" in name or _EN_OURS.match(name) or _EN_OURS.match("the " + name):
            return False
        # Words that name our own parts ("the kitchen", "the terrace", "lunch service").
        first = name.split()[0]
        return first not in {"you", "your", "ur", "u", "yall", "it", "this", "we", "our", "they"}

"""Names nobody listed: "陈记肥肠粉几点开门", "latte at Sumerian", "does Wagas have wifi".

The gazetteer in :mod:`bot.nlu.scope` knows famous chains, but most businesses a fan asks about
are small, local and in no list. What gives them away is not the name itself but where it stands
and that the persona never uses its words:

* Chinese: the words at the start of a question, before what it asks (几点开门, 的地址, 有包间,
  能订位, 有外卖…), form its subject. When that subject is a run of content characters (no
  pronoun, verb or particle: a fan's own clause such as 我朋友生日能订位吗 has them), is not a
  time (春节, 大年初一, 周末) and holds a character pair that none of the persona's own texts
  (examples, keywords, facts, replies, names) contains, it names someone else.
* English: a capitalised name (or a word the English vocabulary does not know) after "at"
  ("the wifi password at Common Ground"), as the subject of "does X have/serve/open…", or
  after "bring my dog to"; unless our own texts use it ("Jiashan Road", "Yongkang Road").
* The fan's own places ("家里wifi又断了", "my wifi at home", "parking in this city"): a statement
  about them is no question about our facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.nlu.normalize import normalize

__all__ = ["UnknownNames"]

_HAN = re.compile(r"[\u4e00-\u9fff]")
# What a Chinese question asks about a place: the subject stands before the first of these.
_ZH_ASK = re.compile(
    r"几点|什么时候|啥时候|营业|开门|关门|打烊|开吗|关吗|开不开|地址|在哪|怎么走|包间|包厢|外卖|订位|订座"
    r"|定位|预订|预约|停车|wifi|电话|菜单|排队|门票|人均|招牌|环境|贵不贵|贵吗|人多|好吃吗|怎么样|值得"
)
# Words a fan puts before the subject ("请问", "你知道") — not part of a name.
_ZH_LEAD = re.compile(
    r"^(?:请问一下|请问|问一下|问下|想问一下|想问下|想问|我想问一下|我想问下|我想问|我想知道|你知道|知道|听说"
    r"|那个|就是|嗯|呃|老板|麻烦问下|麻烦问一下|对了|话说|诶|哎|喂)+"
)
# Words between the subject and what is asked ("有", "可以", "周一", "的").
_ZH_TAIL = re.compile(
    r"(?:的|能不能|可不可以|可以|有没有|有|能|要|是|是不是|还|也|都|一般|平时|最近|现在|今天|明天|后天"
    r"|今晚|晚上|早上|中午|周[一二三四五六日天末]|星期[一二三四五六日天]|礼拜[一二三四五六日天]"
    r"|好|方便|容易|难|好不好|方不方便)+$"
)
# Characters a shop's name does not hold but a fan's own clause does (pronouns, verbs of asking,
# particles): "我朋友生日能订位吗" is a sentence about the fan, not a name.
_ZH_NOT_NAME = re.compile(
    r"[我你您他她它们想要能请帮给是在有没不吗呢吧了跟个位点过还就也会让把被该这那啥么什怎哪几多少"
    r"人次号天时候以后前之问说看找去来吃喝带订送做用算等再]"
)
# Times and occasions: "春节开门吗", "端午节营业吗", "大年初一几点开门" ask about our hours.
_ZH_TIME = re.compile(
    r"(?:节|假|假期|期间|天|日|年|月|初[一二三四五六七八九十]|放假|周末|早|晚|[〇一二三四五六七八九十两])$|^(?:大年|除夕)"
)
# Character pairs common in any question (not names), on top of the persona's own texts.
_ZH_COMMON = (
    "附近 旁边 对面 楼下 楼上 今年 去年 明年 下周 上周 这周 本周 平常 一般 通常 大概 大约"
    " 堂食 中餐 晚餐 早餐 午餐 宵夜 夜宵 火锅 烧烤 小吃 饭店 餐厅 饭馆 厨房 店铺 门口 门店"
    " 分店 总店 老店 新店 二楼 一楼 三楼 楼层 大厅 包房 室内 室外 露台 户外 小孩 孩子 老人"
    " 宝宝 朋友 家人 同事 客人 顾客 生日 聚餐 聚会 公司 团建"
)
# The fan's own places and things: what is said about them is not about our facts.
_ZH_FANS_OWN = re.compile(r"家里|我家|在家|宿舍|我们公司|我们小区|公司里|小区里|学校里|单位里")
_EN_FANS_OWN = re.compile(
    r"\b(?:at home|my (?:home|house|apartment|flat|wifi|internet|router|building|office"
    r"|neighbou?rhood|street)|in this (?:city|town|country))\b"
)
# "at Common Ground", "to Little Bean" after bringing something: a capitalised name after "at"
# (checked on the raw text, where names keep their capitals).
_EN_AT_NAME = re.compile(
    r"\b(?:at|bring (?:my|the|a|our) \w+ to|take (?:my|the|a|our) \w+ to)\s+(?:the\s+)?"
    r"(?P<x>[A-Z][\w'’&-]*(?:\s+[A-Z][\w'’&-]*){0,3})"
)
# "does Wagas have wifi", "do Hana's serve brunch": a name as the subject of a shop's verb.
_EN_DOES_NAME = re.compile(
    r"\b(?:does|do|did|is|are)\s+(?P<x>[A-Za-z][\w'’&-]*(?:\s+[A-Za-z][\w'’&-]*){0,2})\s+"
    r"(?:have|has|serve|sell|do|take|offer|open|close|make|roast|deliver|allow|accept|let|still"
    r"|open|closed)\b"
)
# Capitalised words that are no name of a business.
_EN_NOT_NAME_WORDS = (
    "i im ill ive id you your we our they it this that the a an my me he she his her there here"
    " monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays"
    " thursdays fridays saturdays sundays january february march april may june july august"
    " september october november december christmas easter xmas new year chinese english"
    " am pm ok okay wifi oat the cafe coffee shop store restaurant kitchen noon night home"
    " work weekends weekend lunch dinner breakfast brunch"
)
_EN_NOT_NAMES = frozenset(_EN_NOT_NAME_WORDS.split())
# Nouns after a shop's name ("rac coffee", "egg bakery").
_SHOP_NOUN_WORDS = (
    "coffee cafe café bakery roasters kitchen bar hotpot restaurant diner bistro noodles"
)
_SHOP_NOUNS = frozenset(_SHOP_NOUN_WORDS.split())
# Words of a subject that point at us or at the fan.
_EN_OURS_WORDS = "you your u ur yall we our it they this that there here i my me anyone someone one"
_EN_OURS = frozenset(_EN_OURS_WORDS.split())


def _common_english(word: str) -> bool:
    """Whether a word is one the static vectors' WordPiece vocabulary holds whole (a word it
    has to split into pieces is rare enough to be a name). The vectors are already loaded by
    the matcher for English messages."""
    from bot.nlu import vectors

    return len(vectors.load().wordpieces(word)) == 1


class UnknownNames:
    """Finds a name the persona never uses standing as the subject of a question."""

    def __init__(self, known_texts: Iterable[str]):
        pairs: set[str] = set()
        words: set[str] = set()
        for text in (*known_texts, *_ZH_COMMON.split()):
            normalized = normalize(text)
            for run in re.findall(r"[\u4e00-\u9fff]+", normalized):
                pairs.update(run[i : i + 2] for i in range(len(run) - 1))
            words.update(re.findall(r"[a-z]+", normalized))
        self._pairs = frozenset(pairs)
        self._words = frozenset(words)

    # -- Chinese ------------------------------------------------------------------------------

    def zh(self, normalized: str) -> str | None:
        """The unknown name a Chinese question is about ("陈记肥肠粉"), or None."""
        for piece in normalized.split():
            if not _HAN.search(piece):
                continue
            ask = _ZH_ASK.search(piece)
            if ask is None or ask.start() < 3:
                continue
            name = _ZH_LEAD.sub("", piece[: ask.start()])
            name = _ZH_TAIL.sub("", name)
            # "钟鼓楼那边的陶德砂锅": the name is what the last 的 qualifies.
            name = name.rsplit("的", 1)[-1]
            if self._zh_unknown(name):
                return name
        return None

    def _zh_unknown(self, name: str) -> bool:
        if len(name) < 3 or not all("\u4e00" <= ch <= "\u9fff" for ch in name):
            return False
        if "本店" in name or _ZH_NOT_NAME.search(name) or _ZH_TIME.search(name):
            return False
        return any(name[i : i + 2] not in self._pairs for i in range(len(name) - 1))

    # -- English ------------------------------------------------------------------------------

    def en(self, raw: str, ours) -> str | None:
        """The unknown name an English question is about ("Common Ground"), or None.
        ``ours(name)`` says whether our own facts use it."""
        for match in _EN_AT_NAME.finditer(raw):
            name = normalize(match.group("x"))
            if self._en_name(name, ours, capitalised=True):
                return name
        for match in _EN_DOES_NAME.finditer(raw):
            x = match.group("x")
            capitalised = x[:1].isupper() and match.start("x") > 0
            name = normalize(x)
            if self._en_name(name, ours, capitalised=capitalised):
                return name
        return None

    def _en_name(self, name: str, ours, *, capitalised: bool) -> bool:
        words = name.split()
        if not words or words[0] in _EN_NOT_NAMES or set(words) & _EN_OURS:
            return False
        if ours(name):
            return False
        if capitalised:
            return len(name) >= 3
        # Not capitalised: only a word neither we nor the English vocabulary use ("wagas"),
        # alone or before a shop noun ("does rac coffee take reservations").
        if len(words) == 2 and words[1] in _SHOP_NOUNS:
            words = words[:1]
        word = words[0]
        return (
            len(words) == 1
            and len(word) >= 3
            and word not in self._words
            and not _common_english(word)
        )

    # -- the fan's own places -----------------------------------------------------------------

    @staticmethod
    def fans_own(normalized: str) -> str | None:
        """The fan's own place or thing a message is about ("家里", "at home"), or None."""
        found = (_EN_FANS_OWN if normalized.isascii() else _ZH_FANS_OWN).search(normalized)
        if found is None and not normalized.isascii():
            found = _EN_FANS_OWN.search(normalized)
        return found.group() if found else None

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
from functools import cache

from bot.nlu.gazetteer import _GAZETTEER_EN, _GAZETTEER_ZH
from bot.nlu.names import UnknownNames
from bot.nlu.normalize import Phrase, PhraseIndex, normalize

__all__ = ["OtherSubject"]

# Words before a name that put it in relation to us ("离X", "near X") rather than make it the
# subject; and words after it ("X旁边", "X附近", "X里面").
_RELATION_BEFORE_ZH = re.compile(
    r"(离|距离|靠近|挨着|从|到|去|在|比|跟|和|对面是|旁边是|隔壁是|近|往|经过)\s*$"
)
_RELATION_AFTER_ZH = re.compile(
    r"^\s*(旁边|附近|对面|边上|楼上|楼下|隔壁|里面|里头|里|那边|这边|出来|过来|过去|走|远|近|比|一样|差不多)"
)
_RELATION_BEFORE_EN = re.compile(
    r"\b(near|next to|close to|from|across from|opposite|by|behind|beside|besides|inside|in"
    r"|past|than|compared to|vs|versus|like|to|towards|around|walk from|far from"
    r"|get to)\s+(?:\S+\s+){0,3}$"
)
_RELATION_AFTER_EN = re.compile(
    r"^\s*(nearby|near|close by|close to|around|next door|across|opposite|within|down the street"
    r"|next to|beside)\b"
)
# Questions about a thing's attributes: "X几点关门", "X的地址", "X电话多少".
_ZH_SUBJECT = re.compile(
    r"(?:几点|什么时候|啥时候|几时)\s*(?:开门|关门|营业|打烊|开|关|下班|上班)"
    r"|的\s*(?:营业时间|地址|电话|菜单|价格|股价|总部|老板|官网)"
)
# A place that is not a shop (a sight, a hospital, a station) as the topic of a question:
# "宽窄巷子停车方便吗", "大熊猫基地门票多少钱", "医院挂号怎么预约". Found from the topic word
# (one short alternation) and then the few characters before it, which must end in a place word:
# one left-to-right pass instead of a lazy name group tried at every position.
_ZH_TOPIC = re.compile(
    r"停车|门票|票价|几点|营业|地址|电话|客服|优惠|办卡|预约|挂号|怎么走|怎么去|在哪|价格|多少钱|wifi|密码|排队"
    r"|人多|开放|好吃吗|好玩吗|有什么|有啥|收费|外卖|订位|订座|包间|带狗|带宠物|招牌|菜单|人均|好吃|推荐"
)
_ZH_PLACE_WORD = re.compile(
    r"(?:巷子|景区|基地|古镇|寺|公园|动物园|博物馆|美术馆|医院|诊所|健身房|机场|火车站|高铁站|汽车站"
    r"|银行|商场|超市|酒店|宾馆|电影院|影城|学校|大学|体育馆|游乐园|图书馆|派出所|政务中心|营业厅|4s店"
    r"|[东南西北]站|火车站|校区|百货|购物中心|广场|大厦|寺|庙|古镇|景点|步行街|夜市|学院|中学|小学|幼儿园"
    r"|大使馆|领事馆|酒吧|ktv|网吧|加油站|药店|药房|菜市场|农贸市场|批发市场|花鸟市场|美术馆|剧院|音乐厅|总店)$"
)
# Words ending the name of an eating place: "陈记肥肠粉店", "小谭豆花馆" (a name before it needed).
_ZH_SHOP_WORD = re.compile(
    r"(?:店|馆|餐厅|饭店|酒楼|茶楼|茶馆|大排档|食堂|酒吧|面馆|小吃店|咖啡店|咖啡馆|奶茶店|火锅店|串串店)$"
)
_ZH_MODAL_END = re.compile(
    r"(?:能不能|可不可以|可以|有没有|要不要|需不需要|需要|是不是|好不好|方便|能|有|要|好|是)$"
)
# Place/company suffixes: "那家火锅店", "春熙路那个商场": X ends in one of these → a named place.
_ZH_PLACE_SUFFIX = re.compile(
    r"(店|餐厅|饭店|酒店|宾馆|超市|商场|银行|医院|公园|机场|火车站|高铁站|大学|博物馆|图书馆|电影院|影城"
    r"|健身房|邮局|火锅|咖啡|奶茶|烧烤|面馆|酒吧|公司|集团|广场|商城|馆|食堂|大排档|小吃|酒楼"
    r"|百货|购物中心|大厦|[东南西北]站|火车站|校区|景区|寺|古镇|步行街|夜市|超市|便利店|药店|总店|分店)$"
)
# Pronouns and deictics that point at us: "你们几点关门", "这家店的地址", "店里几点开门".
_ZH_OURS = re.compile(
    r"^(你们|你家|你们家|你们店|您|贵店|本店|这家|这家店|这边|这里|店里|店|你|咱们|咱|我们|今天|明天|后天"
    r"|周[一二三四五六日天末]|星期[一二三四五六日天]|礼拜[一二三四五六日天]|晚上|早上|中午|下午|上午|平时"
    r"|工作日|节假日|过年|春节|国庆|现在|一般|大概|最晚|最早|通常|厨房|后厨|外卖|午市|晚市|包间|人工|在线"
    r"|真人|联系)"
)
# The same pronouns anywhere in the name ("我想问下你们店几点开门").
_ZH_OURS_ANY = re.compile(r"你们|你家|贵店|本店|这家|咱们|我们|店里|您")
# Demonstratives that point away from us: "那家", "隔壁", "对面".
_ZH_THAT = re.compile(r"那家|那个|隔壁|对面|旁边的|楼下的|楼上的")
# "what time does the X close", "when does X open", "is X open", "X's hours".
_EN_SUBJECT = re.compile(
    r"\b(?:what time|when|how late|how early)\s+(?:does|do|is|will"
    r"|are)\s+(?P<x>[a-z0-9 &]{2,40}?)\s+"
    r"(?:open|close|shut|get open|opening|closing|stop running|start running|stop|start|run)\b"
    r"|\bis\s+(?P<y>[a-z0-9 &]{2,40}?)\s+open\b"
)
# "costcos hours" (normalised "Costco's hours"): found from the attribute, then the word before.
_EN_POSSESSIVE = re.compile(r"s\s+(?:hours|opening hours|address|menu|prices|phone number|stock)\b")
_EN_OURS = re.compile(
    r"^(?:you|you guys|yall|u|your|your place|your shop|your store|your cafe|your restaurant|it"
    r"|the shop|the store|the cafe|the café|the restaurant|the kitchen|the place|the bar"
    r"|the cafe today"
    r"|shop|store|cafe|restaurant|kitchen|place|this place|this shop|this cafe|this restaurant"
    r"|the terrace"
    r"|the lunch|lunch|dinner|breakfast|brunch|the lunch menu|the dinner service|the kitchen today"
    r"|the delivery|delivery|the bakery counter|ur|ur place|ya)$"
)
# Words that make an English subject phrase ours ("your newsletter", "the weekly letter").
_EN_OUR_WORDS = frozenset(
    {"you", "your", "ur", "u", "yall", "it", "this", "we", "our", "they", "newsletter"}
    | {"newsletters", "letter", "updates", "list", "mailing", "weekly", "monthly", "emails"}
    | {"messages", "stamp", "card", "loyalty"}
)
# Parts, services and times of any café or restaurant: a subject made only of these is ours
# ("is the kitchen still open", "when does lunch service close", "sundays hours").
_EN_OUR_PARTS = frozenset(
    {"the", "a", "an", "still", "now", "right", "today", "todays", "tonight", "tomorrow", "yet"}
    | {"already", "usually", "normally", "on", "at", "in", "weekend", "weekends", "holiday"}
    | {"holidays", "kitchen", "bar", "patio", "terrace", "place", "shop", "store", "cafe"}
    | {"café", "restaurant", "lunch", "dinner", "breakfast", "brunch", "service", "delivery"}
    | {"takeaway", "takeout", "dining", "room", "rooms", "counter", "window", "menu", "team"}
    | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mondays"}
    | {"tuesdays", "wednesdays", "thursdays", "fridays", "saturdays", "sundays", "weekday"}
    | {"weekdays", "evening", "morning", "night", "private", "outdoor", "seating", "front"}
    | {"there", "here", "entrance", "door"}
)
# A capitalised name before a business or place noun in the fan's own text: "does Seesaw
# coffee do oat milk", "the Shanghai Tower" (checked on the raw text, where names keep their
# capitals; sentence-initial words do not count).
_EN_NAMED = re.compile(
    r"(?<=[a-z0-9,] )(?P<x>(?:[A-Z][\w'&-]*\s+){1,3})(?:coffee|café|cafe|bakery|restaurant|bar|tea"
    r"|kitchen|roasters|store|shop|mall|hotel|tower|museum|park|temple|market|airport|station)\b"
)
# "Joe's", "Trader Joe's", "McDonald's": a capitalised possessive names a business or person.
_EN_POSSESSIVE_NAME = re.compile(r"(?P<x>\b[A-Z][\w&-]*(?:\s+[A-Z][\w&-]*)?)['’]s\b")
# Capitalised words before 's that are no name ("What's", "Today's", "Valentine's").
_NOT_NAME_WORDS = (
    "what that it there here who how where when let he she today tomorrow tonight yesterday"
    " monday tuesday wednesday thursday friday saturday sunday mother father valentine year"
    " new year children women men everyone everybody nobody someone one this which why else"
    " kid kids baby chef owner boss staff shop cafe restaurant kitchen world city people"
)
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())
# A shop word ending a branch's name ("玉林路店", "春熙路分店").
_ZH_BRANCH_WORD = re.compile(r"(?:分店|门店|总店|老店|新店|店)$")
# Words that address us in an English message.
_YOU = frozenset({"you", "your", "u", "ur", "yall", "ya", "youre"})
_PRONOUNS = frozenset({"i", "im", "ill", "ive", "id", "we", "you", "my", "our", "ok", "okay"})
# General knowledge that no restaurant or café fact answers (phrases; English ones match whole
# words). A PhraseIndex looks them up by their first characters: a long regex alternation of
# them cost more than the intent matcher on English text.
_KNOWLEDGE_WORDS = (
    "股价|股票|市值|汇率|比特币|首都|省会|人口|天气预报|气温多少|纳斯达克|道琼斯|大盘|基金|彩票|时区"
    "|机票|火车票|高铁票|飞机票|stock|stocks|share price|market cap|nasdaq|dow jones"
    "|exchange rate|crypto|capital of|population of|weather in|weather forecast|time zone"
    "|lottery|forex|usd to|to usd|eur to|to rmb|to cny|gdp|flight|flights|plane ticket"
    "|train ticket|hotel room|电影票|演唱会|话费|充值|快递|天气怎么样"
    "|天气如何|会下雨|下雨吗|气温|订酒店|酒店预订|推荐一家|哪家好吃|附近有什么好吃|weather like"
    "|the weather|forecast|will it rain|going to rain|book a hotel|book me a hotel|hotel booking"
    "|book a room|sim card|best restaurant|best restaurants|other restaurants|somewhere else"
    "|recommend a restaurant|how many yuan|in yuan|to yuan|yuan to|dollars in|euros in|in dollars"
    "|ticket to|tickets to|atm|取款机|提款机|last metro|last train|last bus|first train|末班车"
    "|首班车|gold price|price of gold|金价|油价|oil price|gas price|房价|house prices|sunset"
    "|sunrise|日落|日出"
    # Cooking at home, translation, homework, news, sport, people: no shop fact answers them.
    "|make at home|cook at home|brew at home|making at home|at home recipe|recipe for"
    "|在家做|在家怎么做|自己在家|菜谱|食谱|家常做法|怎么翻译|翻译一下|翻译成|translate"
    "|用英语怎么说|英文怎么说|in chinese|中文怎么说|homework|作业|作文|论文|essay"
    "|tell me a joke|讲个笑话|笑话|who won|谁赢了|比分|world cup|世界杯|nba|election|选举"
    "|president of|prime minister|总统|首相|how old is the|what time is it in|几月几号"
    "|星座|horoscope|高考|考研|签证|护照|电影推荐|推荐一部|recommend a movie"
    "|good movie|any movies|演唱会门票|podcast|podcasts|推荐几首|好听的歌|推荐本书"
    "|book recommendation"
    # Nutrition, health, origins and history of food in general; transit cards.
    "|calories|卡路里|热量|how much caffeine|咖啡因含量|nutrition|营养成分|bad for you|good for you"
    "|对身体好|对身体不好|伤身体|伤胃吗|who invented|invented|origin of|history of|起源|发明|来历"
    "|是哪里的菜|哪个地方的菜|哪里的特产|espresso machine|coffee machine|咖啡机|磨豆机|grinder"
    "|which bar|which bars|which cafe|which restaurant|any good bars|good bars|bars around|哪家好"
    "|哪里有好吃的|metro card|transit card|交通卡|地铁卡|公交卡|天府通|交通卡"
    # Sums and cooking for oneself: "帮我算一下…平摊多少", "what should I cook for dinner".
    "|帮我算|算一下|计算一下|calculate|should i cook|to cook for|cook for dinner|cook tonight"
    # Services no café or restaurant gives: "any good dentists", "帮我叫个出租车".
    "|dentist|dentists|hairdresser|hairdressers|barber|plumber|lawyer|locksmith|a taxi|a cab"
    "|牙医|理发店|律师|开锁|叫个车|出租车"
)
# Another place named by where it is from the *fan* ("楼下那家奶茶店", "公司食堂", "the bar
# next door", "my friend's cafe"): its hours, prices and parking are not ours.
_ZH_THAT_PLACE = re.compile(
    r"(?:那家|那间|那个|隔壁|楼下|楼上|对面|我家|家附近|公司|单位|朋友|小区|学校|网红|街角|路口|别的|其他)"
    r"(?:的|那家|那个|开的|新开的)?[\u4e00-\u9fff]{0,6}?"
    r"(?:店|馆|餐厅|超市|商场|医院|食堂|酒店|酒吧|健身房|银行|面包房|咖啡厅|串串香|串串|火锅|书店|药店"
    r"|快递站|驿站|菜馆|饭馆|面馆|小吃|大排档|烧烤|茶楼|影院)"
)
_EN_THAT_PLACE = re.compile(
    r"\b(?:(?:the|that|this|a)\s+(?:[a-z]+\s+){0,2}?(?:bar|cafe|café|bakery|place|restaurant|shop"
    r"|store"
    r"|hotel|gym|library|supermarket|pharmacy|bank|cafeteria|canteen|diner|pub|spot|joint)"
    r"\s+(?:next door|downstairs|upstairs|across the street|across town|on my street|near me"
    r"|around the corner|down the road|at work|by my office|by my place|in my building)"
    r"|my (?:friends|friend s|office|work|local|neighborhood|neighbourhood|school|uni|company)\s+"
    r"(?:[a-z]+\s+)?(?:bar|cafe|café|bakery|place|restaurant|shop|store|cafeteria|canteen|gym|pub"
    r"|coffee shop|diner))\b"
)
# Arithmetic ("what's 15% of 80", after normalisation "15 of 80").
_ARITHMETIC = re.compile(r"\b\d+ (?:of|times|plus|minus|divided by) \d+\b")
# "subscribe to the New York Times", "book a room at the Hilton": a verb we know applied to
# something that is not ours.
_EN_VERB_OTHER = re.compile(
    r"\b(?:subscribe to|sign up for|sign me up for|unsubscribe from|book a table at|reserve at"
    r"|order from|deliver from)\s+(?P<x>[a-z0-9 &]{2,40})$"
    # Directions to somewhere else: "how do I get to the Bund (from here)".
    r"|\b(?:how (?:do i|do we|can i|could i|would i|to|should i) get to|directions to"
    r"|how far is)\s+(?P<y>[a-z0-9 &]{2,40}?)(?:\s+from\b.*)?$"
)
# English nouns naming a place that is not a café or restaurant ("the airport lounge").
_EN_PLACE = re.compile(
    r"\b(?:the|a|an)\s+(?P<x>(?:[a-z0-9&]+\s+){0,3}(?:airport|lounge|hotel|mall|museum|hospital"
    r"|clinic|school|university|gym|bank|zoo|library|cinema|theater|theatre|supermarket|pharmacy"
    r"|post office|embassy|consulate|temple|stadium|train station|bus station|dmv|bakery))\b"
)


# One index for the gazetteer (zh and en) and the general-knowledge phrases: one look-up per
# message. English entries match whole words only ("pret" is not in "pretty").
_WORDS = [
    *(("name", w) for w in _GAZETTEER_ZH.split("|")),
    *(("name", w) for w in _GAZETTEER_EN.split("|")),
    # "Costa's menu" normalises to "costas menu": the possessive of every English name too.
    *(("name", w + "s") for w in _GAZETTEER_EN.split("|")),
    *(("knowledge", w) for w in _KNOWLEDGE_WORDS.split("|")),
]


@cache
def _index() -> tuple[list[Phrase], PhraseIndex]:
    """The phrases and their index, built on first use: a process that only fits matchers
    (``bot.nlu.prefit``, run on every persona reload) never builds them. One PhraseIndex is
    much cheaper per message than the same words as one regex alternation."""
    phrases = [Phrase(word) for _, word in _WORDS]
    return phrases, PhraseIndex(phrases)


class OtherSubject:
    """Finds the other business/place/thing a message is about, given the persona's own names."""

    def __init__(
        self,
        own_names: Iterable[str],
        own_texts: Iterable[str] = (),
        known_texts: Iterable[str] = (),
    ):
        """``own_names``: names that mean us; ``own_texts``: our facts, whose places and
        partners ("玉林菜市场", "the bakery down the street") are ours to talk about;
        ``known_texts``: everything else the persona says or expects (examples, keywords,
        replies), whose words are no unknown names (see :mod:`bot.nlu.names`)."""
        own_names, own_texts = list(own_names), list(own_texts)
        self._own_text = " " + " | ".join(normalize(text) for text in own_texts) + " "
        self._names = UnknownNames([*own_names, *own_texts, *known_texts])
        own = {normalize(name) for name in own_names}
        own.discard("")
        self._own_names = tuple(own)
        # Own names are blanked out before looking, so "老王厨房几点关门" has no subject left.
        self._own = (
            re.compile("|".join(re.escape(n) for n in sorted(own, key=len, reverse=True)))
            if own
            else None
        )

    def find(self, normalized: str, text: str = "") -> str | None:
        """The other subject a normalised message asks about ("knowledge" for general
        knowledge), or None when it is (or may be) about us. ``text``, the raw message, lets
        capitalised names count ("Seesaw coffee")."""
        raw, text = text, normalized[:300]
        if self._own is not None:
            text = self._own.sub(" 本店 ", text)
        phrases, index = _index()
        for position in index.found(text):
            kind, word = _WORDS[position][0], phrases[position].text
            if kind == "knowledge":
                return "knowledge"
            start = text.find(word)
            if not self._related(text, start, start + len(word)) and not self._ours(word):
                return word
        if _ARITHMETIC.search(text) is not None:
            return "knowledge"
        that = (_EN_THAT_PLACE if text.isascii() else _ZH_THAT_PLACE).search(text)
        ascii_text = text.isascii()
        if that is not None and "本店" not in text and (ascii_text or not self._ours(that.group())):
            before = text[max(0, that.start() - 4) : that.start()]
            if not _RELATION_BEFORE_ZH.search(before) and not _ZH_OURS_ANY.search(text):
                return that.group()
        if not text.isascii():
            for match in _ZH_SUBJECT.finditer(text):
                start = match.start()
                before = text[max(0, start - 12) : start].rstrip(" 的")
                words = before.split()
                name = words[-1] if words else ""
                subject = self._zh_subject(name)
                if (
                    subject
                    and not self._ours(subject)
                    and not self._our_branch(subject)
                    and not self._related(text, start - len(name), start)
                ):
                    return subject
            for match in _ZH_TOPIC.finditer(text):
                subject = self._zh_topic_place(text, match.start(), match.group())
                if subject:
                    return subject
        for match in (*_EN_SUBJECT.finditer(text), *_EN_VERB_OTHER.finditer(text)):
            groups = match.groupdict()
            name = next((groups[g] for g in ("x", "y") if groups.get(g)), "").strip()
            if self._en_subject(name) and not self._ours(name):
                return name
        for match in _EN_POSSESSIVE.finditer(text):
            words = text[: match.start()].split()
            name = words[-1] if words else ""
            if len(name) >= 2 and self._en_subject(name) and not self._ours(name):
                return name
        for match in _EN_PLACE.finditer(text):
            name = match.group("x")
            # Only a relation *before* the place makes it ours ("near the museum?"); "the museum
            # near you, is it free" asks about the museum.
            before = " " + text[max(0, match.start() - 40) : match.start()]
            if not _RELATION_BEFORE_EN.search(before) and not self._ours(name):
                return name
        unknown = self._unknown(text, raw[:300])
        if unknown is not None:
            return unknown
        return self._named(raw[:300]) if raw else None

    def _unknown(self, text: str, raw: str) -> str | None:
        """A name no list holds and the persona never uses, as the subject of a question, or
        the fan's own place (see :mod:`bot.nlu.names`)."""
        names = self._names
        if not text.isascii():
            name = names.zh(text)
            if (
                name is not None
                and not _ZH_OURS.search(name)
                and not _ZH_OURS_ANY.search(name)
                and not self._ours(name)
                and not self._our_branch(name)
            ):
                return name
        if raw:
            name = names.en(raw, self._ours_or_own)
            if name is not None:
                return name
        own = names.fans_own(text)
        if own is not None and "本店" not in text and not _ZH_OURS_ANY.search(text):
            # "离我家远吗", "far from my office": how far we are from the fan is about us.
            before = text[max(0, text.find(own) - 40) : text.find(own)]
            if not set(text.split()) & _YOU and not (
                _RELATION_BEFORE_ZH.search(before) or _RELATION_BEFORE_EN.search(" " + before)
            ):
                return own
        return None

    def _our_branch(self, name: str) -> bool:
        """Whether a Chinese shop name is ours by where it is: "玉林路店" when our address is
        on 玉林西路 (the first two characters of the place in our facts, then a shop word)."""
        core = _ZH_BRANCH_WORD.sub("", name)
        return core != name and len(core) >= 2 and core[:2] in self._own_text

    def _ours_or_own(self, name: str) -> bool:
        """Whether a normalised name is one of ours or used by our facts."""
        if self._ours(name) or (self._own is not None and self._own.search(name) is not None):
            return True
        # "Laowang" for "Laowang Kitchen": a word of one of our own names.
        return any(f" {name} " in f" {own} " for own in self._own_names)

    def _named(self, raw: str) -> str | None:
        """A capitalised name before a business noun, or a capitalised possessive ("Joe's",
        "Peet's"), in the raw text, not ours nor related."""
        for match in _EN_POSSESSIVE_NAME.finditer(raw):
            name = normalize(match.group("x"))
            if name in _NOT_NAMES or len(name) < 3 or self._ours(name):
                continue
            if self._own is not None and self._own.search(name):
                continue
            if not self._related(raw.lower(), match.start(), match.end()):
                return name
        for match in _EN_NAMED.finditer(raw):
            name = normalize(match.group("x"))
            if len(name) < 3 or name.split()[0] in _PRONOUNS or self._ours(name):
                continue  # "where can I park" ("I" is no name), or one of our own names
            if self._own is not None and self._own.search(name):
                continue
            if not self._related(raw.lower(), match.start(), match.end()):
                return name
        return None

    def _ours(self, name: str) -> bool:
        """Whether a name occurs in our own facts (our street, our garage, our bakery)."""
        name = re.sub(r"^(?:the|a|an)\s+", "", name.strip())
        if len(name) < 2:
            return False
        if not name.isascii():
            return name in self._own_text
        # English names as whole words ("mall" is not in "small"), without the generic words
        # of any shop ("the yongkang road shop" is ours when our address is on yongkang road).
        core = " ".join(w for w in name.split() if w not in _EN_OUR_PARTS) or name
        return f" {core} " in self._own_text

    @staticmethod
    def _related(text: str, start: int, end: int) -> bool:
        """Whether the name at ``text[start:end]`` stands in a relation to us (离X, near X)."""
        before, after = text[max(0, start - 12) : start], text[end : end + 6]
        if _RELATION_BEFORE_ZH.search(before) or _RELATION_AFTER_ZH.search(after):
            return True
        before_en = " " + text[max(0, start - 40) : start]
        return bool(
            _RELATION_BEFORE_EN.search(before_en) or _RELATION_AFTER_EN.search(text[end : end + 16])
        )

    def _zh_topic_place(self, text: str, start: int, topic: str) -> str | None:
        """The place or company a Chinese topic word is asked about ("医院" in 医院挂号怎么预约,
        "饿了么" in 饿了么客服电话), or None."""
        before = text[max(0, start - 10) : start].rstrip(" 的")
        words = before.split()
        name = words[-1] if words else ""
        if topic == "客服":
            # Another company's customer service is theirs even when our facts name it as a
            # partner (饿了么客服 ≠ ordering us on 饿了么).
            subject = self._zh_subject(name[-6:], place=True)
            return subject if subject and len(subject) >= 2 else None
        # "小谭豆花馆能订位吗": the modal verb between the name and the topic is not the name.
        name = _ZH_MODAL_END.sub("", name)
        place = _ZH_PLACE_WORD.search(name)
        if place is None:
            shop = _ZH_SHOP_WORD.search(name)
            if shop is None or shop.start() < 2:
                return None  # "店里", "咖啡店": no name of its own

        subject = self._zh_subject(name, place=True)
        if not subject or self._ours(subject) or self._our_branch(subject):
            return None
        return None if self._related(text, start - len(name), start) else subject

    @staticmethod
    def _zh_subject(name: str, place: bool = False) -> str | None:
        """A Chinese subject that names a place or business not ours, else None.

        ``place``: the name already ends in a place word (the place-topic pattern); otherwise
        it must end in a shop/company word to count (春熙路那家火锅店).
        """
        name = name.strip()
        name = re.sub(r"^(请问|问一下|问下|想问|那个|那家|哪家|这个|一下|我想知道|知道)", "", name)
        if "本店" in name or len(name) < 2:
            return None
        # "你们隔壁那家店": a pronoun of ours, but the subject is *that* shop.
        if (_ZH_OURS.search(name) or _ZH_OURS_ANY.search(name)) and not _ZH_THAT.search(name):
            return None
        return name if place or _ZH_PLACE_SUFFIX.search(name) else None

    @staticmethod
    def _en_subject(name: str) -> bool:
        """Whether an English subject phrase names something other than us."""
        name = re.sub(r"^(?:the|a|an)\s+", "", name.strip())
        if not name or "本店" in name or _EN_OURS.match(name) or _EN_OURS.match("the " + name):
            return False
        # Words that name our own parts ("the kitchen", "the terrace", "lunch service").
        words = set(name.split())
        if words & _EN_OUR_WORDS:
            return False
        # "the kitchen still", "lunch service", "sundays": only our own parts and times left.
        return not words <= _EN_OUR_PARTS

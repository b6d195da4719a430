"""Complaints that never say "complaint": "咸得我喝了三瓶水", "waited 50 minutes, great job".

Unhappy fans describe what went wrong instead of naming it. :func:`implicit_complaint` looks for
a negative judgement of the food or the service (a small zh/en lexicon) or sarcasm (praise
next to a wait or a failure). Strong signals (food poisoning, a hair in the dish, "never
again") count even in a question; weaker ones ("太咸", "cold") only in a statement, because
"会不会太辣？" asks about the menu.
"""

from __future__ import annotations

import re
from functools import cache

from bot.nlu.normalize import Phrase, PhraseIndex

__all__ = ["implicit_complaint", "off_target", "praise_only"]

# "咸得我喝了三瓶水": drinking a lot after a dish is a verdict on the dish.
_THIRST = re.compile(r"喝了.{0,3}[瓶杯壶]水")

# Unambiguous: something went wrong, whatever the sentence form.
_STRONG = (
    "吃坏|拉肚子|肚子疼|闹肚子|食物中毒|吐了|头发|虫子|苍蝇|蟑螂|异物|钢丝|塑料|变质|馊了|发霉|过期"
    "|再也不来|再也不会来|不会再来|再也不去|最后一次来|黑店|宰客|坑人|坑钱|骗子|骗人|差评|一星|退钱|退款"
    "|态度差|态度太差|态度恶劣|态度很差|甩脸|翻白眼|爱答不理|骂人|被骂|恶心|想吐|难以下咽|太难吃|难吃死"
    "|一塌糊涂|气死|无语死|服了你们|被坑|太坑|踩雷|踩坑|避雷|白跑一趟|白跑|多收|乱收费|收错钱|翻白眼"
    "|food poisoning|got sick|made me sick|threw up|vomit|hair in|bug in|fly in|cockroach|mould"
    "|moldy"
    "|mouldy|expired|never again|never coming back|not coming back|worst|rip off|ripoff"
    "|ripped off|scam"
    "|refund|money back|disgusting|inedible|rude|yelled|unacceptable|ruined|thanks for nothing"
    "|one star|1 star|zero stars|horrible|awful|appalling|gross|rolled his eyes|rolled her eyes"
    "|rolled their eyes"
    "|overcharged|charged me twice|double charged|wasted trip|for nothing|allergic reaction"
    "|stomach ache|stomachache|diarrhea|is this a joke|are you kidding|pathetic|ridiculous"
    "|tasted like dishwater|like rubber|like cardboard|messed up my order|got my order wrong"
    "|where is my food|wheres my food|where is my order|wheres my order|order never came"
    "|snapped at|hung up|nobody picks up|no one picks up|10/10 would wait"
    "|过敏了|胃疼|肚子不舒服|拉稀|崩了牙|硌牙|吃出|咬到|沙子|货不对板|跟图片不一样|跟照片不一样"
    "|下次不来了|不会再来了|再也不买|说好的|害我|黑脸|甩脸色|骗钱|就这|这也叫|也配叫|paid for this"
    "|lipstick on|chipped cup|laughed at me|made fun of|condescending|snobby|看不起人|口红印"
    # Judgements of service and food, whatever the dish: staff, hygiene, money, health.
    "|黑着脸|拉着脸|摆臭脸|臭脸|脸色难看|不耐烦|爱搭不理|凶巴巴|吼我|吼人|嫌弃|态度不好|态度一般"
    "|服务态度|服务员态度|吃坏肚子|拉了一晚上|拉了一夜|上吐下泻|不舒服了一晚|吃出来|里面有根|有根头发"
    "|有只虫|有个虫|黑心|奸商|智商税|割韭菜|坑爹|垃圾|太差劲|差劲|糟糕|很糟|烂透|真烂|什么玩意"
    "|失望透顶|太失望|别来了|劝退|千万别去|不推荐|不值这个价|不值得|血亏|亏大了|上当"
    "|rude staff|so rude|was rude|were rude|attitude problem|terrible|trash|garbage|the worst"
    "|sucked"
    "|sucks|waste of money|waste of time|never again|do not recommend|dont recommend|avoid this"
    "|stay away|got food poisoning|sick after|sick all night|hair in my|bug in my"
    "|unprofessional|embarrassing|shameful|lied to|false advertising"
)
# Negative judgements of food or service: a complaint when stated, not when asked.
_WEAK = (
    "咸得|太咸|好咸|咸死|齁咸|太淡|没味|太辣了|辣死|太油|好油|油腻|凉了|冷了|凉的|冷的|不热|生的|没熟|夹生|糊了"
    "|焦了|硬得|老得|咬不动|不新鲜|不好吃|难吃|不怎么样|一般般|失望|好失望|太慢|好慢|慢死|等了|等半天|半天没"
    "|一个小时|半个小时|半小时|还没上|没上菜|忘了|上错|送错|少了|漏了|洒了|撒了|脏|不干净|油乎乎|贵死|太贵了"
    "|不值|量太少|分量少|缩水|服务差|服务太差|没人理|没人管|不理人|没人接|吵死|臭"
    "|坏了|坏掉|不能用|用不了|连不上|玩手机|热成狗|冻死|呵呵|还不如|不熟|半生"
    "|腥|有腥味|太苦|苦死|漏汤|包装破|凉透|慢得|慢死了|等到|一个半小时|两个小时|上菜慢|出餐慢"
    "|too salty|so salty|too spicy|way too spicy|salty af|bland|tasteless|too oily|greasy"
    "|cold food|was cold|were cold"
    "|came cold|lukewarm|stale|undercooked|overcooked|raw inside|burnt|burned|soggy|tough|chewy"
    "|waited|waiting for|still waiting|took forever|took ages|forever to|hour for|minutes for"
    "|forgot|wrong order|got the wrong|missing|overpriced|not worth|tiny portion|dirty|filthy"
    "|sticky"
    "|slow service|so slow|ignored|nobody came|no one came|disappointed|disappointing|meh|mediocre"
    "|not great|not good|wasnt good|werent good|not fresh|smelled|smells|stinks|stank|too loud"
    "|salt lick|didnt work|doesnt work|not working|broken|instead of|came with regular"
    "|tasted like|watery|weak coffee|too bitter|so bitter|was bitter|burnt coffee|sour milk"
    "|curdled|rotten|gritty|still no food|still no coffee|took 20 minutes|took 30 minutes"
    "|took 40 minutes|for this price|seriously|unbelievable|attitude|ignored us|too sour|so sour"
    "|was sour|too dry|was dry|so dry|over extracted|under extracted|barely any coffee"
    "|basically milk|watered down|kept dropping|keeps dropping|asked for oat|i asked for"
    "|charged me|out of oat again|flies everywhere|line out the door|no one said hi|pretentious"
    "|太酸|焦味|全是冰|冰太多|杯子脏|爱理不理|态度冷淡|太吵|网太慢|网速慢|太挤|没电"
    "|咸得要命|咸到|辣到|淡得|淡出鸟|没啥味|不入味|太甜|齁甜|分量太少|少得可怜|就几片|价格虚高|太贵"
    "|贵得离谱|凉透|冰凉|夹生|没煮熟|半天不来|催了|催了好几次|还没到|迟到|超时|送晚了|晚了一个小时"
    "|lukewarm|room temperature|luke warm|tasted off|tasted weird|tasted funny|too sweet"
    "|sickly sweet"
    "|overpriced|too expensive|way too expensive|pricey for|cold by the time|arrived cold"
    "|late again|took an hour|took over|wrong milk|wrong drink|not hot"
    "|burnt taste|tasted burnt|sour today|spilled|leaked|leaking|no lid|missing item|forgot my"
    "|so loud|loud music|music was loud|couldnt hear|太吵了|吵得|paid for a|got a small"
    "|少送|少了一份"
    "|不太新鲜|不大新鲜|不舒服|一直不理|不理我们|nobody at|no one at|no one was at|nobody was at"
    "|漏送|少给|给错|nobody told me|no one told me|没人告诉|没人通知"
)
# Praise that, next to a wait or a failure, is sarcasm: "great job" after 50 minutes.
_SARCASM = (
    "真棒|真行|真厉害|厉害了|佩服|谢谢你们啊|谢谢啊|好样的|可以的|绝了|呵呵|真是服了|牛|666"
    "|真会做生意|生意太好了|真到位|真周到|真贴心|服务真好|太好了是吧|好棒哦"
    "|great job|good job|well done|nice job|great service|amazing service|fantastic|wonderful|love"
    " that|love how|lovely|thanks a lot|just great|real nice|so fun|bravo|impressive|wow|stellar"
    "|of course|very inclusive|top notch|five stars|real professional|real quick|super fast"
    "|love waiting|what a treat|so glad i paid|brilliant|excellent|nice|cool cool"
    "|给你们点赞|服气|我谢谢你|谢谢你们哦|可真行|真有你的|真是绝了"
    "|厉害厉害|了不起|what a surprise|how lovely|just lovely"
)
_FAILURE = (
    "等了|又|居然|竟然|一个小时|半小时|分钟|还没|忘了|凉|冷|咸|错|没人"
    "|结果|没这|没有|多收|不接|玩手机"
    "|wait|waited|minutes|hour|again|forgot|cold|wrong|never|still|nobody|no one|only took"
    "|came with|instead|didnt|doesnt|rolled|salt|as usual|as always|yet again|another"
)


# What a negative judgement is about when it is not about us: traffic, weather, work, school,
# one's own life. A complaint read from weak signals needs a target of ours, not one of these.
_OFF_TARGET = re.compile(
    r"堵车|塞车|交通|天气|下雨|下雪|太热了|好热|好冷|上班|加班|老板骂|同事|考试|作业|论文|房租|股票|基金|男朋友"
    r"|女朋友|老公|老婆|孩子作业|地铁太挤|地铁好挤|公交|打车|滴滴|航班|飞机|高铁|火车|快递|手机坏|电脑坏"
    r"|\b(?:traffic|commute|weather|rain|raining|snow|my boss|work today|at work|exam|exams"
    r"|homework|my flight|flight|the train|the bus|uber|my phone|my laptop|landlord|rent|the metro"
    r"|the subway|monday|mondays|work was|work is|my job|school|class|my day|bored|boring day"
    r"|tired|sleepy)\b"
    r"|无聊|好累|累死|困死|好困"
)
# Our targets: what a complaint about us names (dish, drink, staff, shop, order).
_OUR_TARGET = re.compile(
    r"菜|饭|肉|鱼|汤|面|豆腐|味道|服务|服务员|老板|店|你们|上菜|外卖|订位|包间|结账|买单|价格|分量|咖啡|拿铁"
    r"|\b(?:you|your|food|dish|dishes|coffee|latte|flat white|cold brew|espresso|drink|order|waiter"
    r"|waitress|staff|barista|service|table|bill|place|shop|cafe|milk|pastry|croissant|menu|wifi"
    r"|receipt"
    r"|seat|seats|cup|music)\b"
)
# Praise: without a failure next to it, a message praising is not a complaint.
_PRAISE = re.compile(
    r"好吃|真香|绝了|yyds|太赞|好棒|喜欢|爱了|推荐|下次还来|还会再来|最好吃|一级棒|满分|五星|好评|点赞"
    r"|\b(?:best|love|loved|amazing|awesome|great|delicious|perfect|fantastic|excellent|favourite"
    r"|favorite|recommend|yummy|tasty|goat|fire|10/10|five stars)\b"
)


def off_target(normalized: str) -> bool:
    """Whether a negative message is about something not ours (traffic, weather, work) and
    names nothing of ours: "堵车堵了一个小时，烦死了" is no complaint to the shop."""
    return _OFF_TARGET.search(normalized) is not None and _OUR_TARGET.search(normalized) is None


def praise_only(normalized: str) -> bool:
    """Whether a message praises and names no failure: "your flat white is the best in town"."""
    if _PRAISE.search(normalized) is None:
        return False
    kinds, index = _lexicon()
    return not {kinds[p] for p in index.found(normalized)} & {"strong", "weak", "failure"}


@cache
def _lexicon() -> tuple[list[str], PhraseIndex]:
    """Every word list in one index (one look-up per message), built on first use."""
    kinds: list[str] = []
    phrases: list[Phrase] = []
    for kind, words in (
        ("strong", _STRONG), ("weak", _WEAK), ("sarcasm", _SARCASM), ("failure", _FAILURE)
    ):
        for word in words.split("|"):
            kinds.append(kind)
            phrases.append(Phrase(word))
    return kinds, PhraseIndex(phrases)


def implicit_complaint(normalized: str, question: bool) -> str | None:
    """``'strong'``, ``'weak'`` or ``'sarcasm'`` when a normalised message complains, else None.

    ``question``: whether the message asks something (see :func:`bot.nlu.negation.is_question`);
    weak judgements and sarcasm in a question are not complaints.
    """
    kinds, index = _lexicon()
    found = {kinds[position] for position in index.found(normalized)}
    if "strong" in found:
        return "strong"
    if question:
        return None
    if "weak" in found or _THIRST.search(normalized):
        return "weak"
    if "sarcasm" in found and "failure" in found:
        return "sarcasm"
    return None

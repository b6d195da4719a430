"""One call that turns a fan's raw message into everything the dialog engine needs to know.

Normalisation runs once per message and its result feeds intent matching, taboo detection and
the yes/no lexicon, so the engine never has to care about scripts, casing or punctuation.

A keyword lifts its intent, but it never overrules meaning. After the matcher, rules decide
(``Understanding.rule`` says which): a question about another business, place or general
knowledge gets no intent (:mod:`bot.nlu.scope`); a refusal is no request and stopping the
newsletter is an unsubscribe (:mod:`bot.nlu.negation`); a complaint without the word goes to
``complaint`` (:mod:`bot.nlu.complaints`); a fact asked by name is answered alone (persona
``fact_answers``). Emoji and dialect words are turned into words first
(:mod:`bot.nlu.fanspeak`), and a message asking two things is understood clause by clause
(:mod:`bot.nlu.clauses`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.nlu.clauses import clauses
from bot.nlu.complaints import implicit_complaint, off_target, praise_only
from bot.nlu.fanspeak import emoji_words, has_emoji_words
from bot.nlu.matcher import IntentMatcher, typed_pinyin
from bot.nlu.negation import is_question, refusal
from bot.nlu.normalize import Phrase, PhraseIndex, detect_language, normalize
from bot.nlu.scope import OtherSubject
from bot.persona.model import Persona

__all__ = ["Understander", "Understanding", "confirmation"]

Confirmation = Literal["affirm", "deny"]


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the bot understood of one message.

    ``intent`` is None below the matcher's threshold while ``best`` still names the closest
    intent; ``taboo`` is a taboo subject name; ``confirmation`` is set only when the whole
    message is a yes or a no, for dialogs waiting on a confirmation step.

    ``rule`` says what decided ``intent``: "keyword" or "model" (the matcher), "fact" (a fact
    asked for by name), "complaint" (an implicit complaint), "negation" (a refusal flipped or
    blocked the intent), "other-subject" (about another business or general knowledge, so
    not answered with our facts) or "none". ``fact`` names a fact to answer alone instead of
    the intent's whole reply; ``also`` lists further intents asked in the same message (two
    questions in one), answered after ``intent`` in order. ``declined``: another clause of the
    message asked about another business and was left unanswered ("海底捞几点关门？有停车位吗").
    """

    text: str
    normalized: str
    language: str
    intent: str | None
    confidence: float
    best: str
    taboo: str | None
    confirmation: Confirmation | None
    rule: str = "none"
    fact: str | None = None
    also: tuple[str, ...] = ()
    declined: bool = False


@dataclass(frozen=True, slots=True)
class _Decision:
    """What the rules decided for one piece of a message."""

    intent: str | None
    confidence: float
    best: str
    rule: str
    fact: str | None = None


# Only the start of a pasted essay is analysed: the intent is stated there, and the cost of a
# 10 kB message stays that of a long one.
MAX_ANALYSED_CHARS = 2000
# "not complaining" / 没有要投诉: a complaint intent refused in words.
_NOT_COMPLAINING = re.compile(
    r"(不是|没有|没|并不是|不算)(要|想)?(投诉|抱怨|吐槽)"
    r"|not (a )?complain|not complaining|no complaint"
)
# A polite decline ("不用了谢谢", "no thanks", "nah I'm good, thanks").
_DECLINE = re.compile(
    r"(?:不用|不了|不要了|算了|no thanks|no thank you|no need|nah|not now|not today)"
)
# Asking for a translation: the social phrase in it is quoted, not said to us.
_TRANSLATE = re.compile(
    r"translate|怎么翻译|翻译一下|翻译成|怎么说|how do (?:you|i) say|in chinese|in english"
)
# The word itself: a complaint so named is one whatever it is about.
_SAYS_COMPLAINT = re.compile(r"投诉|抱怨|差评|complain|complaint")
# Stopping something the fan has: a refused subscribe is an unsubscribe.
_STOP = re.compile(
    r"(?:别|不要|不用)(?:再)?(?:给我)?(?:发|推)|不再|别再|不要再|不想再|停止|停掉|退掉|取消|不想收|不要收|关掉|关闭|屏蔽|别推|不要推|"
    r"\b(?:no more|stop|done with|no longer|unsubscribe|cancel|quit|enough|anymore|any more"
    r"|dont (?:message|text|email|send|contact|spam))\b|别(?:再)?(?:给我)?(?:联系|打扰)"
)
# Cancelling a booking is a question about bookings, not a refusal of one.
_CANCEL = frozenset({"取消", "cancel"})
# Pieces of a message a refusal applies to (one clause, not the whole message).
_PIECES = re.compile(r"[,，。.!！?？;；~～\n]+|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
# Whole messages that only acknowledge ("ok", "好的"): never answered as small talk.
_BARE_CONFIRMATIONS = frozenset(
    normalize(w)
    for w in ("ok", "okay", "k", "kk", "好", "好的", "好的吧", "行", "嗯", "嗯嗯", "哦", "噢")
)

# Confidence reported for an intent decided by a rule rather than the matcher's softmax.
COMPLAINT_CONFIDENCE = 0.8
# A clause of a longer message counts as a question of its own only this confident (or
# decided by a keyword or rule): short pieces give the matcher less to go on.
CLAUSE_CONFIDENCE = 0.5
FACT_CONFIDENCE = 0.8
# A message naming a fact answers with it alone when it asks, or is this short ("wifi password",
# "地铁站"), counted in Chinese characters plus other words.
_MAX_FACT_STATEMENT = 4
_ASKS = re.compile(
    r"\b(?:what|how|where|when|which|any|can|could|do you|is there|are there)\b|什么|啥"
)
_HAN = re.compile(r"[\u4e00-\u9fff]")
# A clause pointing back at someone else named before it ("do they", "他们家").
_THIRD_PERSON = re.compile(
    r"\b(?:they|them|their|theirs|it|its|there)\b|他们|他家|她家|那家|那边|那里|它"
)


# Voice-to-text fillers (嗯 那个 就是 然后, um so like): n-grams no example has, which only
# dilute the matcher's confidence in a run-on message. Removed for the matcher alone.
_FILLERS = re.compile(
    r"嗯+|呃+|额+|那个那个|就是说|然后就是|就是那个|那个就是|我想问问|我想问一下|我想问下|想问一下|问一下"
    r"|\b(?:um+|uh+|erm|hmm+|like|so|yeah|basically|i mean|you know|okay so|ok so|i was wondering"
    r"|kinda|sorta|actually|or whatever|or something|or anything|lol|lmao|haha+|tbh|ngl)\b"
    r"|哈哈+"
)
_SPACES = re.compile(r"\s+")


def _without_fillers(normalized: str) -> str:
    """A normalised message without voice fillers (unchanged when nothing else is left)."""
    stripped = _SPACES.sub(" ", _FILLERS.sub(" ", normalized)).strip()
    return stripped or normalized


def _size(normalized: str) -> int:
    """Length of a message in Chinese characters plus other words."""
    return len(_HAN.findall(normalized)) + len(_HAN.sub(" ", normalized).split())


# Whole-message answers, compared after normalize() (so Traditional forms, casing and trailing
# punctuation/emoji do not matter). Kept small and unambiguous: a longer message is a sentence
# for the intent matcher, not a bare yes/no.
_AFFIRM_WORDS = (
    "是|是的|是啊|是呀|对|对的|对啊|对呀|没错|好|好的|好啊|好呀|好吧|好滴|好嘞|行|行的|行啊|可以|可以的"
    "|要|要的|嗯|嗯嗯|恩|嗯呢|没问题|当然|當然|当然了|当然可以|确定|确认|同意|ok啦|好哒"
    "|yes|yeah|yea|yep|yup|y|ok|okay|okey|k|kk|sure|please|yes please|of course|definitely"
    "|absolutely|certainly|alright|all right|sounds good|go ahead|do it|confirm|correct|right"
    "|why not|👍|👌"
)
_DENY_WORDS = (
    "不|不要|不用|不用了|不是|不对|不行|不好|不可以|不需要|不必|不了|算了|算了吧|别|别了|没有|取消|拒绝"
    "|no|nope|nah|n|not really|no thanks|no thank you|cancel|stop|never mind|nevermind|dont"
    "|dont want|negative|👎"
)
# Emoji normalise to nothing, so they are matched on the raw stripped text instead.
_AFFIRM = frozenset(w for w in map(normalize, _AFFIRM_WORDS.split("|")) if w)
_DENY = frozenset(w for w in map(normalize, _DENY_WORDS.split("|")) if w)
_AFFIRM_EMOJI = frozenset(w for w in _AFFIRM_WORDS.split("|") if not normalize(w))
_DENY_EMOJI = frozenset(w for w in _DENY_WORDS.split("|") if not normalize(w))
# A bare yes/no is short; a longer message is a sentence for the intent matcher.
_MAX_CONFIRMATION_CHARS = 16
_REPEATS = re.compile(r"(.)\1{2,}")


def confirmation(normalized: str, text: str = "") -> Confirmation | None:
    """``'affirm'``/``'deny'`` when a normalised message is only a yes or a no, else None.

    ``text`` (the raw message) is only consulted for a bare 👍/👎, which normalise away.
    """
    if not normalized:
        raw = text.strip().replace("\ufe0f", "")
        if raw in _AFFIRM_EMOJI:
            return "affirm"
        return "deny" if raw in _DENY_EMOJI else None
    if len(normalized) > _MAX_CONFIRMATION_CHARS:
        return None
    if normalized in _AFFIRM:
        return "affirm"
    if normalized in _DENY:
        return "deny"
    if _REPEATS.search(normalized) is None:
        return None
    squeezed = _REPEATS.sub(r"\1", normalized)  # "okkk", "好好好"
    if squeezed in _AFFIRM:
        return "affirm"
    return "deny" if squeezed in _DENY else None


class Understander:
    """Intent, taboo, yes/no and language for messages to one persona.

    Built once per persona (rebuilt on hot reload): the IntentMatcher pools every language's
    examples and keywords, because fans mix languages and the matcher's n-grams do not collide
    across scripts.
    """

    def __init__(self, persona: Persona, *, threshold: float | None = None) -> None:
        self.persona = persona
        examples: dict[str, list[str]] = {}
        keywords: dict[str, list[str]] = {}
        for name, intent in persona.intents.items():
            examples[name] = [p for phrases in intent.examples.values() for p in phrases]
            keywords[name] = [k for words in intent.keywords.values() for k in words]
        if threshold is None:
            threshold = persona.nlu.threshold
        self.matcher = IntentMatcher(examples, keywords, threshold=threshold)
        self._taboo = self._compile_taboo(persona)
        self._taboo_index = PhraseIndex(phrase for phrase, _ in self._taboo)
        self._kinds = {name: intent.kind for name, intent in persona.intents.items()}
        # A hello before the question is not a second question.
        self._greet = "greet" if "greet" in self._kinds else None
        self._other = OtherSubject(
            persona.own_names(),
            (
                persona.text(value, language)
                for value in persona.facts.values()
                for language in persona.languages
            ),
            (
                text
                for intent in persona.intents.values()
                for texts in (*intent.examples.values(), *intent.keywords.values())
                for text in texts
            ),
        )
        # Intents a fan asks about us whatever else the message names ("stop sending me
        # Starbucks-style spam" is still an unsubscribe).
        self._never_other = frozenset(
            name for name in ("unsubscribe", "human", "goodbye", "thanks") if name in self._kinds
        )
        # A refused intent is not a request (不要订阅, "no need to book"), except that stopping
        # something one has ("no more newsletters", 不要再发) is asking for its opposite.
        self._flip = {
            name: "un" + name for name in self._kinds if "un" + name in self._kinds
        }
        self._flipped = frozenset(self._flip.values())
        self._stop_targets = {**self._flip, **{name: name for name in self._flipped}}
        self._blockable = frozenset(
            name
            for name, kind in self._kinds.items()
            if kind in ("question", "flow")
            and name != "complaint"
            and name not in self._flip.values()
        )
        self._complaint = "complaint" if "complaint" in self._kinds else None
        self._flow_not_complaint = frozenset(
            name for name, kind in self._kinds.items() if kind == "flow" and name != "complaint"
        )
        self._facts = [
            (Phrase(word), fact)
            for fact, answer in persona.fact_answers.items()
            if fact in persona.facts
            for words in answer.keywords.values()
            for word in words
        ]
        self._facts = [(phrase, fact) for phrase, fact in self._facts if phrase.text]
        self._fact_index = PhraseIndex(phrase for phrase, _ in self._facts)
        self._fact_intents = {fact: persona.fact_intent(fact) for _, fact in self._facts}

    @staticmethod
    def _compile_taboo(persona: Persona) -> list[tuple[Phrase, str]]:
        """Normalised taboo words; English-edged ones only match whole words."""
        phrases = [
            (Phrase(word), subject)
            for subject, per_language in persona.taboo.subjects.items()
            for words in per_language.values()
            for word in words
        ]
        return [(phrase, subject) for phrase, subject in phrases if phrase.text]

    def taboo(self, normalized: str) -> str | None:
        """The first taboo subject one of whose keywords occurs in a normalised message."""
        found = self._taboo_index.found(normalized)
        return self._taboo[found[0]][1] if found else None

    def language(
        self, text: str, forced_language: str | None = None, fallback_language: str | None = None
    ) -> str:
        """Forced, else detected, else fallback, else the persona default; always spoken."""
        spoken = self.persona.languages
        detected = detect_language(text)
        if detected == "en" and "zh" in spoken and typed_pinyin(normalize(text)):
            detected = "zh"  # "jidian kaimen" is a Chinese speaker without an IME: answer in zh
        for candidate in (forced_language, detected, fallback_language):
            if candidate is not None:
                return candidate if candidate in spoken else self.persona.default_language
        return self.persona.default_language

    def understand(
        self,
        text: str,
        forced_language: str | None = None,
        fallback_language: str | None = None,
    ) -> Understanding:
        """Understand one raw message; never raises for any string."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        language = self.language(text, forced_language, fallback_language)
        source = text[:MAX_ANALYSED_CHARS]
        # Emoji fans use as questions become words in the fan's language ("🕐?" → 几点开门).
        spoken = emoji_words(source, language) if has_emoji_words(source) else source
        normalized = normalize(spoken)
        pieces = clauses(spoken)
        several = self._several(pieces) if len(pieces) > 1 else None
        if several is None:
            decision, also, declined = self._decide(spoken, normalized), (), False
        else:
            decision, also, declined = several
        return Understanding(
            text=text,
            normalized=normalized,
            language=language,
            intent=decision.intent,
            confidence=decision.confidence,
            best=decision.best,
            taboo=self.taboo(normalized) if self._taboo else None,
            confirmation=confirmation(normalized, text),
            rule=decision.rule,
            fact=decision.fact,
            also=also,
            declined=declined,
        )

    def _several(self, pieces: list[str]) -> tuple[_Decision, tuple[str, ...], bool] | None:
        """Two questions in one message: the first clause's intent, and the others' after it.

        Only clauses understood with confidence count; small talk (a "hi" before the question)
        and a clause repeating an intent add nothing. None when fewer than two clauses ask
        something: the whole message is then understood as one.
        """
        found: list[_Decision] = []
        declined = False
        for piece in pieces:
            normalized = normalize(piece)
            decision = self._decide(piece, normalized)
            if decision.rule == "other-subject":
                # Declined on its own only when it is a question of its own ("海底捞几点关门"),
                # not a topic the next clause asks about ("the pub across the street, do they
                # do food").
                declined |= is_question(piece, normalized)
            elif declined and _THIRD_PERSON.search(normalized):
                return None  # "…, 他们家有停车位吗": still about the other business
            if decision.intent is None or decision.intent == self._greet:
                continue
            if decision.rule == "model" and decision.confidence < CLAUSE_CONFIDENCE:
                continue  # a clause is short: only a confident reading counts as a question
            if all(decision.intent != d.intent for d in found):
                found.append(decision)
        asking = [d for d in found if self._kinds.get(d.intent) != "social"]
        # "海底捞几点关门？有停车位吗": the clause about the other business is declined, the
        # question left is ours to answer (rather than declining the whole message).
        if not asking or (len(found) < 2 and not declined):
            return None
        # The first clause that asks something leads; small talk ("thanks!") rides along.
        first = asking[0]
        also = tuple(d.intent for d in found if d is not first)
        return first, also, declined

    def _decide(self, text: str, normalized: str) -> _Decision:
        """Matcher, then the rules that may overrule it: other subject, refusal, implicit
        complaint, fact asked by name (in that order, see the module doc of each)."""
        match = self.matcher.match_normalized(_without_fillers(normalized))
        intent, confidence, best = match.intent, match.confidence, match.best
        kind = self._kinds.get(intent or "")
        fact = self._fact(normalized)
        if intent is None and fact is None:
            # Nothing to answer unless the message complains: no other rule can add an intent,
            # so the costlier checks are skipped for most out-of-scope messages.
            if self._complaint is None or not implicit_complaint(
                normalized, is_question(text, normalized)
            ):
                # "算了不订了", "I won't be coming in today": a refusal of nothing we know is
                # still a refusal, acknowledged rather than answered with "didn't understand".
                if refusal(normalized) is not None and not is_question(text, normalized):
                    if best in self._stop_targets and _STOP.search(normalized):
                        # "please don't message me again": too unsure for the matcher, but
                        # stopping what its best guess names is still stopping it.
                        return _Decision(self._stop_targets[best], confidence, best, "negation")
                    return _Decision(None, confidence, best, "negation")
                return _Decision(None, confidence, best, "none")
            rule = "none"
        elif intent is not None and intent in self.matcher.keyword_hits(normalized):
            rule = "keyword"
        else:
            rule = "model" if intent is not None else "none"
        # "你能帮我订机票吗" reads as a question about the bot itself, but asks for another service.
        other_ok = (kind != "social" or intent == "identity") and intent not in self._never_other
        if other_ok and self._other.find(normalized, text) is not None:
            return _Decision(None, confidence, best, "other-subject")
        if (
            intent is not None
            and intent == self._complaint
            and (
                (rule == "model" and praise_only(normalized))
                or (off_target(normalized) and not _SAYS_COMPLAINT.search(normalized))
            )
        ):
            # The model reads any negative or emphatic message as a complaint; one about the
            # traffic, or praising us, is not (a complaint keyword still decides alone).
            return _Decision(None, confidence, best, "none")
        if intent is not None and kind != "social":
            cue = refusal(normalized)
            if cue is not None:
                if intent == self._complaint:
                    if _NOT_COMPLAINING.search(normalized) or (
                        rule == "model"
                        and implicit_complaint(normalized, is_question(text, normalized)) is None
                    ):
                        # "not coming today, sorry": the model hears an apology as a complaint;
                        # a refusal with no word of displeasure is a decline.
                        return _Decision(None, confidence, best, "negation")
                elif intent in self._flip and _STOP.search(normalized):
                    return _Decision(self._flip[intent], confidence, best, "negation")
                elif intent in self._flipped and rule == "model" and not _STOP.search(normalized):
                    # "不用了", "nah I don't want the newsletter": declining, not stopping.
                    return _Decision(None, confidence, best, "negation")
                elif (
                    intent in self._blockable
                    and (
                        kind == "flow"
                        or (cue not in _CANCEL and not is_question(text, normalized))
                    )
                    and not self._asked_elsewhere(text, intent)
                ):
                    return _Decision(None, confidence, best, "negation")
        if intent == "thanks" and _DECLINE.match(normalized):
            # "不用了谢谢", "no thanks": declining an offer politely, not thanking for help.
            return _Decision(None, confidence, best, "negation")
        if (
            kind == "question"
            and rule == "model"
            and praise_only(normalized)
            and not is_question(text, normalized)
        ):
            # "老王的回锅肉绝了": praise names a dish but asks nothing about it.
            return _Decision(None, confidence, best, "none")
        if kind == "social" and _TRANSLATE.search(normalized):
            # "translate 'thank you'": the phrase is quoted, not said to us.
            return _Decision(None, confidence, best, "other-subject")
        if kind == "social" and normalized in _BARE_CONFIRMATIONS:
            # "ok", "好的": an acknowledgement, not small talk to answer.
            return _Decision(None, confidence, best, "none")
        if self._complaint is not None and intent not in self._flow_not_complaint:
            level = implicit_complaint(normalized, is_question(text, normalized))
            if (
                level is not None
                and (level == "strong" or intent is None or kind == "question")
                and (level == "strong" or not off_target(normalized))
            ):
                return _Decision(
                    self._complaint, max(confidence, COMPLAINT_CONFIDENCE), best, "complaint"
                )
        if fact is not None:
            owner = self._fact_intents.get(fact)
            if intent is None and owner is not None:
                if _size(normalized) > _MAX_FACT_STATEMENT and not (
                    is_question(text, normalized) or _ASKS.search(normalized)
                ):
                    # "今天地铁太挤了累死" names the metro but asks nothing about it.
                    return _Decision(None, confidence, best, "none")
                return _Decision(owner, FACT_CONFIDENCE, best, "fact", fact)
            if intent == owner or (owner is None and rule == "model"):
                # A fact no intent carries beats a guess of the model (not a keyword).
                return _Decision(owner, confidence, best, "fact", fact)
        return _Decision(intent, confidence, best, rule)

    def _asked_elsewhere(self, text: str, intent: str) -> bool:
        """Whether a piece of the message without any refusal still asks for ``intent``:
        "别机器人了 找个人跟我聊" refuses the bot, not the human."""
        pieces = [normalize(piece) for piece in _PIECES.split(text)]
        rest = " ".join(piece for piece in pieces if piece and refusal(piece) is None)
        return bool(rest) and self.matcher.match_normalized(rest).intent == intent

    def _fact(self, normalized: str) -> str | None:
        """The first fact one of whose keywords the message names."""
        if not self._facts:
            return None
        found = self._fact_index.found(normalized)
        return self._facts[found[0]][1] if found else None

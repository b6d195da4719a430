"""The persona model: what a brand's voice file may say, validated by pydantic.

A persona is data, not code. Every field here has a default or is required for a reason, and
unknown fields are rejected (``extra="forbid"``) so a typo such as ``catchphrase:`` instead of
``catchphrases:`` is reported with its line instead of being silently ignored.

Text that differs per language is a ``Localized`` mapping ``{zh: ..., en: ...}``. A plain string
is accepted where one text serves every language (a phone number, a URL).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# One list for every layer (bot/messages.py); imported from here by the persona's neighbours.
from bot.messages import LANGUAGES as LANGUAGES

Language = Literal["zh", "en"]
STAGES: tuple[str, ...] = ("stranger", "acquaintance", "friend", "loyal", "advocate")
Stage = Literal["stranger", "acquaintance", "friend", "loyal", "advocate"]

# One text, or one text per language.
Localized = str | dict[Language, str]
# Several texts per language (example phrases, reply variants, keywords).
PerLanguage = dict[Language, list[str]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identity(_Strict):
    """Who is talking: the persona's name, how it calls itself and how it addresses fans."""

    name: Localized = Field(description="The persona's name, e.g. {zh: 老王, en: Lao Wang}.")
    self_reference: Localized | None = Field(
        None, description="How the persona refers to itself in replies ({me}); defaults to name."
    )
    fan_address: Localized = Field(
        default_factory=lambda: {"zh": "朋友", "en": "friend"},
        description="How the persona addresses a fan whose name it does not know ({fan}).",
    )
    aliases: list[str] = Field(
        default_factory=list,
        description="Other names that mean us: branches, old names, nicknames. A question "
        "about one of them is never treated as a question about another business.",
    )


class Voice(_Strict):
    """Tone and the words the persona uses, or never uses."""

    tone: list[str] = Field(default_factory=list, description="Tone words, e.g. [warm, playful].")
    catchphrases: PerLanguage = Field(
        default_factory=dict, description="Signature phrases; templates may use {catchphrase}."
    )
    emoji: Literal["none", "light", "lots"] = Field(
        "light", description="How many emoji the persona uses; 'none' strips them from replies."
    )
    sign_off: Localized | None = Field(None, description="Sign-off line; templates use {sign_off}.")
    we_are: list[str] = Field(default_factory=list, description="What the brand voice is.")
    we_are_not: list[str] = Field(default_factory=list, description="What it never sounds like.")
    banned_words: list[str] = Field(
        default_factory=list, description="Words no reply may contain (checked by brandbot check)."
    )


class Intent(_Strict):
    """Something fans want, recognised from example phrases and keywords."""

    examples: PerLanguage = Field(description="Example fan phrases per language.")
    keywords: PerLanguage = Field(
        default_factory=dict,
        description="Words that strongly signal this intent (matched after normalisation).",
    )
    reply: str | None = Field(
        None,
        description="Reply key answered when the dialog has no transition for this intent "
        "(defaults to a reply with the intent's own name, if there is one).",
    )
    kind: Literal["question", "social", "flow"] = Field(
        "question",
        description="question = a fact question (counts as a question interaction); "
        "social = small talk; flow = drives the dialog (subscribe, complaint…).",
    )


class FactAnswer(_Strict):
    """A fact that can answer a question on its own ("wifi password?", "gluten?", "dogs?").

    When a fan asks about it, the bot says just this fact (in the ``fact_answer`` reply's
    framing) instead of the paragraph of a whole intent or the fallback.
    """

    keywords: PerLanguage = Field(
        description="Words that ask about this fact (matched after normalisation), e.g. "
        "{zh: [密码, 无线网], en: [wifi, password]}."
    )
    intent: str | None = Field(
        None,
        description="The intent this fact belongs to (defaults to the first intent whose reply "
        "uses the fact); a fan asking about the fact is understood as asking that intent.",
    )
    always_include: bool = Field(
        False,
        description="A safety fact: every variant of a reply that uses it must use it "
        "(`brandbot check` reports the variants that leave it out). allergens always is.",
    )


class Taboo(_Strict):
    """Subjects the persona will not discuss, and how it steps around them."""

    subjects: dict[str, PerLanguage] = Field(
        default_factory=dict, description="Subject name → keywords per language."
    )
    deflection: str = Field("taboo", description="Reply key used to deflect a taboo subject.")


class Relationship(_Strict):
    """How a fan's score grows and decays, and where each stage begins."""

    points: dict[str, float] = Field(
        default_factory=lambda: {
            "message": 1.0,
            "question": 1.0,
            "subscribe": 5.0,
            "referral": 10.0,
            "complaint": -2.0,
        },
        description="What each interaction kind is worth: message, question, subscribe, "
        "referral, complaint, offer_accepted…",
    )
    stages: dict[Stage, float] = Field(
        default_factory=lambda: {"acquaintance": 3, "friend": 12, "loyal": 40, "advocate": 100},
        description="Score at which each stage begins (stranger starts at 0).",
    )
    half_life_days: float = Field(
        30.0, gt=0, description="Days after which an untouched score has decayed to half."
    )
    kol_threshold: float | None = Field(
        50.0,
        gt=0,
        description="Influence (docs/relationships.md, KOLs) at which a fan gets the `kol` tag "
        "automatically; the tag goes again below 80% of it. null switches automatic tagging off.",
    )

    @field_validator("stages")
    @classmethod
    def _stages_ascend(cls, stages: dict[str, float]) -> dict[str, float]:
        ordered = [s for s in STAGES if s in stages]
        values = [stages[s] for s in ordered]
        if values != sorted(values):
            raise ValueError(
                "stage thresholds must grow from acquaintance to advocate; "
                f"got {dict(zip(ordered, values, strict=True))}"
            )
        return stages


class Commercial(_Strict):
    """When the persona may sell: relationship first, offers later and rarely."""

    min_stage: Stage = Field(
        "friend", description="A fan must be at this stage or above before offers are made."
    )
    max_offers_per_week: int = Field(
        1, ge=0, description="At most this many offers per fan a week."
    )


class Desk(_Strict):
    """The operator desk: how long a human may leave a handed-off conversation unanswered."""

    handoff_timeout_minutes: float | None = Field(
        240.0,
        gt=0,
        description="A handoff with no operator reply for this long (since it began or since "
        "the last operator reply) goes back to the bot, which says its `handoff_end` reply; "
        "null = never.",
    )


class Topic(_Strict):
    """A newsletter the daemon sends by itself on a date (the topic calendar)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Stable id, e.g. mid-autumn.")
    date: dt.date = Field(description="Day to send it (YYYY-MM-DD).")
    time: str = Field("10:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                      description="Time of day to send it (HH:MM), in the persona's `timezone`.")
    text: Localized = Field(description="The newsletter, one text per language.")
    audience: str = Field("all", description="Audience expression (docs/relationships.md).")

    @field_validator("audience")
    @classmethod
    def _audience_reads(cls, value: str) -> str:
        from bot.persona.audience import AudienceError, read

        try:
            read(value)
        except AudienceError as exc:
            raise ValueError(str(exc)) from None
        return value

    def at(self, zone: dt.tzinfo = dt.UTC) -> dt.datetime:
        """When it is due, in UTC, for a persona living in ``zone`` (``Persona.zone``)."""
        hour, minute = map(int, self.time.split(":"))
        local = dt.datetime.combine(self.date, dt.time(hour, minute), tzinfo=zone)
        return local.astimezone(dt.UTC)


class NluSettings(_Strict):
    """Tuning for intent matching; the defaults were chosen on held-out data."""

    threshold: float | None = Field(
        None, ge=0, le=1, description="Confidence below which the fallback answers."
    )


class Persona(_Strict):
    """A brand's voice: identity, facts, intents, replies, relationship and commercial rules."""

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Stable id, e.g. laowang-kitchen."
    )
    version: str | int = Field(1, description="Bump when you change the persona; shown in logs.")
    brand: Localized = Field(description="Brand name.")
    dialog: str = Field("default", description="Dialog id (file name in dialogs/ without .yaml).")
    languages: list[Language] = Field(default_factory=lambda: ["zh", "en"], min_length=1)
    default_language: Language = "zh"
    identity: Identity
    voice: Voice = Field(default_factory=Voice)
    facts: dict[str, Localized] = Field(
        default_factory=dict, description="Free keys: hours, address, parking, prices, menu…"
    )
    fact_answers: dict[str, FactAnswer] = Field(
        default_factory=dict,
        description="Fact key → the words that ask for that fact alone (answered with the "
        "`fact_answer` reply, whose templates use {fact}).",
    )
    intents: dict[str, Intent] = Field(description="Intent name → examples and keywords.")
    replies: dict[str, PerLanguage] = Field(
        description="Reply key → variants per language. Templates may use {fact_key}, {fan}, "
        "{me}, {brand}, {sign_off}, {catchphrase}."
    )
    taboo: Taboo = Field(default_factory=Taboo)
    relationship: Relationship = Field(default_factory=Relationship)
    commercial: Commercial = Field(default_factory=Commercial)
    nlu: NluSettings = Field(default_factory=NluSettings)
    desk: Desk = Field(default_factory=Desk)
    calendar: list[Topic] = Field(
        default_factory=list,
        description="Topics sent as newsletters on their date (`brandbot calendar`).",
    )
    timezone: str | None = Field(
        None,
        description="IANA time zone of the brand (Asia/Shanghai, Europe/Berlin…): calendar "
        "times are read in it. Default: Asia/Shanghai when default_language is zh, else UTC.",
    )
    menu_clicks: dict[str, str] = Field(
        default_factory=dict,
        description="Channel menu button key → intent name or reply key (WeChat CLICK events).",
    )

    @field_validator("calendar")
    @classmethod
    def _topic_ids_unique(cls, topics: list[Topic]) -> list[Topic]:
        ids = [t.id for t in topics]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"calendar topic ids must be unique; repeated: {repeated}")
        return topics

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zone_named(value)
        except (ValueError, LookupError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai, "
                "Asia/Hong_Kong or Europe/London (未知时区，请写 IANA 名称，如 Asia/Shanghai)"
            ) from None
        return value

    @property
    def zone(self) -> dt.tzinfo:
        """The brand's time zone (``timezone``, else the documented default)."""
        return zone_named(self.timezone or default_timezone(self.default_language))

    @model_validator(mode="after")
    def _default_language_is_spoken(self) -> Persona:
        if self.default_language not in self.languages:
            raise ValueError(
                f"default_language {self.default_language!r} is not in languages "
                f"{self.languages}; add it to languages or pick one of them"
            )
        return self

    def own_names(self) -> list[str]:
        """Every name that means us: brand, identity name and self-reference, aliases."""
        names: list[str] = []
        for value in (self.brand, self.identity.name, self.identity.self_reference):
            if isinstance(value, str):
                names.append(value)
            elif value:
                names += value.values()
        return names + list(self.identity.aliases)

    def fact_intent(self, fact: str) -> str | None:
        """The intent a fact answer belongs to: declared, else the first question intent whose
        reply uses it (a complaint reply giving the phone number does not make it a complaint)."""
        answer = self.fact_answers.get(fact)
        if answer is not None and answer.intent:
            return answer.intent
        field = "{" + fact + "}"
        for name, intent in self.intents.items():
            if intent.kind != "question":
                continue
            key = self.reply_key_for(name)
            variants = self.replies.get(key or "", {})
            if any(field in text for texts in variants.values() for text in texts):
                return name
        return None

    def safety_facts(self) -> set[str]:
        """Facts every variant of a reply using them must carry: allergens and always_include."""
        marked = {key for key, answer in self.fact_answers.items() if answer.always_include}
        return marked | ({"allergens"} & set(self.facts))

    def reply_key_for(self, intent: str) -> str | None:
        """The reply answered for ``intent`` when the dialog does not handle it."""
        spec = self.intents.get(intent)
        if spec is not None and spec.reply:
            return spec.reply
        return intent if intent in self.replies else None

    def text(self, value: Localized | None, language: str) -> str:
        """Pick the ``language`` text of a Localized value, falling back to the default."""
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return value.get(language) or value.get(self.default_language) or next(iter(value.values()))


def default_timezone(default_language: str) -> str:
    """Asia/Shanghai for Chinese-first personas (our operators' brands), else UTC."""
    return "Asia/Shanghai" if default_language == "zh" else "UTC"


def zone_named(name: str) -> dt.tzinfo:
    """The IANA zone ``name``; ValueError/LookupError when unknown (tzdata ships them all)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError as exc:
        raise LookupError(name) from exc


# Reply keys the engine itself may need; a persona must define them (checked by lint).
REQUIRED_REPLIES: tuple[str, ...] = ("welcome", "fallback", "clarify", "error")

"""Checks a persona file beyond its shape: what pydantic cannot know.

Each check returns located :class:`~bot.errors.Problem` objects phrased as the fix: a reply key
missing a variant for one of the persona's languages, a template naming a fact that does not
exist, a reply containing a banned word, an intent pointing at a missing reply, a menu click
naming nothing.
"""

from __future__ import annotations

from bot.errors import Problem
from bot.i18n import _
from bot.persona.model import REQUIRED_REPLIES, STAGES, Persona
from bot.persona.voice import BUILTIN_FIELDS, FACT_ANSWER_REPLY, template_fields
from bot.yaml_source import Positions, problem_at


def lint_persona(persona: Persona, positions: Positions, path: str) -> list[Problem]:
    problems: list[Problem] = []

    def bad(where: tuple, message: str) -> None:
        problems.append(problem_at(path, positions, where, message))

    known_fields = set(persona.facts) | set(BUILTIN_FIELDS)
    banned = [w for w in persona.voice.banned_words if w.strip()]
    for key in REQUIRED_REPLIES:
        if key not in persona.replies:
            bad(
                ("replies",),
                _(
                    "reply key {key!r} is missing; the engine needs it — add variants for "
                    "{languages}"
                ).format(key=key, languages=', '.join(persona.languages)),
            )
    for key, per_language in persona.replies.items():
        for language in persona.languages:
            if not per_language.get(language):
                bad(
                    ("replies", key),
                    _(
                        "no {language} variant for reply {key!r}; add `{language}: [...]` so "
                        "{language}-speaking fans get an answer"
                    ).format(language=language, key=key),
                )
        for language, variants in per_language.items():
            for i, template in enumerate(variants):
                where = ("replies", key, language, i)
                try:
                    names = template_fields(template)
                except ValueError as exc:
                    bad(where, _(
                        "malformed template ({exc}); write literal braces as {{{{ and }}}}"
                    ).format(exc=exc))
                    continue
                for name in names:
                    base = name.split(".")[0].split("[")[0]
                    if base == "fact" and key == FACT_ANSWER_REPLY:
                        continue  # the fact being answered, filled in per fact
                    if base not in known_fields:
                        bad(
                            where,
                            _(
                                "template names {{{name}}} but there is no fact {base!r}; "
                                "add it under facts or use one of: {known}"
                            ).format(name=name, base=base, known=', '.join(sorted(known_fields))),
                        )
                lowered = template.casefold()
                for word in banned:
                    if word.casefold() in lowered:
                        bad(where, _(
                            "contains the banned word {word!r}; rephrase the reply"
                        ).format(word=word))
    for where, text in _voiced_texts(persona):
        for word in banned:
            if word.casefold() in text.casefold():
                bad(
                    where,
                    _(
                        "contains the banned word {word!r}; it would appear in replies — "
                        "rephrase it"
                    ).format(word=word),
                )
    problems += _fact_problems(persona, bad)
    missing = [s for s in STAGES[1:] if s not in persona.relationship.stages]
    if missing:
        bad(
            ("relationship", "stages"),
            _(
                "no threshold for {missing}; give every stage a score ({stages}) or fans can "
                "never reach it"
            ).format(missing=', '.join(missing), stages=', '.join(STAGES[1:])),
        )
    for name, intent in persona.intents.items():
        if intent.reply and intent.reply not in persona.replies:
            bad(
                ("intents", name, "reply"),
                _(
                    "reply key {reply!r} is not defined; add it under replies"
                ).format(reply=intent.reply),
            )
        if not any(intent.examples.get(lang) for lang in persona.languages):
            bad(
                ("intents", name, "examples"),
                _(
                    "intent {name!r} has no examples in {languages}; add at least a few per "
                    "language"
                ).format(name=name, languages=', '.join(persona.languages)),
            )
    if persona.taboo.subjects and persona.taboo.deflection not in persona.replies:
        bad(
            ("taboo", "deflection"),
            _(
                "reply key {deflection!r} is not defined; add it under replies"
            ).format(deflection=persona.taboo.deflection),
        )
    for button, target in persona.menu_clicks.items():
        if target not in persona.intents and target not in persona.replies:
            bad(("menu_clicks", button), _(
                "{target!r} is neither an intent nor a reply key"
            ).format(target=target))
    return problems


def _fact_problems(persona: Persona, bad) -> list[Problem]:
    """Fact answers that name nothing, and safety facts some reply variants leave out.

    Reports through ``bad`` and returns nothing of its own (an empty list, for symmetry).
    """
    for fact, answer in persona.fact_answers.items():
        if fact not in persona.facts:
            bad(("fact_answers", fact), _(
                "there is no fact {fact!r}; add it under facts"
            ).format(fact=fact))
        if answer.intent and answer.intent not in persona.intents:
            bad(("fact_answers", fact, "intent"), _(
                "{intent!r} is not an intent"
            ).format(intent=answer.intent))
        if not any(answer.keywords.get(lang) for lang in persona.languages):
            bad(
                ("fact_answers", fact, "keywords"),
                _(
                    "no keywords in {languages}; fans could never ask for it"
                ).format(languages=', '.join(persona.languages)),
            )
    for key, per_language in persona.replies.items():
        for fact in sorted(persona.safety_facts()):
            field = "{" + fact + "}"
            uses = [
                (language, i)
                for language, variants in per_language.items()
                for i, text in enumerate(variants)
                if field in text
            ]
            if not uses:
                continue
            for language, variants in per_language.items():
                for i, text in enumerate(variants):
                    if field not in text:
                        bad(
                            ("replies", key, language, i),
                            _(
                                "safety fact {{{fact}}} is missing from this variant but "
                                "other variants of {key!r} say it; a fan must hear it every "
                                "time — add it"
                            ).format(fact=fact, key=key),
                        )
    return []


def _voiced_texts(persona: Persona):
    """Texts besides reply templates that end up in replies: facts, catchphrases, sign-off."""
    for key, value in persona.facts.items():
        texts = {None: value} if isinstance(value, str) else value
        for language, text in texts.items():
            yield ("facts", key) + ((language,) if language else ()), text
    for language, phrases in persona.voice.catchphrases.items():
        for i, text in enumerate(phrases):
            yield ("voice", "catchphrases", language, i), text
    sign_off = persona.voice.sign_off
    for language, text in (
        {None: sign_off} if isinstance(sign_off, str) else sign_off or {}
    ).items():
        yield ("voice", "sign_off") + ((language,) if language else ()), text

"""Checks a persona file beyond its shape: what pydantic cannot know.

Each check returns located :class:`~bot.errors.Problem` objects phrased as the fix: a reply key
missing a variant for one of the persona's languages, a template naming a fact that does not
exist, a reply containing a banned word, an intent pointing at a missing reply, a menu click
naming nothing.
"""

from __future__ import annotations

from bot.errors import Problem
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
                f"reply key {key!r} is missing; the engine needs it — add variants "
                f"for {', '.join(persona.languages)}",
            )
    for key, per_language in persona.replies.items():
        for language in persona.languages:
            if not per_language.get(language):
                bad(
                    ("replies", key),
                    f"no {language} variant for reply {key!r}; add "
                    f"`{language}: [...]` so {language}-speaking fans get an answer",
                )
        for language, variants in per_language.items():
            for i, template in enumerate(variants):
                where = ("replies", key, language, i)
                try:
                    names = template_fields(template)
                except ValueError as exc:
                    bad(where, f"malformed template ({exc}); write literal braces as {{{{ and }}}}")
                    continue
                for name in names:
                    base = name.split(".")[0].split("[")[0]
                    if base == "fact" and key == FACT_ANSWER_REPLY:
                        continue  # the fact being answered, filled in per fact
                    if base not in known_fields:
                        bad(
                            where,
                            f"template names {{{name}}} but there is no fact {base!r}; "
                            f"add it under facts or use one of: {', '.join(sorted(known_fields))}",
                        )
                lowered = template.casefold()
                for word in banned:
                    if word.casefold() in lowered:
                        bad(where, f"contains the banned word {word!r}; rephrase the reply")
    for where, text in _voiced_texts(persona):
        for word in banned:
            if word.casefold() in text.casefold():
                bad(
                    where,
                    f"contains the banned word {word!r}; it would appear in replies — rephrase it",
                )
    problems += _fact_problems(persona, bad)
    missing = [s for s in STAGES[1:] if s not in persona.relationship.stages]
    if missing:
        bad(
            ("relationship", "stages"),
            f"no threshold for {', '.join(missing)}; give every stage "
            f"a score ({', '.join(STAGES[1:])}) or fans can never reach it",
        )
    for name, intent in persona.intents.items():
        if intent.reply and intent.reply not in persona.replies:
            bad(
                ("intents", name, "reply"),
                f"reply key {intent.reply!r} is not defined; add it under replies",
            )
        if not any(intent.examples.get(lang) for lang in persona.languages):
            bad(
                ("intents", name, "examples"),
                f"intent {name!r} has no examples in "
                f"{', '.join(persona.languages)}; add at least a few per language",
            )
    if persona.taboo.subjects and persona.taboo.deflection not in persona.replies:
        bad(
            ("taboo", "deflection"),
            f"reply key {persona.taboo.deflection!r} is not defined; add it under replies",
        )
    for button, target in persona.menu_clicks.items():
        if target not in persona.intents and target not in persona.replies:
            bad(("menu_clicks", button), f"{target!r} is neither an intent nor a reply key")
    return problems


def _fact_problems(persona: Persona, bad) -> list[Problem]:
    """Fact answers that name nothing, and safety facts some reply variants leave out.

    Reports through ``bad`` and returns nothing of its own (an empty list, for symmetry).
    """
    for fact, answer in persona.fact_answers.items():
        if fact not in persona.facts:
            bad(("fact_answers", fact), f"there is no fact {fact!r}; add it under facts")
        if answer.intent and answer.intent not in persona.intents:
            bad(("fact_answers", fact, "intent"), f"{answer.intent!r} is not an intent")
        if not any(answer.keywords.get(lang) for lang in persona.languages):
            bad(
                ("fact_answers", fact, "keywords"),
                f"no keywords in {', '.join(persona.languages)}; fans could never ask for it",
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
                            f"safety fact {{{fact}}} is missing from this variant but other "
                            f"variants of {key!r} say it; a fan must hear it every time — add it",
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

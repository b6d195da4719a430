"""Prometheus metrics of the daemon (``GET /metrics``), on a registry of its own.

Each daemon owns a :class:`Metrics` (not the global registry), so tests can start several
daemons in one process. Names and labels are listed in docs/configuration.md#metrics.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from bot.engine import Turn

# A turn takes ~0.3 ms; the buckets resolve that and still show a slow disk (FULL sync, ~4 ms).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series double the output for no use here
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.messages_in = Counter(
            "brandbot_messages_in", "Fan messages received.", ["channel", "persona"], registry=r
        )
        self.messages_out = Counter(
            "brandbot_messages_out", "Replies sent.", ["channel", "persona"], registry=r
        )
        self.intents = Counter(
            "brandbot_intents",
            "Understood intents of fan messages.",
            ["persona", "intent"],
            registry=r,
        )
        self.fallbacks = Counter(
            "brandbot_fallbacks",
            "Turns answered with the fallback reply.",
            ["persona"],
            registry=r,
        )
        self.handoffs = Counter(
            "brandbot_handoffs", "Conversations handed to a human.", ["persona"], registry=r
        )
        self.turn_seconds = Histogram(
            "brandbot_turn_seconds",
            "Time to answer one fan message (engine turn).",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "brandbot_reloads", "Persona reloads that went live.", ["persona"], registry=r
        )
        self.reload_failures = Counter(
            "brandbot_reload_failures",
            "Persona reloads refused (invalid files).",
            ["persona"],
            registry=r,
        )
        self.turns_waited = Counter(
            "brandbot_turns_waited",
            "Turns run in a thread because the database or the fan was busy when they came.",
            registry=r,
        )
        self.errors = Counter(
            "brandbot_errors",
            "Errors: failed turns, rejected requests, internal errors, turns not logged (disk "
            "full), client aborts, read timeouts, requests over the connection cap.",
            ["kind"],
            registry=r,
        )
        self.persona_info = Gauge(
            "brandbot_persona_info",
            "Loaded personas (value 1) and their versions.",
            ["persona", "version"],
            registry=r,
        )
        self.start_time = Gauge(
            "brandbot_start_time_seconds", "Unix time the daemon started.", registry=r
        )
        self.start_time.set(time.time())
        # .labels() converts, locks and looks up on every call: each turn's children are kept
        # here. Each is still created by .labels() on first use, exactly when it was before (an
        # unused series never shows up in /metrics), and these metrics never remove children.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def set_persona(self, persona: str, version: Any, previous: Any = None) -> None:
        if previous is not None and str(previous) != str(version):
            with contextlib.suppress(KeyError):
                self.persona_info.remove(persona, str(previous))
        self.persona_info.labels(persona, str(version)).set(1)

    def observe_turn(self, channel: str, persona: str, seconds: float, turn: Turn) -> None:
        replies, outcome = turn.replies, turn.outcome
        self._child(self.messages_in, channel, persona).inc()
        if replies:
            self._child(self.messages_out, channel, persona).inc(len(replies))
        self._child(self.turn_seconds, channel).observe(seconds)
        if outcome is None:  # answered from the log (a repeated message id)
            return
        if outcome.intent:
            self._child(self.intents, persona, outcome.intent).inc()
        if outcome.fallback:
            self.fallbacks.labels(persona).inc()
        if outcome.handoff:
            self.handoffs.labels(persona).inc()
        if outcome.failed:
            self.errors.labels("turn").inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        child = self._children.get((metric, labels))
        if child is None:
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)

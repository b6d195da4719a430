"""Measure an Understander or IntentMatcher on labelled messages.

Used by the CLINC150 bench and by persona authors checking their example phrases: a bot that
answers the wrong intent confidently is worse than one that says "sorry?", so in-scope accuracy
and out-of-scope (None) recall/precision are reported separately, with the confusions that a
persona author can fix by adding examples.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["EvalReport", "evaluate"]


class _Understands(Protocol):
    def understand(self, text: str) -> Any: ...


class _Matches(Protocol):
    def match(self, text: str) -> Any: ...


@dataclass(frozen=True)
class EvalReport:
    """Metrics of one evaluation run; rates are fractions in [0, 1] (0 when undefined)."""

    n: int
    n_in_scope: int
    n_out_of_scope: int
    accuracy: float
    in_scope_accuracy: float
    oos_recall: float
    oos_precision: float
    mean_us: float
    confusions: tuple[tuple[str, str, int], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (None intents are written as "(none)" in confusions)."""
        return {
            "n": self.n,
            "n_in_scope": self.n_in_scope,
            "n_out_of_scope": self.n_out_of_scope,
            "accuracy": self.accuracy,
            "in_scope_accuracy": self.in_scope_accuracy,
            "oos_recall": self.oos_recall,
            "oos_precision": self.oos_precision,
            "mean_us": self.mean_us,
            "confusions": [
                {"expected": e, "predicted": p, "count": c} for e, p, c in self.confusions
            ],
        }

    def format_text(self) -> str:
        """A short human-readable report for the terminal."""
        lines = [
            f"messages            {self.n} ({self.n_in_scope} in scope, "
            f"{self.n_out_of_scope} out of scope)",
            f"overall accuracy    {self.accuracy:.1%}",
            f"in-scope accuracy   {self.in_scope_accuracy:.1%}",
            f"out-of-scope recall {self.oos_recall:.1%}  precision {self.oos_precision:.1%}",
            f"time per message    {self.mean_us:.1f} µs",
        ]
        if self.confusions:
            lines.append("most confused (expected → predicted: count)")
            lines += [f"  {e} → {p}: {c}" for e, p, c in self.confusions]
        return "\n".join(lines)


_NONE = "(none)"


def _predictor(model: _Understands | _Matches):
    if hasattr(model, "understand"):
        return lambda text: model.understand(text).intent
    if hasattr(model, "match"):
        return lambda text: model.match(text).intent
    raise TypeError(f"expected an Understander or IntentMatcher, got {type(model).__name__}")


def evaluate(model: _Understands | _Matches, rows: Iterable[dict[str, Any]]) -> EvalReport:
    """Run ``model`` on ``rows`` ({"text": str, "intent": name or None}) and score it.

    Out-of-scope rows (intent None) are right only when the prediction is None; in-scope rows
    predicted None count as wrong. Time is wall-clock per call, including normalisation.
    """
    predict = _predictor(model)
    clock = time.perf_counter_ns
    n = n_in = right = right_in = oos_right = none_predicted = 0
    elapsed = 0
    confusions: Counter[tuple[str, str]] = Counter()
    for row in rows:
        expected = row.get("intent")
        start = clock()
        predicted = predict(row["text"])
        elapsed += clock() - start
        n += 1
        if predicted is None:
            none_predicted += 1
        if expected is None:
            if predicted is None:
                oos_right += 1
                right += 1
            else:
                confusions[(_NONE, predicted)] += 1
        else:
            n_in += 1
            if predicted == expected:
                right_in += 1
                right += 1
            else:
                confusions[(expected, _NONE if predicted is None else predicted)] += 1
    n_oos = n - n_in
    return EvalReport(
        n=n,
        n_in_scope=n_in,
        n_out_of_scope=n_oos,
        accuracy=right / n if n else 0.0,
        in_scope_accuracy=right_in / n_in if n_in else 0.0,
        oos_recall=oos_right / n_oos if n_oos else 0.0,
        oos_precision=oos_right / none_predicted if none_predicted else 0.0,
        mean_us=elapsed / n / 1000 if n else 0.0,
        confusions=tuple(
            (e, p, c)
            for (e, p), c in sorted(confusions.items(), key=lambda item: (-item[1], item[0]))[:10]
        ),
    )

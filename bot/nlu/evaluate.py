"""Measure an Understander or IntentMatcher on labelled messages.

Used by the benches and by persona authors checking their example phrases: a bot that answers
the wrong intent confidently is worse than one that says "sorry?", so in-scope accuracy and
out-of-scope (None) recall/precision are reported separately, with the confusions that a
persona author can fix by adding examples, every message's result (what was expected, what
was understood, how confidently, in which language and which rule decided), the same metrics
grouped by any extra field of the rows (``by="cat"``), and what other thresholds would give.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.nlu.normalize import detect_language

__all__ = ["EvalReport", "GroupScore", "evaluate"]

# Thresholds tried for the "what a different threshold would give" table, beside the one in use.
WHAT_IF_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


class _Understands(Protocol):
    def understand(self, text: str) -> Any: ...


class _Matches(Protocol):
    def match(self, text: str) -> Any: ...


@dataclass(frozen=True)
class GroupScore:
    """Metrics of the rows sharing one value of a field (or all rows, or one threshold)."""

    n: int
    n_in_scope: int
    accuracy: float
    in_scope_accuracy: float
    oos_recall: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_in_scope": self.n_in_scope,
            "accuracy": self.accuracy,
            "in_scope_accuracy": self.in_scope_accuracy,
            "oos_recall": self.oos_recall,
        }


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
    p50_us: float = 0.0
    threshold: float | None = None
    threshold_source: str | None = None
    what_if: tuple[tuple[float, GroupScore], ...] = ()
    by: str | None = None
    groups: tuple[tuple[str, GroupScore], ...] = ()
    results: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (None intents are written as "(none)" in confusions)."""
        out: dict[str, Any] = {
            "n": self.n,
            "n_in_scope": self.n_in_scope,
            "n_out_of_scope": self.n_out_of_scope,
            "accuracy": self.accuracy,
            "in_scope_accuracy": self.in_scope_accuracy,
            "oos_recall": self.oos_recall,
            "oos_precision": self.oos_precision,
            "mean_us": self.mean_us,
            "p50_us": self.p50_us,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "what_if": [{"threshold": t, **s.to_dict()} for t, s in self.what_if],
            "confusions": [
                {"expected": e, "predicted": p, "count": c} for e, p, c in self.confusions
            ],
            "results": list(self.results),
        }
        if self.by is not None:
            out["by"] = self.by
            out["groups"] = {value: s.to_dict() for value, s in self.groups}
        return out

    def format_text(self) -> str:
        """A short human-readable report for the terminal (English and Chinese labels)."""
        lines = [
            f"messages 消息          {self.n} ({self.n_in_scope} in scope 范围内, "
            f"{self.n_out_of_scope} out of scope 范围外)",
            f"overall accuracy 总准确率   {self.accuracy:.1%}",
            f"in-scope accuracy 范围内准确率 {self.in_scope_accuracy:.1%}",
            f"out-of-scope recall 范围外召回 {self.oos_recall:.1%}  "
            f"precision 精确率 {self.oos_precision:.1%}",
            f"time per message 每条耗时  mean {self.mean_us:.1f} µs, p50 {self.p50_us:.1f} µs",
        ]
        if self.threshold is not None:
            lines.append(
                f"threshold 阈值          {self.threshold:.3f} ({self.threshold_source}; "
                "set nlu.threshold in the persona to override 可在人设 nlu.threshold 覆盖)"
            )
        if self.what_if:
            lines.append(
                "with another threshold 换阈值:  in-scope 范围内 / out-of-scope recall 范围外召回"
            )
            lines += [
                f"  {t:.3f}{' (in use 当前)' if t == self.threshold else ''}: "
                f"{s.in_scope_accuracy:.1%} / {s.oos_recall:.1%}"
                for t, s in self.what_if
            ]
        if self.groups:
            lines.append(
                f"by {self.by} 按 {self.by} 分组: n, accuracy 准确率, in-scope, oos recall"
            )
            lines += [
                f"  {value:20} {s.n:4}  {s.accuracy:6.1%}  {s.in_scope_accuracy:6.1%}"
                f"  {s.oos_recall:6.1%}"
                for value, s in self.groups
            ]
        if self.confusions:
            lines.append("most confused 最常混淆 (expected 期望 → predicted 识别: count)")
            lines += [f"  {e} → {p}: {c}" for e, p, c in self.confusions]
        return "\n".join(lines)


_NONE = "(none)"


def _matcher_of(model: Any) -> Any:
    """The IntentMatcher whose threshold governs ``model`` (None for a fake without one)."""
    matcher = getattr(model, "matcher", model)
    return matcher if hasattr(matcher, "threshold") else None


def _predictor(model: _Understands | _Matches):
    """A function text → (intent, confidence, language, rule)."""
    if hasattr(model, "understand"):

        def understand(text: str) -> tuple[Any, float, str | None, str | None]:
            u = model.understand(text)
            rule = getattr(u, "rule", None) or ("model" if u.intent is not None else None)
            return u.intent, u.confidence, u.language, rule

        return understand
    if hasattr(model, "match"):

        def match(text: str) -> tuple[Any, float, str | None, str | None]:
            m = model.match(text)
            return m.intent, m.confidence, detect_language(text), "model" if m.intent else None

        return match
    raise TypeError(f"expected an Understander or IntentMatcher, got {type(model).__name__}")


def _score(pairs: Sequence[tuple[Any, Any]]) -> GroupScore:
    """Metrics of (expected, predicted) pairs; None is out of scope."""
    n = len(pairs)
    n_in = sum(e is not None for e, _ in pairs)
    right_in = sum(e is not None and e == p for e, p in pairs)
    oos_right = sum(e is None and p is None for e, p in pairs)
    n_oos = n - n_in
    return GroupScore(
        n=n,
        n_in_scope=n_in,
        accuracy=(right_in + oos_right) / n if n else 0.0,
        in_scope_accuracy=right_in / n_in if n_in else 0.0,
        oos_recall=oos_right / n_oos if n_oos else 0.0,
    )


def evaluate(
    model: _Understands | _Matches,
    rows: Iterable[dict[str, Any]],
    *,
    by: str | None = None,
    what_if: Sequence[float] = WHAT_IF_THRESHOLDS,
) -> EvalReport:
    """Run ``model`` on ``rows`` ({"text": str, "intent": name or None, ...}) and score it.

    Out-of-scope rows (intent None) are right only when the prediction is None; in-scope rows
    predicted None count as wrong. Time is wall-clock per call, including normalisation.
    ``by`` groups the metrics by that field of the rows (rows without it: "(missing)").
    ``what_if`` thresholds are tried by re-running the rows with the model's matcher set to
    each (then restored); an empty sequence skips that.
    """
    rows = list(rows)
    predict = _predictor(model)
    clock = time.perf_counter_ns
    elapsed: list[int] = []
    pairs: list[tuple[Any, Any]] = []
    results: list[dict[str, Any]] = []
    confusions: Counter[tuple[str, str]] = Counter()
    for row in rows:
        expected = row.get("intent")
        start = clock()
        predicted, confidence, language, rule = predict(row["text"])
        elapsed.append(clock() - start)
        pairs.append((expected, predicted))
        if predicted != expected:
            confusions[(_NONE if expected is None else expected, predicted or _NONE)] += 1
        extra = {k: v for k, v in row.items() if k not in ("text", "intent")}
        results.append(
            {
                "text": row["text"],
                "expected": expected,
                "got": predicted,
                "confidence": round(float(confidence), 4),
                "language": language,
                "rule": rule,
                "right": predicted == expected,
                **extra,
            }
        )
    overall = _score(pairs)
    n_oos = overall.n - overall.n_in_scope
    oos_right = sum(e is None and p is None for e, p in pairs)
    none_predicted = sum(p is None for _, p in pairs)

    matcher = _matcher_of(model)
    threshold = source = None
    tried: list[tuple[float, GroupScore]] = []
    if matcher is not None:
        threshold = float(matcher.threshold)
        source = getattr(matcher, "threshold_source", None)
        if what_if and rows:
            saved = getattr(matcher, "_explicit_threshold", threshold)
            try:
                for t in sorted({*what_if, threshold}):
                    matcher.threshold = t
                    tried.append(
                        (t, _score([(r.get("intent"), predict(r["text"])[0]) for r in rows]))
                    )
            finally:
                matcher.threshold = saved

    groups: list[tuple[str, GroupScore]] = []
    if by is not None:
        grouped: dict[str, list[tuple[Any, Any]]] = {}
        for row, pair in zip(rows, pairs, strict=True):
            value = row.get(by)
            grouped.setdefault("(missing)" if value is None else str(value), []).append(pair)
        groups = [(value, _score(grouped[value])) for value in sorted(grouped)]

    return EvalReport(
        n=overall.n,
        n_in_scope=overall.n_in_scope,
        n_out_of_scope=n_oos,
        accuracy=overall.accuracy,
        in_scope_accuracy=overall.in_scope_accuracy,
        oos_recall=overall.oos_recall,
        oos_precision=oos_right / none_predicted if none_predicted else 0.0,
        mean_us=sum(elapsed) / len(elapsed) / 1000 if elapsed else 0.0,
        p50_us=statistics.median(elapsed) / 1000 if elapsed else 0.0,
        confusions=tuple(
            (e, p, c)
            for (e, p), c in sorted(confusions.items(), key=lambda item: (-item[1], item[0]))[:10]
        ),
        threshold=threshold,
        threshold_source=source,
        what_if=tuple(tried),
        by=by,
        groups=tuple(groups),
        results=tuple(results),
    )

"""Intent matching from a handful of example phrases, in Chinese and English.

Why this design (measured with ``bench/clinc150.py``; see the figures in its docstring):

* Features are sparse n-grams, no word segmentation or embeddings needed: English words
  (with a tiny suffix stripper so "booking"/"booked"/"book" meet), English word bigrams,
  character 1-4-grams inside each English word (robust to typos and inflections the stripper
  misses), and Chinese character 1-3-grams (Chinese has no spaces; character n-grams recover
  most words without a segmenter). Weighted by sublinear TF-IDF and L2-normalised.
* A multinomial logistic regression over those features is fitted once at build time (numpy +
  scipy L-BFGS, see ``_fit_softmax``); it beat LinearSVC, ridge, nearest-example and centroid
  cosine, and blends of them, on CLINC150 with 10 examples per intent, and its softmax gives a
  usable confidence.
* Inference calls no library per message beyond numpy on tiny arrays (scikit-learn's per-call
  overhead alone is tens of microseconds): the weights are a dense ``features x intents`` array
  and a message is scored by gathering the rows of the n-grams it contains, 40-90 µs per
  message in total on this machine.
* English words also get a static sentence vector (``bot/nlu/vectors.py``: token vectors
  distilled from all-MiniLM-L6-v2, numpy only at run time) appended to the TF-IDF vector as
  dense features of the same logistic regression: +3 points closed and in-scope accuracy on
  CLINC150 (synonyms no n-gram shares), ~15 µs per message. Chinese gets no vector.
* N-grams never seen in the examples still count in the vector's length. A message made mostly
  of unknown text therefore gets a shorter known part, smaller logits and a flatter softmax,
  which is exactly the "this is not about anything I know" signal the threshold needs.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bot.nlu import fitcache
from bot.nlu import vectors as static_vectors
from bot.nlu.normalize import Phrase, normalize

__all__ = ["DEFAULT_THRESHOLD", "IntentMatcher", "Match", "features"]

# Confidence below which ``Match.intent`` is None; persona files may override it (nlu.threshold).
# Softmax confidence depends on the number of intents, so it was chosen on persona-sized
# problems, not on all of CLINC150: ``bench/clinc150.py --persona-sim`` (20 CLINC intents x 30
# examples, the other 130 intents and oos as out-of-scope) picks 0.35-0.37 on val (max in-scope
# accuracy s.t. oos recall ≥ 85%); on test 0.35 gives ~91% in-scope at 84-87% oos recall.
DEFAULT_THRESHOLD = 0.35
# When one of an intent's keywords occurs in the message its logit is raised to at least the top
# logit plus this: e^6 ≈ 400x odds, so it wins unless another keyword intent also matches.
KEYWORD_BOOST = 6.0
# A message whose top intent was found by keyword is at least this confident, so a keyword hit
# is never answered by the fallback whatever the threshold.
KEYWORD_CONFIDENCE = 0.9
# Inverse regularisation strength of the logistic regression (chosen on CLINC150 val; 10-100
# perform within 0.3 points of each other, so the choice is not delicate).
C = 30.0
# Solver settings of the logistic regression fit (see _fit_softmax).
JITTER = 1e-3
MAX_ITER = 300
GTOL = 1e-4
# Only the first characters of a message are featurised: bounds the cost of a pasted essay
# (10k characters would otherwise take milliseconds) while the intent is almost always stated
# at the start.
MAX_CHARS = 1000
# Ranking length reported in Match.ranking.
TOP_K = 3
# Weight of the static sentence vector (unit length, bot/nlu/vectors.py) appended to the
# unit-length TF-IDF vector as dense features of the logistic regression; 0 disables it.
# (chosen on CLINC150 val: 0.7-1.5 are within half a point, 2+ lose). The vector is also scaled
# by the message's English share (ASCII words / (ASCII words + Han characters)), so a Latin
# brand name inside a Chinese message barely moves it, and at match time by the known share of
# its TF-IDF vector (see the module doc), so text unlike any example gets a weaker vector too.
EMBED_WEIGHT = 1.0
# The vector makes English messages more confident, in and out of scope, so the threshold is
# raised by this times the weight the vector got (English share x known share; a Chinese
# message keeps the threshold as set): --persona-sim picks 0.45-0.54 with the vector, against
# 0.35-0.37 without.
EMBED_THRESHOLD_SHIFT = 0.15

_SUFFIXES = (
    "ational",
    "tional",
    "ization",
    "fulness",
    "ousness",
    "iveness",
    "ations",
    "ation",
    "ments",
    "ment",
    "ness",
    "ings",
    "ing",
    "edly",
    "ed",
    "ies",
    "ly",
    "es",
    "s",
)
_SPLIT_SCRIPTS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+")


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def stem(word: str) -> str:
    """Strip one common English suffix: conflates inflections without a stemmer dependency.

    Deliberately crude (no Porter rules): the char n-grams cover what it gets wrong, and a
    wrong stem only costs a feature, never a crash.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if suffix == "ies":
                return base + "y"
            if suffix in ("ing", "ed", "ings") and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # "stopped" → "stop", but "called" → "call"
            return base
    return word


def features(normalized: str) -> list[str]:
    """The n-gram features of an already normalised text (a list; repeats are counts)."""
    out: list[str] = []
    append = out.append
    words: list[str] = []
    for token in normalized[:MAX_CHARS].split():
        runs = (token,) if token.isascii() else _SPLIT_SCRIPTS.findall(token)
        for run in runs:
            if _is_han(run[0]):
                words.append("")  # a Chinese run breaks the English word sequence
                n = len(run)
                padded = f" {run} "
                for i in range(n):
                    append(run[i])
                for i in range(n + 1):
                    append(padded[i : i + 2])
                for i in range(n - 2):
                    append(run[i : i + 3])
                continue
            s = stem(run)
            word = "w:" + s
            append(word)
            append(word)  # counted twice: whole words deserve more weight than their n-grams
            words.append(s)
            padded = f" {run} "
            m = len(padded)
            for i in range(1, m - 1):
                append(padded[i])
            for size in (2, 3, 4):
                for i in range(m - size + 1):
                    append(padded[i : i + size])
    for a, b in zip(words, words[1:], strict=False):
        if a and b:
            append(f"b:{a} {b}")
    return out


def english_words(normalized: str) -> tuple[list[str], float]:
    """The ASCII words of a normalised text, and their share of its words and Han characters."""
    out: list[str] = []
    other = 0
    for token in normalized[:MAX_CHARS].split():
        if token.isascii():
            out.append(token)
            continue
        for run in _SPLIT_SCRIPTS.findall(token):
            if run.isascii():
                out.append(run)
            else:
                other += len(run) if _is_han(run[0]) else 1
    return out, (len(out) / (len(out) + other) if out else 0.0)


def _single_threaded_blas():
    """Limit BLAS to one thread while fitting, if threadpoolctl is available.

    The matrices are small (hundreds of rows): multi-threaded OpenBLAS gains nothing there and
    its spinning threads slow the fit 10-50x when another process keeps a core busy, as a bot
    server and its database do.
    """
    # Load scipy's own OpenBLAS (used by the L-BFGS-B code) *before* the limit is taken:
    # threadpoolctl only limits libraries already loaded when the context is entered.
    import scipy.linalg  # noqa: F401
    import scipy.optimize  # noqa: F401

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit_softmax(matrix, y: np.ndarray, n_classes: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, L2-penalised, classes balanced, fitted with L-BFGS.

    Same objective as scikit-learn's ``LogisticRegression(C=c, class_weight="balanced")``
    (intercept unpenalised), solved in the span of the training rows: the optimal weights lie
    there (representer theorem), and with the Cholesky factor ``X Xᵀ = L Lᵀ`` the rows are
    ``X = L Q`` with orthonormal ``Q``, so L-BFGS works on ``examples x intents`` coefficients
    with the same conditioning instead of ``n-grams x intents`` (10-50x fewer numbers). That,
    and not importing scikit-learn (about a second), keeps a persona rebuild (hot reload) in
    the 0.1-0.5 s range.
    """
    from scipy.optimize import minimize  # build-time only

    n = matrix.shape[0]
    # Gram matrix of the rows, each row extended by a private coordinate √JITTER so that it is
    # positive definite even with duplicate examples; its Cholesky factor L gives the rows'
    # coordinates in an orthonormal basis of their span (X = L Q, Q with orthonormal rows).
    gram = (matrix @ matrix.T).toarray()
    gram[np.diag_indices(n)] += JITTER
    coords = np.linalg.cholesky(gram)
    r = n
    counts = np.bincount(y, minlength=n_classes)
    sample_weight = (n / (n_classes * counts))[y] / n  # balanced, averaged over samples
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0
    penalty = 1.0 / (c * n)
    size = r * n_classes

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b = theta[:size].reshape(r, n_classes)
        z = coords @ b + theta[size:]
        z -= z.max(axis=1, keepdims=True)
        exp = np.exp(z)
        total = exp.sum(axis=1, keepdims=True)
        loss = -(sample_weight * ((z - np.log(total)) * onehot).sum(axis=1)).sum()
        loss += 0.5 * penalty * float((b * b).sum())
        residual = (exp / total - onehot) * sample_weight[:, None]
        grad_b = coords.T @ residual + penalty * b
        return loss, np.concatenate([grad_b.ravel(), residual.sum(axis=0)])

    result = minimize(
        objective,
        np.zeros(size + n_classes),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": MAX_ITER, "gtol": GTOL},
    )
    b = result.x[:size].reshape(r, n_classes)
    from scipy.linalg import solve_triangular

    # W = Xᵀ L⁻ᵀ B (the private coordinates are dropped: they never occur in a message).
    return np.asarray(matrix.T @ solve_triangular(coords, b, lower=True, trans="T")), result.x[
        size:
    ]


@dataclass(frozen=True, slots=True)
class Match:
    """The matcher's verdict on one message.

    ``intent`` is None when ``confidence`` is below the threshold, but ``best`` always names the
    top-scoring intent so that a caller can still say "did you mean …?".
    """

    intent: str | None
    confidence: float
    best: str
    ranking: tuple[tuple[str, float], ...]


class IntentMatcher:
    """Maps a message to one of a fixed set of intents, or to None when unsure.

    Built from ``examples`` (intent → example phrases, languages pooled) and optional
    ``keywords`` (intent → words that strongly signal it). Immutable after construction except
    for ``threshold``; rebuild it to change the intents (it takes well under a second for a
    persona-sized intent set).
    """

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        keywords: Mapping[str, Sequence[str]] | None = None,
        *,
        threshold: float | None = None,
    ) -> None:
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        keywords = keywords or {}
        names = list(dict.fromkeys([*examples, *keywords]))
        self.intents: tuple[str, ...] = tuple(names)
        self._index = {name: i for i, name in enumerate(names)}
        self._vectors = static_vectors.load() if EMBED_WEIGHT > 0 else None

        texts: list[str] = []
        labels: list[int] = []
        for name, phrases in examples.items():
            for phrase in phrases:
                norm = normalize(phrase)
                if norm:
                    texts.append(norm)
                    labels.append(self._index[name])
        self._fit(texts, labels)
        self._keywords = self._compile_keywords(keywords)
        self._keywords_by_first: dict[str, list[tuple[Phrase, int]]] = {}
        for entry in self._keywords:
            self._keywords_by_first.setdefault(entry[0].text[0], []).append(entry)

    # -- building ---------------------------------------------------------------------------

    # Bump when the features or the fit change, so cached fits from older code are not used.
    _FIT_VERSION = 1

    def _fit(self, texts: list[str], labels: list[int]) -> None:
        """Fit (or load the cached fit of) TF-IDF and the classifier."""
        digest = fitcache.key(
            self._FIT_VERSION,
            C,
            EMBED_WEIGHT,
            JITTER,
            MAX_ITER,
            GTOL,
            self.intents,
            texts,
            labels,
            self._vectors.dims if self._vectors is not None else 0,
        )
        cached = fitcache.load(digest)
        if cached is not None:
            try:
                self._restore(cached)
                return
            except (KeyError, ValueError):
                pass
        self._fit_now(texts, labels)
        fitcache.save(digest, self._fitted_arrays())

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "idf": self._idf,
            "unknown_idf2": np.asarray(self._unknown_idf2),
            "vocab": np.asarray(list(self._vocab), dtype=str),
            "bias": self._bias,
            "weights": self._weights,
            "single": np.asarray(self._single),
        }
        if self._dense_weights is not None:
            arrays["dense_weights"] = self._dense_weights
        return arrays

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        vocab = [str(gram) for gram in arrays["vocab"]]
        weights = arrays["weights"]
        if weights.shape != (len(vocab), len(self.intents)):
            raise ValueError("cached fit does not match the intents")
        self._idf = arrays["idf"]
        self._unknown_idf2 = float(arrays["unknown_idf2"])
        self._vocab = {gram: i for i, gram in enumerate(vocab)}
        self._bias = arrays["bias"]
        self._weights = weights
        self._single = bool(arrays["single"])
        self._dense_weights = arrays.get("dense_weights")

    def _fit_now(self, texts: list[str], labels: list[int]) -> None:
        """Fit TF-IDF and the classifier; leave dense arrays ready for fast inference."""
        n_intents = len(self.intents)
        vocab: dict[str, int] = {}
        docs: list[dict[int, int]] = []
        for text in texts:
            counts: dict[int, int] = {}
            for gram in features(text):
                j = vocab.setdefault(gram, len(vocab))
                counts[j] = counts.get(j, 0) + 1
            docs.append(counts)
        n_docs = len(docs)
        df = np.zeros(len(vocab))
        for counts in docs:
            df[list(counts)] += 1
        # Smoothed idf as in scikit-learn; an unseen n-gram gets the idf of a df=0 feature.
        self._idf = np.log((1 + n_docs) / (1 + df)) + 1
        self._unknown_idf2 = (math.log(1 + n_docs) + 1) ** 2
        self._vocab = vocab
        self._bias = np.zeros(n_intents)
        self._weights = np.zeros((len(vocab), n_intents))
        self._dense_weights: np.ndarray | None = None
        self._single = False

        trained = sorted(set(labels))
        if not docs or not trained:
            return
        rows, cols, vals = [], [], []
        for r, counts in enumerate(docs):
            idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=float, count=len(counts))
            x = (1 + np.log(tf)) * self._idf[idx]
            x /= np.linalg.norm(x)
            rows.append(np.full(len(idx), r))
            cols.append(idx)
            vals.append(x)
        from scipy.sparse import csr_matrix, hstack  # build-time only: keep import cost low

        matrix = csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_docs, len(vocab)),
        )
        y = np.asarray(labels)
        if len(trained) == 1:
            # One intent with examples: no classifier possible. Cosine similarity to the
            # centroid is the confidence (and 0 for the example-less, keyword-only intents).
            centroid = np.asarray(matrix.mean(axis=0)).ravel()
            centroid /= np.linalg.norm(centroid) or 1.0
            self._weights[:, trained[0]] = centroid
            self._single = True
            return
        # The static sentence vectors of the examples' English words join the n-grams as dense
        # features (rows stay unit length before weighting; see EMBED_WEIGHT).
        dense = None
        if self._vectors is not None:
            dense = np.zeros((n_docs, self._vectors.dims))
            for r, text in enumerate(texts):
                words, share = english_words(text)
                e = self._vectors.embed_words(words)
                if e is not None:
                    dense[r] = (EMBED_WEIGHT * share) * e
            if dense.any():
                matrix = hstack([matrix, csr_matrix(dense)], format="csr")
            else:
                dense = None
        # Intents with only keywords get no examples: a very low bias keeps them out of the
        # ranking unless a keyword fires.
        self._bias[:] = -10.0
        classes = np.asarray(trained)
        remap = np.searchsorted(classes, y)
        with _single_threaded_blas():
            weights, bias = _fit_softmax(matrix, remap, len(classes), C)
        if dense is not None:
            self._dense_weights = np.zeros((dense.shape[1], n_intents))
            self._dense_weights[:, classes] = EMBED_WEIGHT * weights[len(vocab) :]
            weights = weights[: len(vocab)]
        self._weights[:, classes] = weights
        self._bias[classes] = bias

    def _compile_keywords(self, keywords: Mapping[str, Sequence[str]]) -> list[tuple[Phrase, int]]:
        """Normalise keywords; English-edged ones need word boundaries ("art" ≠ "start")."""
        phrases = [
            (Phrase(word), self._index[name]) for name, words in keywords.items() for word in words
        ]
        return [(phrase, index) for phrase, index in phrases if phrase.text]

    # -- matching ---------------------------------------------------------------------------

    def keyword_hits(self, normalized: str) -> set[str]:
        """Names of the intents one of whose keywords occurs in a normalised text."""
        return {self.intents[i] for i in self._keyword_indices(normalized)}

    def _keyword_indices(self, normalized: str) -> set[int]:
        # Only keywords whose first character occurs in the message can match: a short message
        # touches a handful of buckets instead of every keyword of the persona.
        hits: set[int] = set()
        by_first = self._keywords_by_first
        for ch in set(normalized) & by_first.keys():
            for phrase, index in by_first[ch]:
                if phrase.found_in(normalized):
                    hits.add(index)
        return hits

    def _scores(self, normalized: str, hits: set[int]) -> tuple[np.ndarray, float]:
        """Probabilities, and the weight given to the static vector (0 when none was used)."""
        vocab = self._vocab
        counts: dict[int, int] = {}
        unknown = 0
        for gram in features(normalized):
            j = vocab.get(gram)
            if j is None:
                unknown += 1
            else:
                counts[j] = counts.get(j, 0) + 1
        logits = self._bias.copy()
        known = used = 0.0
        if counts:
            idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=float, count=len(counts))
            x = (1 + np.log(tf)) * self._idf[idx]
            norm = math.sqrt(float(x @ x) + unknown * self._unknown_idf2)
            logits += (x / norm) @ self._weights[idx]
            known = math.sqrt(float(x @ x)) / norm
        if self._dense_weights is not None and known:
            words, share = english_words(normalized)
            e = self._vectors.embed_words(words)
            if e is not None:
                used = share * known
                logits += used * (e @ self._dense_weights)
        if self._single:
            return (np.clip(logits, 0.0, 1.0) if counts else np.zeros_like(logits)), 0.0
        if hits:
            # Every keyword intent is lifted by the same amount, enough to put the weakest of them
            # above the best example-based score: keyword-only intents can win, and when two
            # intents' keywords appear together the examples still decide between them.
            hit = list(hits)
            logits[hit] += max(0.0, float(logits.max() - logits[hit].min())) + KEYWORD_BOOST
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        return probs, used

    def match(self, text: str) -> Match:
        """Match a raw message (normalised here)."""
        return self.match_normalized(normalize(text))

    def match_normalized(self, normalized: str) -> Match:
        """Match a message that is already normalised (saves a second normalisation)."""
        if not self.intents:
            return Match(None, 0.0, "", ())
        hits = self._keyword_indices(normalized) if self._keywords else set()
        probs, used = self._scores(normalized, hits)
        if self._single:
            for i in hits:
                probs[i] = max(probs[i], KEYWORD_CONFIDENCE)
        k = min(TOP_K, len(probs))
        top = np.argpartition(-probs, k - 1)[:k] if len(probs) > k else np.arange(len(probs))
        top = top[np.argsort(-probs[top], kind="stable")]
        ranking = [(self.intents[i], float(probs[i])) for i in top]
        best, confidence = ranking[0]
        if confidence < KEYWORD_CONFIDENCE and top[0] in hits:
            confidence = KEYWORD_CONFIDENCE
            ranking[0] = (best, confidence)
        threshold = min(1.0, self.threshold + EMBED_THRESHOLD_SHIFT * used)
        intent = best if confidence >= threshold else None
        return Match(intent, confidence, best, tuple(ranking))

    @property
    def threshold(self) -> float:
        """Confidence below which no intent is reported; settable, in [0, 1]."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {value}")
        self._threshold = float(value)

    def __repr__(self) -> str:
        return f"IntentMatcher({len(self.intents)} intents, threshold={self.threshold:.2f})"

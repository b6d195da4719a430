"""Intent matching from a handful of example phrases, in Chinese and English.

Why this design (measured with ``bench/clinc150.py``; see the figures in its docstring):

* Features are sparse n-grams, no word segmentation or embeddings needed: English words
  (with a tiny suffix stripper so "booking"/"booked"/"book" meet), English word bigrams,
  character 1-4-grams inside each English word (robust to typos and inflections the stripper
  misses), Chinese character 1-3-grams (Chinese has no spaces; character n-grams recover
  most words without a segmenter) and the toneless pinyin of Chinese characters (homophone
  typos; messages typed in pinyin are scored on those alone, see ``typed_pinyin``). Weighted
  by sublinear TF-IDF and L2-normalised.
* A multinomial logistic regression over those features is fitted once at build time (a
  float32 L-BFGS in the primal, linear in the examples, see ``_fit_softmax``); it beat
  LinearSVC, ridge, nearest-example and centroid cosine, and blends of them, on CLINC150 with
  10 examples per intent, and its softmax gives a usable confidence.
* The acceptance threshold is calibrated per persona at load (``_calibrate``): the level that
  declines OOS_QUANTILE of a shipped out-of-scope corpus, since softmax confidence shrinks with
  more intents and fewer examples. Keywords add to their intent's logit; they do not force.
* Inference calls no library per message beyond numpy on tiny arrays (scikit-learn's per-call
  overhead alone is tens of microseconds): the weights are a dense ``features x intents`` array
  and a message is scored by gathering the rows of the n-grams it contains: ~20 µs per
  message once its tokens are in the per-token cache, ~35 µs when they are new (this machine).
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
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import add

import numpy as np

from bot.nlu import fitcache
from bot.nlu import vectors as static_vectors
from bot.nlu.normalize import Phrase, PhraseIndex, normalize

__all__ = ["DEFAULT_THRESHOLD", "IntentMatcher", "Match", "features"]

# Confidence below which ``Match.intent`` is None; persona files may override it (nlu.threshold).
# Softmax confidence depends on the number of intents, so it was chosen on persona-sized
# problems, not on all of CLINC150: ``bench/clinc150.py --persona-sim`` (20 CLINC intents x 30
# examples, the other 130 intents and oos as out-of-scope) picked 0.35-0.37 on val (max in-scope
# accuracy s.t. oos recall ≥ 85%) before the static vectors; with them and
# EMBED_THRESHOLD_SHIFT, 0.35 gives 90-94% in-scope at 83-88% oos recall on test (seeds 0-2).
DEFAULT_THRESHOLD = 0.35
# Toneless pinyin syllables and syllable pairs of Chinese characters as features (see
# _pinyin_grams), and messages typed in pinyin scored on them (see typed_pinyin). Measured on
# the demo personas' dev sets (bench/nlu_heldout.py), without → with: pinyin messages 12% →
# 94% (laowang) and 15% → 85% (northbound), typos/homophones 67% → 94% (laowang), for ~10 µs
# more per Chinese message.
PINYIN_FEATURES = True
# Calibration (see IntentMatcher._calibrate): the default threshold is the OOS_QUANTILE of the
# scores of the shipped out-of-scope phrases (bot/nlu/data/oos-*.txt), within THRESHOLD_BOUNDS;
# with fewer than MIN_OOS_PHRASES of them, DEFAULT_THRESHOLD.
OOS_QUANTILE = 0.88
THRESHOLD_BOUNDS = (0.05, 0.9)
MIN_OOS_PHRASES = 20
# When one of an intent's keywords occurs in the message this is added to its logit (e^2 ≈ 7x
# its odds): the keyword lifts its intent, but its confidence is still the softmax's and the
# calibrated threshold still applies, so a keyword never forces a confident answer on its own
# ("how much is bitcoin" holds a keyword of `price` and is still not about the menu). Chosen on
# the demo personas' dev sets (0.5-3 tried; 2 best, +1 point over lifting to the top logit + 1;
# the former "top logit + 6 and at least 0.9 confidence" lost 3-4 points of in-scope accuracy
# at the same OOS recall, as the OOS phrases holding a keyword pushed the threshold up).
KEYWORD_BOOST = 2.0
# The lift of an intent that has keywords but no examples (its keyword is all it has): e^6 ≈
# 400x the odds of the best other intent, a confident answer.
KEYWORD_ONLY_BOOST = 6.0
# A keyword lifts its intent's logit by KEYWORD_BOOST, which can carry a message the examples
# alone would not accept to a confidence near 1 ("how much is a latte at Sumerian" holds
# `price`'s keyword). When the examples alone leave the intent below the threshold, the reported
# confidence is at most this: accepted, but never "sure" (see IntentMatcher.match_normalized).
KEYWORD_UNSURE_CONFIDENCE = 0.8
# Only for a matcher with a single intent (whose confidence is a cosine, not a softmax): a
# keyword hit gets at least this confidence there.
KEYWORD_CONFIDENCE = 0.9
# Inverse regularisation strength of the logistic regression (chosen on CLINC150 val; 10-100
# perform within 0.3 points of each other, so the choice is not delicate).
C = 30.0
# Solver settings of the logistic regression fit (see _fit_softmax).
JITTER = 1e-3
MAX_ITER = 300
GTOL = 1e-4
# L-BFGS memory (correction pairs): each pair holds two copies of the unknowns, so it bounds
# the fit's peak memory (150 intents x 30 examples: ~12k merged columns x 150 intents) and the
# optimiser's own work per iteration. 3, 6 and 10 took the same number of evaluations (37-39)
# on CLINC150 150 x 30, with the same accuracy.
MAX_CORRECTIONS = 3
# Only the first characters of a message are featurised: bounds the cost of a pasted essay
# (10k characters would otherwise take milliseconds) while the intent is almost always stated
# at the start.
MAX_CHARS = 1000
# Ranking length reported in Match.ranking.
TOP_K = 3
# Per-matcher cache of what a token (a whitespace-free run of a normalised message) contributes:
# its n-grams' vocabulary indices, English words and so on. Tokens recur across messages (English
# words, short Chinese messages), and looking their n-grams up is most of the pure-Python work.
# Only tokens up to TOKEN_CACHE_CHARS characters are cached, which bounds the memory (a long
# Chinese sentence without punctuation is one token): well under 10 MB per persona.
TOKEN_CACHE_SIZE = 4096
TOKEN_CACHE_CHARS = 24
# 1 + log(tf) for every count an n-gram can reach in MAX_CHARS characters (at most about
# MAX_CHARS; a word's "w:" feature counts twice per occurrence, so a generous bound): a lookup
# instead of two numpy calls per message. Index 0 is never used.
_SUBLINEAR_TF = np.concatenate(([1.0], 1 + np.log(np.arange(1, 2 * MAX_CHARS + 4, dtype=float))))
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


@lru_cache(maxsize=1)
def oos_corpus() -> tuple[str, ...]:
    """The shipped out-of-scope phrases (bot/nlu/data/oos-*.txt), normalised, deduplicated."""
    phrases: dict[str, None] = {}
    for path in sorted(static_vectors.DATA.glob("oos-*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                norm = normalize(line)
                if norm:
                    phrases[norm] = None
    return tuple(phrases)


@lru_cache(maxsize=1)
def _pinyin_table() -> tuple[dict[str, str], frozenset[str]]:
    """Han character → toneless pinyin (its most common reading), and the syllables that a
    typed pinyin word is split into (bot/nlu/data/pinyin.txt, made from pypinyin's data by
    bench/make_pinyin_table.py; one dict of ~27k entries, a few MB)."""
    table: dict[str, str] = {}
    for line in (static_vectors.DATA / "pinyin.txt").read_text(encoding="utf-8").splitlines():
        syllable, _, chars = line.partition("\t")
        for char in chars:
            table[char] = syllable
    # Consonant-only interjections (m, n, ng, hm) are not split out of typed words.
    syllables = frozenset(v for v in table.values() if any(c in "aeiouv" for c in v))
    return table, syllables


def _pinyin_of(run: str) -> list[str]:
    """Toneless pinyin of each character of a Han run ('' for a character without one)."""
    table = _pinyin_table()[0]
    return [table.get(ch, "") for ch in run]


def _pinyin_grams(syllables: list[str]) -> list[str]:
    """Pinyin features: each syllable, and each pair of adjacent syllables.

    Chinese examples get them beside their characters, so a homophone typo (几点开们 for
    几点开门: kai men either way) still shares the pair, and a message typed in pinyin
    (jidian kaimen) shares them with the characters it stands for.
    """
    out = ["p:" + s for s in syllables if s]
    out += [f"q:{a} {b}" for a, b in zip(syllables, syllables[1:], strict=False) if a and b]
    return out


_TONE_MARKS = str.maketrans({"ü": "v", "ǖ": "v", "ǘ": "v", "ǚ": "v", "ǜ": "v"})
_TONE_DIGITS = re.compile(r"(?<=[a-z])[1-5]")
# Longest pinyin syllable (zhuang, shuang): bounds the split's inner loop.
_MAX_SYLLABLE = 6


def _split_pinyin(word: str, syllables: frozenset[str]) -> list[str] | None:
    """Split one typed word into pinyin syllables, longest first with backtracking; None if
    it is not pinyin ("kaimen" → kai men; "xian" stays one syllable)."""
    n = len(word)
    best: list[list[str] | None] = [None] * (n + 1)
    best[n] = []
    for start in range(n - 1, -1, -1):
        for end in range(min(n, start + _MAX_SYLLABLE), start, -1):
            rest = best[end]
            if rest is not None and word[start:end] in syllables:
                best[start] = [word[start:end], *rest]
                break
    return best[0]


def typed_pinyin(normalized: str) -> list[str] | None:
    """The syllables of a message typed entirely in pinyin (tone marks or digits allowed).

    None unless every word splits into pinyin syllables and there are at least two: "wo xiang
    ding wei", "jǐ diǎn kāi mén" and "ji3dian3" are pinyin; "i want a table" is not ("i" is no
    syllable). Bounded to MAX_CHARS like the other features.
    """
    text = normalized[:MAX_CHARS]
    if not text or _HAN_CHAR.search(text):
        return None
    if not text.isascii():
        text = text.translate(_TONE_MARKS)
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
        if not text.isascii():
            return None
    text = _TONE_DIGITS.sub("", text)
    syllables_set = _pinyin_table()[1]
    out: list[str] = []
    for word in text.split():
        if not word.isalpha():
            return None
        split = _split_pinyin(word, syllables_set)
        if split is None:
            return None
        out += split
    return out if len(out) >= 2 else None


_HAN_CHAR = re.compile("[\u3400-\u9fff\uf900-\ufaff]")


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def stem(word: str) -> str:
    """Strip one common English suffix: conflates inflections without a stemmer dependency.

    Deliberately crude (no Porter rules): the char n-grams cover what it gets wrong, and a
    wrong stem only costs a feature, never a crash.
    """
    # One C-level endswith over all suffixes first: most words have none of them.
    if len(word) <= 3 or not word.endswith(_SUFFIXES) or not word.isalpha():
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


def _token_features(token: str) -> tuple[list[str], list[str]]:
    """The n-grams of one whitespace-free token, and its entries in the English word sequence.

    The word sequence holds each English run's stem and "" for each Chinese run (which breaks
    the sequence); :func:`features` makes the word bigrams from it across tokens. An English
    word's 3- and 4-grams are joined from its 2-grams with ``map(add, ...)``: the same strings
    as slicing, in the same order, for less interpreter work.
    """
    out: list[str] = []
    words: list[str] = []
    for run in (token,) if token.isascii() else _SPLIT_SCRIPTS.findall(token):
        padded = f" {run} "
        if _is_han(run[0]):
            words.append("")  # a Chinese run breaks the English word sequence
            n = len(run)
            out += run  # characters
            out += [padded[i : i + 2] for i in range(n + 1)]
            out += [run[i : i + 3] for i in range(n - 2)]
            if PINYIN_FEATURES:
                out += _pinyin_grams(_pinyin_of(run))
            continue
        s = stem(run)
        word = "w:" + s
        out.append(word)
        out.append(word)  # counted twice: whole words deserve more weight than their n-grams
        words.append(s)
        pairs = list(map(add, padded, padded[1:]))
        out += run  # characters, i.e. padded[1:-1] one by one
        out += pairs
        out += map(add, pairs, padded[2:])  # 3-grams of the padded word
        out += map(add, pairs, pairs[2:])  # 4-grams
    return out, words


def _bigrams(words: list[str]) -> list[str]:
    return [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False) if a and b]


def features(normalized: str) -> list[str]:
    """The n-gram features of an already normalised text (a list; repeats are counts)."""
    out: list[str] = []
    words: list[str] = []
    for token in normalized[:MAX_CHARS].split():
        grams, stems = _token_features(token)
        out += grams
        words += stems
    out += _bigrams(words)
    return out


def _token_english(token: str) -> tuple[list[str], int]:
    """The ASCII words of one token, and how many Han characters and other runs it has."""
    if token.isascii():
        return [token], 0
    out: list[str] = []
    other = 0
    for run in _SPLIT_SCRIPTS.findall(token):
        if run.isascii():
            out.append(run)
        else:
            other += len(run) if _is_han(run[0]) else 1
    return out, other


def english_words(normalized: str) -> tuple[list[str], float]:
    """The ASCII words of a normalised text, and their share of its words and Han characters."""
    out: list[str] = []
    other = 0
    for token in normalized[:MAX_CHARS].split():
        words, n = _token_english(token)
        out += words
        other += n
    return out, (len(out) / (len(out) + other) if out else 0.0)


def _single_threaded_blas():
    """Limit BLAS to one thread while fitting (threadpoolctl, a dependency).

    The matrices are small (hundreds of rows): multi-threaded OpenBLAS gains nothing there and
    its spinning threads slow the fit 10-50x when another process keeps a core busy, as a bot
    server and its database do.
    """
    # Load scipy's own OpenBLAS (its axpy/dot serve the L-BFGS loop) *before* the limit is
    # taken: threadpoolctl only limits libraries already loaded when the context is entered.
    import scipy.linalg.blas  # noqa: F401

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency; fit anyway without it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _lbfgs(objective, theta: np.ndarray) -> np.ndarray:
    """Minimise a smooth convex ``objective(theta) -> (loss, gradient)`` with L-BFGS.

    A plain two-loop L-BFGS with a backtracking (Armijo) line search, in the dtype of
    ``theta``. scipy's L-BFGS-B would do, but only in float64, and with a million or more
    unknowns its own bookkeeping (bounds, Cauchy point) cost more per iteration than the
    objective; this keeps MAX_CORRECTIONS pairs of float32 vectors and nothing else. Stops when
    the largest gradient component is below GTOL or after MAX_ITER iterations.
    """
    from scipy.linalg.blas import get_blas_funcs  # build-time only

    # BLAS axpy (y += a x) and dot work in place: no temporary copies of million-element vectors.
    axpy, dot = get_blas_funcs(("axpy", "dot"), (theta,))
    loss, grad = objective(theta)
    history: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(MAX_ITER):
        if float(np.abs(grad).max()) <= GTOL:
            break
        # Two-loop recursion: direction = -H grad.
        direction = grad.copy()
        alphas = []
        for s, y, rho in reversed(history):
            alpha = rho * float(dot(s, direction))
            axpy(y, direction, a=-alpha)
            alphas.append(alpha)
        if history:
            s, y, _ = history[-1]
            direction *= float(dot(s, y)) / float(dot(y, y))
        else:
            direction *= 1.0 / max(float(np.sqrt(dot(grad, grad))), 1e-12)
        for (s, y, rho), alpha in zip(history, reversed(alphas), strict=True):
            beta = rho * float(dot(y, direction))
            axpy(s, direction, a=alpha - beta)
        direction *= -1.0
        slope = float(dot(grad, direction))
        if slope >= 0:  # not a descent direction (rounding): restart from the gradient
            history.clear()
            direction = grad * (-1.0 / max(float(np.sqrt(dot(grad, grad))), 1e-12))
            slope = float(dot(grad, direction))
        step = 1.0
        for _ in range(30):
            candidate = theta.copy()
            axpy(direction, candidate, a=step)
            new_loss, new_grad = objective(candidate)
            if new_loss <= loss + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break  # no decrease possible at this precision: converged
        s_vec = direction
        s_vec *= step  # = candidate - theta, in the direction's memory
        y_vec = grad
        np.subtract(new_grad, grad, out=y_vec)  # = new_grad - grad, in the old gradient's
        sy = float(dot(s_vec, y_vec))
        if sy > 1e-12:
            history.append((s_vec, y_vec, 1.0 / sy))
            if len(history) > MAX_CORRECTIONS:
                history.pop(0)
        theta, loss, grad = candidate, new_loss, new_grad
    return theta


def _merge_collinear_columns(matrix):
    """Merge the sparse columns that are positive multiples of one another into one column each.

    Many n-grams occur in exactly the same examples with the same relative weights ("boo",
    "book" and "ook" in one example only): their columns are collinear. Replacing a group of
    collinear columns ``s_j u`` (``u`` unit) by the single column ``S u`` with
    ``S = sqrt(sum s_j^2)`` leaves ``X Xᵀ`` unchanged, and the L2-penalised optimum gives each
    member the weight row ``(s_j / S) w`` of the merged column's ``w`` (the optimum lies in the
    rows' span), so the fit is exactly the same with half the unknowns or fewer.

    Returns the merged CSR matrix, each original column's group and its share ``s_j / S``.
    """
    from scipy.sparse import csc_matrix, csr_matrix

    csc = csc_matrix(matrix)
    csc.sort_indices()
    n_cols = csc.shape[1]
    indptr, indices, data = csc.indptr, csc.indices, csc.data
    # Column norms and unit directions for all columns at once, the directions quantised to
    # integers so that equal directions have equal bytes (one numpy pass, not one per column).
    lengths = np.diff(indptr)
    column_of = np.repeat(np.arange(n_cols), lengths)
    scale = np.sqrt(np.bincount(column_of, weights=data * data, minlength=n_cols))
    unit = data / scale[column_of] if len(data) else data
    quantised = np.round(unit * 1e9).astype(np.int64)
    group = np.full(n_cols, -1, dtype=np.intp)
    keys: dict[tuple[bytes, bytes], int] = {}
    starts: list[int] = []
    squared: list[float] = []
    for j in np.flatnonzero(scale > 0).tolist():
        a, b = indptr[j], indptr[j + 1]
        key = (indices[a:b].tobytes(), quantised[a:b].tobytes())
        g = keys.get(key)
        if g is None:
            g = keys[key] = len(starts)
            starts.append(j)
            squared.append(0.0)
        squared[g] += scale[j] * scale[j]
        group[j] = g
    directions = [
        (indices[indptr[j] : indptr[j + 1]], unit[indptr[j] : indptr[j + 1]]) for j in starts
    ]
    totals = np.sqrt(np.asarray(squared)) if squared else np.zeros(0)
    if directions:
        rows = np.concatenate([r for r, _ in directions])
        cols = np.concatenate([np.full(len(r), g) for g, (r, _) in enumerate(directions)])
        vals = np.concatenate([u * totals[g] for g, (_, u) in enumerate(directions)])
    else:
        rows = cols = np.zeros(0, dtype=np.intp)
        vals = np.zeros(0)
    merged = csr_matrix((vals, (rows, cols)), shape=(matrix.shape[0], len(directions)))
    share = np.where(group >= 0, scale / np.where(group >= 0, totals[np.maximum(group, 0)], 1), 0)
    return merged, group, share


def _fit_softmax(
    matrix, dense: np.ndarray | None, y: np.ndarray, n_classes: int, c: float
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Multinomial logistic regression, L2-penalised, classes balanced, fitted with L-BFGS.

    Same objective as scikit-learn's ``LogisticRegression(C=c, class_weight="balanced")``
    (intercept unpenalised) over the sparse n-gram columns ``matrix`` and the optional dense
    columns ``dense``. Solved in the primal, so each iteration costs two products with the
    sparse matrix (linear in the number of n-gram occurrences) rather than with an
    ``examples x examples`` Gram matrix (quadratic, 26.6 s and 738 MB at 150 intents x 30
    examples): collinear n-gram columns are merged first (see ``_merge_collinear_columns``),
    which keeps the unknowns, and L-BFGS's memory, small. Starting from zero, L-BFGS iterates
    stay in the rows' span, so the iterations are those of the earlier span-coordinates solver.
    Not importing scikit-learn (about a second) keeps a persona rebuild (hot reload) fast.

    Returns the n-gram weights, the dense weights (None without dense columns) and the bias.
    """
    merged, group, share = _merge_collinear_columns(matrix)
    n, g = merged.shape
    d = 0 if dense is None else dense.shape[1]
    # float32 throughout the iterations: half the memory traffic of the products and half the
    # optimiser's memory; the loss is summed in float64.
    merged_t = merged.T.tocsr().astype(np.float32)
    dense32 = None if dense is None else dense.astype(np.float32)
    counts = np.bincount(y, minlength=n_classes)
    sample_weight = ((n / (n_classes * counts))[y] / n).astype(np.float32)  # balanced
    onehot = np.zeros((n, n_classes), dtype=np.float32)
    onehot[np.arange(n), y] = 1.0
    penalty = np.float32(1.0 / (c * n))
    size_sparse = g * n_classes
    size = size_sparse + d * n_classes

    from scipy.linalg.blas import get_blas_funcs

    axpy = get_blas_funcs("axpy", (np.zeros(1, dtype=np.float32),))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[:size_sparse].reshape(g, n_classes)
        z = merged_t.T @ w  # CSC product: faster than a CSR one for this shape
        z += theta[size:]
        if d:
            z += dense32 @ theta[size_sparse:size].reshape(d, n_classes)
        z -= z.max(axis=1, keepdims=True)
        exp = np.exp(z)
        total = exp.sum(axis=1, keepdims=True)
        log_p = (z * onehot).sum(axis=1) - np.log(total[:, 0])
        loss = -float(np.dot(sample_weight.astype(np.float64), log_p.astype(np.float64)))
        params = theta[:size]
        loss += 0.5 * float(penalty) * float(np.dot(params, params))
        exp /= total
        exp -= onehot
        exp *= sample_weight[:, None]  # the residual
        grad = np.empty_like(theta)
        grad[:size_sparse] = (merged_t @ exp).ravel()
        if d:
            grad[size_sparse:size] = (dense32.T @ exp).ravel()
        axpy(params, grad[:size], a=float(penalty))
        grad[size:] = exp.sum(axis=0)
        return loss, grad

    theta = _lbfgs(objective, np.zeros(size + n_classes, dtype=np.float32))
    w_merged = theta[:size_sparse].reshape(g, n_classes)
    weights = np.zeros((len(group), n_classes), dtype=np.float32)
    known = group >= 0
    weights[known] = share[known, None] * w_merged[group[known]]
    dense_weights = theta[size_sparse:size].reshape(d, n_classes).astype(float) if d else None
    return weights, dense_weights, theta[size:].astype(float)


def _top(probs: list[float]) -> list[int]:
    """Indices of the TOP_K highest probabilities, highest first.

    With at most TOP_K intents, ties keep the intents' order. With more, ties around the top
    TOP_K are left to the numpy partition that always ranked them, so that a ranking never
    depends on how it was computed; without ties the top values are simply sorted.
    """
    n = len(probs)
    if n <= TOP_K:
        return sorted(range(n), key=probs.__getitem__, reverse=True)
    head = sorted(probs, reverse=True)[: TOP_K + 1]
    if len(set(head)) == len(head):  # no ties: each top value names one intent
        return [probs.index(p) for p in head[:TOP_K]]
    array = np.asarray(probs)
    top = np.argpartition(-array, TOP_K - 1)[:TOP_K]
    return top[np.argsort(-array[top], kind="stable")].tolist()


# Known n-grams of a message as vocabulary indices, their TF-IDF weights (not yet normalised,
# see _scores) and the weights' squared length.
_Vector = tuple[np.ndarray, np.ndarray, float]


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
        self._explicit_threshold: float | None = None
        self.calibrated_threshold = DEFAULT_THRESHOLD
        if threshold is not None:
            self.threshold = threshold
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
        # Only keywords whose first characters occur in the message are tested: a short
        # message touches a handful of them instead of every keyword of the persona.
        self._keyword_index = PhraseIndex(phrase for phrase, _ in self._keywords)
        self._keyword_intents = [index for _, index in self._keywords]
        # An intent with keywords and no examples has no other evidence: its keyword lifts it
        # by KEYWORD_ONLY_BOOST, which makes it confident; others get KEYWORD_BOOST.
        with_examples = {self._index[name] for name, phrases in examples.items() if phrases}
        self._keyword_boost = np.asarray(
            [KEYWORD_BOOST if i in with_examples else KEYWORD_ONLY_BOOST for i in range(len(names))]
        )
        self._cached_token = lru_cache(maxsize=TOKEN_CACHE_SIZE)(self._token)
        self._cached_alone = lru_cache(maxsize=TOKEN_CACHE_SIZE)(self._alone)
        self._has_pinyin = any(gram.startswith("q:") for gram in self._vocab)
        self.calibrated_threshold = self._calibrate(set(texts))

    # -- building ---------------------------------------------------------------------------

    # Bump when the features or the fit change, so cached fits from older code are not used.
    _FIT_VERSION = 4  # the fit only: keywords and calibration are applied at load

    def _fit(self, texts: list[str], labels: list[int]) -> None:
        """Fit (or load the cached fit of) TF-IDF and the classifier."""
        digest = fitcache.key(
            self._FIT_VERSION,
            C,
            EMBED_WEIGHT,
            JITTER,
            MAX_ITER,
            GTOL,
            MAX_CORRECTIONS,
            PINYIN_FEATURES,
            self.intents,
            texts,
            labels,
            self._vectors.dims if self._vectors is not None else 0,
        )
        self._fit_digest = digest
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
            grams = Counter(features(text))
            docs.append({vocab.setdefault(gram, len(vocab)): n for gram, n in grams.items()})
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
        from scipy.sparse import csr_matrix  # build-time only: keep import cost low

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
            if not dense.any():
                dense = None
        # Intents with only keywords get no examples: a very low bias keeps them out of the
        # ranking unless a keyword fires.
        self._bias[:] = -10.0
        classes = np.asarray(trained)
        remap = np.searchsorted(classes, y)
        with _single_threaded_blas():
            weights, dense_weights, bias = _fit_softmax(matrix, dense, remap, len(classes), C)
        if dense_weights is not None:
            self._dense_weights = np.zeros((dense_weights.shape[0], n_intents))
            self._dense_weights[:, classes] = EMBED_WEIGHT * dense_weights
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
        intents = self._keyword_intents
        return {intents[position] for position in self._keyword_index.found(normalized)}

    def _token(self, token: str) -> tuple[list[int], int, list[str], list[str], int]:
        """What one token adds to a message: the vocabulary indices of its known n-grams (with
        repeats, in feature order), its count of unknown n-grams, its entries in the English
        word sequence (see ``_token_features``), its ASCII words and its count of other runs
        (see ``english_words``). A pure function of the token for a given fit."""
        grams, stems = _token_features(token)
        get = self._vocab.get
        known = [j for j in map(get, grams) if j is not None]
        ascii_words, other = _token_english(token)
        return known, len(grams) - len(known), stems, ascii_words, other

    def _alone(self, token: str) -> tuple[_Vector | None, int, list[str], int]:
        """``_counted`` of a message made of this one token (a pure function of the token)."""
        vector, unknown, ascii_words, other = self._counted([token])
        if vector is not None:
            for array in vector[:2]:
                array.flags.writeable = False  # shared by every message made of this token
        return vector, unknown, ascii_words, other

    def _counted(self, tokens: list[str]) -> tuple[_Vector | None, int, list[str], int]:
        """The known n-grams' TF-IDF vector of a message's tokens (None without any), its count
        of unknown n-grams, its ASCII words and its count of other runs."""
        counts: dict[int, int] = {}  # first-occurrence order, as features() lists them
        count = counts.get
        unknown = 0
        words: list[str] = []
        ascii_words: list[str] = []
        other = 0
        cached, uncached = self._cached_token, self._token
        for token in tokens:
            k, u, s, a, o = (cached if len(token) <= TOKEN_CACHE_CHARS else uncached)(token)
            for j in k:
                counts[j] = count(j, 0) + 1
            unknown += u
            words += s
            ascii_words += a
            other += o
        vocab = self._vocab
        for gram in _bigrams(words):
            j = vocab.get(gram)
            if j is None:
                unknown += 1
            else:
                counts[j] = count(j, 0) + 1
        if not counts:
            return None, unknown, ascii_words, other
        idx = np.fromiter(counts, dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.intp, count=len(counts))
        x = _SUBLINEAR_TF.take(tf) * self._idf[idx]
        xx = float(np.dot(x, x))  # np.dot: less per-call overhead than @ on tiny arrays
        return (idx, x, xx), unknown, ascii_words, other

    def _scores(self, normalized: str, hits: set[int]) -> tuple[list[float], float]:
        """Probabilities, and the weight given to the static vector (0 when none was used).

        n-gram counts → sublinear TF-IDF → gathered weight rows (+ static vector) → softmax,
        arranged for short messages: per-token work cached, and few numpy calls, each with less
        per-call overhead than the obvious spelling (numpy's fixed cost per call dominates on
        arrays this small).
        """
        tokens = normalized[:MAX_CHARS].split()
        if len(tokens) == 1 and len(tokens[0]) <= TOKEN_CACHE_CHARS:
            # A one-token message (most Chinese ones): its TF-IDF vector is the token's own, as
            # a token has no word bigrams (its English runs are separated by Chinese ones).
            vector, unknown, ascii_words, other = self._cached_alone(tokens[0])
        else:
            vector, unknown, ascii_words, other = self._counted(tokens)
        logits = self._bias
        known_share = used = 0.0
        if vector is not None:
            idx, x, xx = vector
            norm = math.sqrt(xx + unknown * self._unknown_idf2)
            logits = logits + np.dot(x / norm, self._weights.take(idx, axis=0))
            known_share = math.sqrt(xx) / norm
        if self._dense_weights is not None and known_share:
            e = self._vectors.embed_words(ascii_words)
            if e is not None:
                share = len(ascii_words) / (len(ascii_words) + other)
                used = share * known_share
                logits = logits + used * np.dot(e, self._dense_weights)
        if self._single:
            if vector is None:
                return [0.0] * len(logits), 0.0
            return np.clip(logits, 0.0, 1.0).tolist(), 0.0
        if logits is self._bias:
            logits = logits.copy()
        return self._softmax(logits, hits), used

    def _softmax(self, logits: np.ndarray, hits: set[int]) -> list[float]:
        """Probabilities of (a private copy of) logits, keyword intents lifted first."""
        # The ufuncs' reduce rather than the .max()/.sum() methods: same results, less overhead.
        if hits:
            # A keyword adds KEYWORD_BOOST to its intent's logit: evidence on top of the
            # examples', not a verdict. Keyword-only intents (no examples, so nothing else to
            # go on) are lifted above the best example-based score by KEYWORD_ONLY_BOOST.
            hit = list(hits)
            boost = self._keyword_boost[hit]
            only = boost > KEYWORD_BOOST
            if only.any():
                lift = float(np.maximum.reduce(logits) - np.minimum.reduce(logits[hit]))
                boost = np.where(only, max(0.0, lift) + boost, boost)
            logits[hit] += boost
        logits -= np.maximum.reduce(logits)
        probs = np.exp(logits)
        probs /= np.add.reduce(probs)
        return probs.tolist()

    def _pinyin_probs(self, syllables: list[str], hits: set[int]) -> list[float]:
        """Probabilities of a message typed in pinyin, from the pinyin features alone."""
        counts: dict[int, int] = {}
        unknown = 0
        vocab = self._vocab
        for gram in _pinyin_grams(syllables):
            j = vocab.get(gram)
            if j is None:
                unknown += 1
            else:
                counts[j] = counts.get(j, 0) + 1
        logits = self._bias.copy()
        if counts:
            idx = np.fromiter(counts, dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.intp, count=len(counts))
            x = _SUBLINEAR_TF.take(tf) * self._idf[idx]
            norm = math.sqrt(float(np.dot(x, x)) + unknown * self._unknown_idf2)
            logits += np.dot(x / norm, self._weights.take(idx, axis=0))
        return self._softmax(logits, hits)

    def match(self, text: str) -> Match:
        """Match a raw message (normalised here)."""
        return self.match_normalized(normalize(text))

    def _score(self, normalized: str) -> tuple[list[float], list[int], set[int], float]:
        """Probabilities, the top intents' indices, the keyword hits and the acceptance shift.

        The shift is what the threshold is raised by for this message (see
        EMBED_THRESHOLD_SHIFT): a message is accepted when ``confidence - shift`` reaches the
        threshold, the same score the calibration takes its quantile of.
        """
        hits = self._keyword_indices(normalized) if self._keywords else set()
        probs, used = self._scores(normalized, hits)
        if PINYIN_FEATURES and not self._single and self._has_pinyin:
            # A message typed in pinyin is also scored on pinyin features alone; the more
            # confident reading wins (an English sentence is almost never all syllables).
            syllables = typed_pinyin(normalized)
            if syllables is not None:
                alternative = self._pinyin_probs(syllables, hits)
                if max(alternative) > max(probs):
                    probs, used = alternative, 0.0
        if self._single:
            for i in hits:
                probs[i] = max(probs[i], KEYWORD_CONFIDENCE)
        top = _top(probs)
        return probs, top, hits, EMBED_THRESHOLD_SHIFT * used

    def match_normalized(self, normalized: str) -> Match:
        """Match a message that is already normalised (saves a second normalisation)."""
        if not self.intents:
            return Match(None, 0.0, "", ())
        probs, top, hits, shift = self._score(normalized)
        ranking = tuple((self.intents[i], probs[i]) for i in top)
        best, confidence = ranking[0]
        threshold = min(1.0, self.threshold + shift)
        intent = best if confidence >= threshold else None
        if intent is not None and top[0] in hits and confidence > KEYWORD_UNSURE_CONFIDENCE:
            confidence = self._keyword_margin(confidence, top[0], threshold)
        return Match(intent, confidence, best, ranking)

    def _keyword_margin(self, confidence: float, index: int, threshold: float) -> float:
        """The confidence of a keyword-lifted intent, at most KEYWORD_UNSURE_CONFIDENCE when
        its examples alone would not have accepted it.

        Undoing the lift of the softmax is exact for one lifted intent: with odds o = p/(1-p),
        the lift multiplies them by e^boost. Keyword-only intents (no examples, nothing else to
        go on) keep their confidence.
        """
        boost = float(self._keyword_boost[index])
        if self._single or boost != KEYWORD_BOOST:
            return confidence
        unlifted = confidence / (confidence + (1.0 - confidence) * math.exp(boost))
        if unlifted >= threshold:
            return confidence
        return max(threshold, KEYWORD_UNSURE_CONFIDENCE)

    # -- calibration --------------------------------------------------------------------------

    # Bump when scoring changes in a way the fit's digest does not see (keywords, pinyin path,
    # thresholds), so cached calibrations from older code are not used.
    _CALIBRATION_VERSION = 1

    def oos_scores(self, exclude: set[str] = frozenset()) -> np.ndarray:
        """Acceptance scores (confidence minus shift) of the shipped out-of-scope phrases.

        Phrases equal to one of ``exclude`` (the persona's own normalised examples) are
        skipped: a persona that does answer "tell me a joke" must not be calibrated against it.
        """
        out = []
        for phrase in oos_corpus():
            if phrase in exclude:
                continue
            probs, top, _hits, shift = self._score(phrase)
            out.append(probs[top[0]] - shift)
        return np.asarray(out)

    def _calibrate(self, examples: set[str]) -> float:
        """The threshold that rejects OOS_QUANTILE of the shipped out-of-scope phrases.

        Why: softmax confidence shrinks as intents are added and examples removed, so one fixed
        threshold accepts 39% of a 31-intent persona's right answers and 61% of a 150-intent
        one's. Out-of-scope messages shrink with it, so the quantile of their scores moves with
        the persona: what stays put is the share of chit-chat the bot declines. Bounded by
        THRESHOLD_BOUNDS so that a degenerate persona (one intent, a corpus it happens to
        cover) still gets a usable threshold; DEFAULT_THRESHOLD without a corpus.
        """
        if not self.intents:
            return DEFAULT_THRESHOLD
        # Cached beside the fit (a reload whose examples did not change skips the scoring too):
        # the result depends on the fit, the keywords, the corpus and the settings below.
        corpus = oos_corpus()
        digest = fitcache.key(
            "calibration",
            self._CALIBRATION_VERSION,
            self._fit_digest,
            [(phrase.text, index) for phrase, index in self._keywords],
            corpus,
            OOS_QUANTILE,
            THRESHOLD_BOUNDS,
            MIN_OOS_PHRASES,
            KEYWORD_BOOST,
            KEYWORD_ONLY_BOOST,
            EMBED_THRESHOLD_SHIFT,
        )
        cached = fitcache.load(digest, kind="calibration")
        if cached is not None and "threshold" in cached:
            return float(cached["threshold"])
        scores = self.oos_scores(examples)
        if len(scores) < MIN_OOS_PHRASES:
            threshold = DEFAULT_THRESHOLD
        else:
            low, high = THRESHOLD_BOUNDS
            threshold = float(min(high, max(low, np.quantile(scores, OOS_QUANTILE))))
        fitcache.save(digest, {"threshold": np.asarray(threshold)}, kind="calibration")
        return threshold

    @property
    def threshold(self) -> float:
        """Confidence below which no intent is reported, in [0, 1].

        The calibrated threshold (see ``_calibrate``) unless one was set explicitly (a
        persona's ``nlu.threshold``, or by assignment); ``threshold = None`` goes back to the
        calibrated one.
        """
        if self._explicit_threshold is not None:
            return self._explicit_threshold
        return self.calibrated_threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        if value is None:
            self._explicit_threshold = None
            return
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {value}")
        self._explicit_threshold = float(value)

    @property
    def threshold_source(self) -> str:
        """``'explicit'`` when set by the persona or a caller, else ``'calibrated'``."""
        return "calibrated" if self._explicit_threshold is None else "explicit"

    def __repr__(self) -> str:
        return f"IntentMatcher({len(self.intents)} intents, threshold={self.threshold:.2f})"

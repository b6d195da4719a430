"""Static English sentence vectors: SIF-weighted mean of distilled WordPiece token vectors.

The token vectors in ``data/`` were distilled once from the all-MiniLM-L6-v2 sentence
transformer (Apache-2.0) by ``bench/distill_vectors.py``: each vocabulary token was embedded
alone through the model, PCA-reduced and stored as int8. At run time this module needs numpy
only, no transformer and no tokenizer library: a greedy longest-match-first WordPiece tokenizer
(the same algorithm as BERT's) splits each English word into vocabulary pieces, and a message's
vector is the weighted mean of its pieces' vectors, L2-normalised.

Only ASCII words are embedded: the vectors come from an English model, so Chinese text (and
any other script) is left to the n-gram features, and a message without an English word gets
no vector at all (:func:`embed` returns None).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["StaticVectors", "load"]

DATA = Path(__file__).resolve().parent / "data"
# Words longer than this are not split (BERT's limit too): they are not words but pasted junk.
MAX_WORD_CHARS = 100
# The stored SIF weights a / (a + p(word)) are applied to this power: the square root beat
# both full SIF and no weighting on CLINC150 val (nearest centroid and in the matcher).
SIF_POWER = 0.5
# Per-word cache size: a bot sees the same few thousand words over and over (1 KB each).
CACHE_WORDS = 8_000


class StaticVectors:
    """Token vectors and the WordPiece vocabulary they belong to."""

    def __init__(self, tokens: list[str], quantized: np.ndarray, scale: np.ndarray) -> None:
        # Kept as int8 rows with a float32 scale each (7 MB rather than 28 MB as float32);
        # a word's rows are dequantised when it is first seen, then cached.
        self.dims = quantized.shape[1]
        self._ids = {tok: i for i, tok in enumerate(tokens)}
        self._q = quantized
        self._scale = scale
        self.word_vector = lru_cache(maxsize=CACHE_WORDS)(self._word_vector)

    def wordpieces(self, word: str) -> list[int]:
        """Greedy longest-match-first WordPiece split of one lowercase word ([] if impossible)."""
        ids = self._ids
        if len(word) > MAX_WORD_CHARS:
            return []
        out = []
        start, n = 0, len(word)
        while start < n:
            end = n
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                j = ids.get(piece)
                if j is not None:
                    out.append(j)
                    break
                end -= 1
            else:
                return []  # BERT maps the whole word to [UNK]: no vector
            start = end
        return out

    def _word_vector(self, word: str) -> np.ndarray | None:
        """Sum of a word's weighted piece vectors (None when it cannot be split)."""
        pieces = self.wordpieces(word)
        if not pieces:
            return None
        return (self._q[pieces].astype(np.float32) * self._scale[pieces, None]).sum(axis=0)

    def embed_words(self, words: list[str]) -> np.ndarray | None:
        """Unit-length mean vector of the given ASCII words, None when none has a vector."""
        total = None
        for word in words:
            v = self.word_vector(word)
            if v is not None:
                total = v if total is None else total + v  # never in place: v is cached
        if total is None:
            return None
        norm = float(np.sqrt(total @ total))
        return total / norm if norm > 0 else None


@lru_cache(maxsize=1)
def load(path: Path = DATA) -> StaticVectors:
    """The distilled vectors (loaded once per process, ~20 ms)."""
    tokens = (path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    with np.load(path / "vectors.npz") as data:
        weight = data["weight"].astype(np.float32) ** SIF_POWER
        scale = data["scale"].astype(np.float32) * weight
        quantized = data["q"]
    return StaticVectors(tokens, quantized, scale)

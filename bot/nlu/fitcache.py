"""A content-addressed cache of fitted matchers, so a restart does not refit.

Fitting a persona's matcher takes ~0.5 s and imports scipy (~50 MB); the result depends only on
the example phrases, their labels and the model's settings. The fitted arrays are saved under a
hash of exactly those inputs, so an edited persona can never load a stale fit, and a daemon
restart (or a second `brandbot chat`) starts without fitting. The calibrated threshold is cached
the same way (``kind="calibration"``), keyed by the fit, the keywords and the out-of-scope
corpus. The cache is an optimisation
only: any error reading or writing it falls back to fitting.

Location: ``BRANDBOT_CACHE_DIR``, else ``$XDG_CACHE_HOME/brandbot``, else ``~/.cache/brandbot``;
``BRANDBOT_CACHE_DIR=off`` disables it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("brandbot.nlu")


def cache_dir() -> Path | None:
    configured = os.environ.get("BRANDBOT_CACHE_DIR")
    if configured:
        return None if configured.lower() in ("off", "0", "none") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "brandbot"


def key(*parts: Any) -> str:
    """A hash of everything a fit depends on (JSON-serialisable parts)."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:32]


def load(digest: str, kind: str = "matcher") -> dict[str, np.ndarray] | None:
    """The arrays saved under ``kind`` and ``digest``, None when absent or unreadable."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"{kind}-{digest}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: refit
        log.debug("ignoring unreadable matcher cache %s: %s", path, exc)
        return None


def save(digest: str, arrays: dict[str, np.ndarray], kind: str = "matcher") -> None:
    """Save arrays under ``kind`` (``matcher`` fits, ``calibration`` thresholds) and ``digest``."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, folder / f"{kind}-{digest}.npz")
    except Exception as exc:  # noqa: BLE001 - read-only home, full disk: just don't cache
        log.debug("could not write matcher cache in %s: %s", folder, exc)

"""Fit personas' matchers in a separate process, filling the fit cache.

The daemon is long-lived: importing scipy and fitting in its own process would keep ~80 MB of
peak memory for its whole life. ``prefit(refs)`` runs ``python -m bot.nlu.prefit REF...`` first;
the daemon then loads the fitted arrays from the cache (bot/nlu/fitcache.py) without scipy.
Any failure here is harmless: the daemon's own load then fits in-process (and reports
persona errors with their lines). ``BRANDBOT_PREFIT=off`` skips the child and fits in process:
for a process that opens many daemons and holds scipy anyway (the test suite's in-process
daemons), where each child would cost ~0.5 s of Python start-up for nothing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from bot.nlu import fitcache

log = logging.getLogger("brandbot.nlu")


def prefit(refs: list[str], timeout: float = 60.0) -> None:
    if fitcache.cache_dir() is None or not refs:
        return
    if os.environ.get("BRANDBOT_PREFIT", "").lower() in ("off", "0", "no"):
        return
    try:
        subprocess.run(
            [sys.executable, "-m", "bot.nlu.prefit", *refs],
            check=False, timeout=timeout, capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("prefit failed (%s); fitting in process", exc)


def main(refs: list[str]) -> int:
    """Fit each persona's matcher (as bot/brand.py ``load_brand`` does), which fills the cache.

    Only the persona file and the understander: the dialog and the voice do not touch the
    cache, and loading them from here would make the nlu package import bot.brand above it.
    """
    from bot.nlu import Understander
    from bot.persona.loader import load_persona_file, resolve_file

    for ref in refs:
        try:
            persona, _ = load_persona_file(resolve_file(str(ref), "personas"))
            Understander(persona)
        except Exception:  # noqa: BLE001 - reported by the daemon's own load
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

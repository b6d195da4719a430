"""The prefit child fills the fit cache; BRANDBOT_PREFIT=off leaves the fit to the caller."""

from __future__ import annotations

from bot.nlu.prefit import prefit
from tests.conftest import TINY


def test_prefit_fills_an_empty_cache_from_a_child_process(tmp_path, monkeypatch):
    monkeypatch.setenv("BRANDBOT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BRANDBOT_PREFIT", raising=False)
    prefit([str(TINY)])
    assert list(tmp_path.glob("matcher-*.npz")), "the child fitted nothing into the cache"


def test_prefit_off_starts_no_child_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BRANDBOT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("BRANDBOT_PREFIT", "off")
    prefit([str(TINY)])
    assert list(tmp_path.iterdir()) == []

"""Shared fixtures: every test runs offline with its own decoded-dataset cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _offline_and_private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("MTL_STUDY_OFFLINE", "1")  # no torchvision download attempts
    # a fresh folder per test, beside (never inside) its tmp_path: no test sees another's cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))

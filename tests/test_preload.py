"""study.preload: the driver's later imports run in a background thread, and none is lost to a
rename (a module it names that no longer exists would silently stop overlapping)."""

from __future__ import annotations

import importlib.util
import sys

from study import preload


def test_every_preloaded_module_exists() -> None:
    missing = [name for name in preload.MODULES if importlib.util.find_spec(name) is None]
    assert not missing


def test_a_failing_import_is_skipped_and_the_rest_are_imported() -> None:
    assert "wave" not in sys.modules  # a standard module nothing here imports
    thread = preload.start(("no_such_module_of_mtl_study", "wave"))
    thread.join(timeout=30)
    assert not thread.is_alive() and thread.daemon
    assert "wave" in sys.modules and "no_such_module_of_mtl_study" not in sys.modules

"""A study in object storage, for the analysis: synced into a local cache, then read as usual.

`python -m analysis.table|report s3://bucket/prefix/name [--storage-endpoint URL]` copies the
study's small files (results, settings, Ray's states, the Optuna SQLite file; never the model
weights) into the same cache a driver uses (`studyfiles.storage.cache_folder`), copying only what
changed since the last sync, and says so in one line on stderr. `report --watch` re-syncs the
cache every round (`refresher`), so only new or changed files travel. A driver on this machine
writes the Optuna SQLite file of that cache between its uploads: a copy changed since the last
sync is left as it is, never overwritten by the older one in the store. The analysis writes
nothing into the store. Imports no torch, Ray or trainables (studyfiles.storage and study.location's
patterns are dependency-free).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from errors import AnalysisError, UserError
from names import OPTUNA_DB


def _remote(study: str, endpoint: str | None, cache_dir: str | None):
    """(its Location, its cache folder) for a study URI; None for a local folder."""
    from studyfiles import storage

    if not storage.is_remote(study):
        if endpoint:
            raise AnalysisError(f"--storage-endpoint is for a study in object storage, not {study}")
        return None
    try:
        loc = storage.resolve(study.rstrip("/"), endpoint)
        storage.check_study(loc)
    except UserError as exc:
        raise AnalysisError(str(exc).replace("--resume ", "", 1)) from None
    return loc, storage.cache_folder(loc, cache_dir)


def _sync(loc, cache: Path):
    """Bring the cache up to date (model weights excepted, and a live Optuna file kept)."""
    from studyfiles import storage

    live = (OPTUNA_DB,) if storage.changed_here(cache, OPTUNA_DB) else ()
    return storage.sync_down(loc, cache, exclude=(*storage.MODEL_WEIGHTS, *live))


def local_study(study: str, endpoint: str | None = None, cache_dir: str | None = None) -> str:
    """`study` itself when it is a local folder; else the folder of its synced local cache.
    Raises AnalysisError (one line) on an unreachable store or a URI holding no study."""
    remote = _remote(study, endpoint, cache_dir)
    if remote is None:
        return study
    loc, cache = remote
    try:
        report = _sync(loc, cache)
    except OSError as exc:
        raise AnalysisError(f"{loc.uri}: cannot be read ({_first_line(exc)})") from None
    print(
        f"{loc.uri}: synced to the local cache {cache} ({len(report.copied)} files copied, "
        f"{report.unchanged} unchanged); reading it there",
        file=sys.stderr,
    )
    return str(cache)


def shown_name(study: str, endpoint: str | None = None) -> str:
    """How commands printed for `study` (a folder or a URI, as the user gave it) name it: a
    remote study's URI with the flags that reach its store."""
    from studyfiles import storage

    return study + storage.endpoint_flags(endpoint) if storage.is_remote(study) else study


def refresher(
    study: str, endpoint: str | None = None, cache_dir: str | None = None
) -> Callable[[], str | None] | None:
    """For `report --watch` of a study URI: a function that re-syncs its cache (only what
    changed) and returns a line to log when the store could not be read (the last copy is
    shown meanwhile); None for a local folder, which needs no syncing."""
    remote = _remote(study, endpoint, cache_dir)
    if remote is None:
        return None
    loc, cache = remote

    def refresh() -> str | None:
        try:
            _sync(loc, cache)
        except OSError as exc:
            return f"{loc.uri}: cannot be read now ({_first_line(exc)}); showing the last copy"
        return None

    return refresh


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def add_arguments(parser) -> None:
    """The flags of a study in object storage, for the analysis commands."""
    parser.add_argument("--storage-endpoint", help="endpoint of an S3-compatible store")
    parser.add_argument(
        "--cache-dir", help="where a remote study's local cache lives (default ~/.cache/mtl-study)"
    )

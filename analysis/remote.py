"""A study in object storage, for the analysis: synced into a local cache, then read as usual.

`python -m analysis.table|report s3://bucket/prefix/name [--storage-endpoint URL]` copies the
study's small files (results, settings, Ray's states, the Optuna SQLite file; never the model
weights) into the same cache a driver uses (`study.storage.cache_folder`), copying only what
changed since the last sync, and says so in one line on stderr. Imports no torch, Ray or
trainables (study.storage and study.location's patterns are dependency-free).
"""

from __future__ import annotations

import sys

from analysis.results import AnalysisError
from errors import UserError


def local_study(study: str, endpoint: str | None = None, cache_dir: str | None = None) -> str:
    """`study` itself when it is a local folder; else the folder of its synced local cache.
    Raises AnalysisError (one line) on an unreachable store or a URI holding no study."""
    from study import storage

    if not storage.is_remote(study):
        if endpoint:
            raise AnalysisError(f"--storage-endpoint is for a study in object storage, not {study}")
        return study
    try:
        loc = storage.resolve(study.rstrip("/"), endpoint)
        storage.check_study(loc)
        cache = storage.cache_folder(loc, cache_dir)
        report = storage.sync_down(loc, cache, exclude=storage.MODEL_WEIGHTS)
    except UserError as exc:
        raise AnalysisError(str(exc).replace("--resume ", "", 1)) from None
    print(
        f"{loc.uri}: synced to the local cache {cache} ({len(report.copied)} files copied, "
        f"{report.unchanged} unchanged); reading it there",
        file=sys.stderr,
    )
    return str(cache)


def shown_name(study: str, endpoint: str | None = None) -> str:
    """How commands printed for `study` (a folder or a URI, as the user gave it) name it: a
    remote study's URI with the flags that reach its store."""
    from study import storage

    return study + storage.endpoint_flags(endpoint) if storage.is_remote(study) else study


def add_arguments(parser) -> None:
    """The flags of a study in object storage, for the analysis commands."""
    parser.add_argument("--storage-endpoint", help="endpoint of an S3-compatible store")
    parser.add_argument(
        "--cache-dir", help="where a remote study's local cache lives (default ~/.cache/mtl-study)"
    )

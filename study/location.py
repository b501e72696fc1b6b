"""Where a study lives, for the runner: its storage, its local cache, its Optuna database.

A study on a local disk (`--storage ./studies`) is one folder, read and written in place. A
study in object storage (`--storage s3://bucket/prefix`, `--storage-endpoint` for S3-compatible
stores) lives there whole: Ray writes its experiments there (`RunConfig(storage_path=...,
storage_filesystem=...)`), and `study.json`, `tasks.json` and `confirmation.json` are written
there. The driver keeps a cache of it (`StudySettings.study_dir`, see `storage.cache_folder`)
for what it reads itself: Ray's experiment states, the result files the confirmation plan and
the summary read, and the Optuna SQLite file when no `--optuna-storage` URL is given (uploaded
beside the study at every experiment checkpoint by `study.remote.OptunaUpload`). Model weights
stay in the store (`MODEL_WEIGHTS` is never copied down).

No Ray import here: the checks run before Ray starts.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from errors import UserError
from names import OPTUNA_DB, SETTINGS_FILE
from study.checks import check_resumable, check_split_recorded
from study.settings import StudySettings, study_spaces, without_password
from studyfiles import storage

MODEL_WEIGHTS = storage.MODEL_WEIGHTS
HIDDEN = "***"  # how SQLAlchemy renders a hidden password


def is_remote(settings: StudySettings) -> bool:
    return storage.is_remote(settings.storage)


def location(settings: StudySettings) -> storage.Location:
    """The study's folder in its storage (for a local study, `study_dir` itself)."""
    return storage.resolve(settings.storage, settings.storage_endpoint).child(settings.name)


def optuna_url(settings: StudySettings) -> str:
    """Optuna's storage: `--optuna-storage`, else the SQLite file in the study dir (its cache)."""
    return settings.optuna_storage or f"sqlite:///{settings.study_dir / OPTUNA_DB}"


def has_optuna_db(settings: StudySettings) -> bool:
    """Whether the study has an Optuna database to open: its URL, or the SQLite file (never
    create an empty one by opening it)."""
    return bool(settings.optuna_storage) or (settings.study_dir / OPTUNA_DB).exists()


def check_new(settings: StudySettings) -> None:
    """Before anything runs: the storage answers, its bucket exists, the name is free there,
    and the database URL (when given) connects."""
    loc = location(settings)
    storage.check_storage(loc)
    if not loc.is_local and storage.exists(loc.child(SETTINGS_FILE)):
        raise UserError(
            f"study {settings.name!r} already exists in {settings.storage}; resume it with: "
            f"{resume_command(settings)}  (or pick another --name)"
        )
    if settings.optuna_storage:
        storage.check_database_url(settings.optuna_storage)
        _check_database_free(settings)


def _check_database_free(settings: StudySettings) -> None:
    """A new study's Optuna studies are named after its spaces: a database that holds one of
    those names holds another study's search, which this one would join (and mislead)."""
    taken = set(storage.optuna_study_names(settings.optuna_storage))
    clash = sorted(taken & {space.name for space in study_spaces(settings)})
    if clash:
        raise UserError(
            f"--optuna-storage {without_password(settings.optuna_storage)} already holds the "
            f"Optuna {'studies' if len(clash) > 1 else 'study'} {', '.join(clash)} of another "
            "study; give each study its own database (CREATE DATABASE ...)"
        )


def resumable(args: argparse.Namespace) -> StudySettings:
    """The study `--resume` names, local or remote (then synced into an empty or stale cache
    first), with this run's `--storage-endpoint`, `--cache-dir` and `--optuna-storage`."""
    if not storage.is_remote(args.resume):
        settings = check_resumable(Path(args.resume))
    else:
        loc = storage.resolve(args.resume.rstrip("/"), args.storage_endpoint)
        storage.check_study(loc)
        cache = storage.cache_folder(loc, args.cache_dir)
        storage.sync_down(loc, cache, exclude=MODEL_WEIGHTS)
        recorded = StudySettings.from_study_dir(cache)
        check_split_recorded(cache)
        settings = dataclasses.replace(
            recorded,
            storage=loc.uri.rsplit("/", 1)[0],
            name=loc.name,
            storage_endpoint=args.storage_endpoint,
            cache_dir=args.cache_dir,
        )
    url = args.optuna_storage or settings.optuna_storage
    if url and HIDDEN in url and not args.optuna_storage:
        raise UserError(
            f"--resume: the study's Optuna database {url} needs its password; pass "
            "--optuna-storage with the full URL again (or set PGPASSWORD)"
        )
    if args.optuna_storage:
        storage.check_database_url(args.optuna_storage)
    return dataclasses.replace(settings, optuna_storage=url)


def pull(settings: StudySettings, with_db: bool = False) -> None:
    """Bring the cache of a remote study up to date (model weights excepted); local: nothing.
    The Optuna SQLite file only `with_db` (at a resume): while a study runs, the cache's copy
    is the newer one."""
    if is_remote(settings):
        skip = MODEL_WEIGHTS if with_db else (*MODEL_WEIGHTS, OPTUNA_DB)
        storage.sync_down(location(settings), settings.study_dir, exclude=skip)


def write_text(settings: StudySettings, name: str, text: str) -> None:
    """Write a file of the study (study.json, tasks.json, ...) where it lives, and into the
    cache of a remote study, so the driver's own reads see it."""
    storage.write_text(location(settings).child(name), text)
    if is_remote(settings):
        storage.write_text(storage.resolve(str(settings.study_dir)).child(name), text)


def create_remote(settings: StudySettings, files: dict[str, str]) -> None:
    """Create a remote study: its settings file is created only if absent (a conditional write
    where the store has one), so of two drivers starting one name at once one wins."""
    from studyfiles.lock import backend_for

    loc = location(settings)
    if backend_for(loc.child(SETTINGS_FILE)).create(files[SETTINGS_FILE].encode()) is None:
        raise UserError(
            f"study {settings.name!r} already exists in {settings.storage}; resume it with: "
            f"{resume_command(settings)}  (or pick another --name)"
        )
    settings.study_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if name != SETTINGS_FILE:
            storage.write_text(loc.child(name), text)
    pull(settings, with_db=True)


def remove_experiment(settings: StudySettings, name: str) -> None:
    """Delete what a killed start-up left of an experiment, in the store and the cache."""
    import shutil

    if is_remote(settings):
        loc = location(settings).child(name)
        if storage.exists(loc):
            loc.fs.delete_dir(loc.path)
    shutil.rmtree(settings.study_dir / name, ignore_errors=True)


def upload_optuna_db(settings: StudySettings) -> None:
    """Upload the Optuna SQLite file of a remote study without a database URL (see module)."""
    if is_remote(settings) and not settings.optuna_storage:
        storage.sync_up(settings.study_dir, location(settings), only=[OPTUNA_DB])


def shown_path(settings: StudySettings, path: Path | None = None) -> str:
    """A path in the study (default: the study itself) as the user finds it: in the store for
    a remote study (`s3://bucket/prefix/name/...`), never its hidden local cache. Every line
    that names the study or a file of it goes through here."""
    path = settings.study_dir if path is None else path
    if not is_remote(settings):
        return str(path)
    try:
        rel = path.relative_to(settings.study_dir).as_posix()
    except ValueError:
        return str(path)
    uri = location(settings).uri
    return uri if rel == "." else f"{uri}/{rel}"


def store_flags(settings: StudySettings) -> str:
    """What a printed command needs after the study's URI to reach its store from any machine:
    ` --storage-endpoint URL` for a remote study in an S3-compatible store, else nothing."""
    return storage.endpoint_flags(settings.storage_endpoint if is_remote(settings) else None)


def for_new(args: argparse.Namespace) -> StudySettings:
    """A new study's settings, its storage, database and cluster checked (before Ray)."""
    from study.checks import settings_from_args

    settings = settings_from_args(args)
    check_new(settings)
    _check_cluster(args)
    return settings


def for_resume(args: argparse.Namespace) -> StudySettings:
    """The settings of the study `--resume` names, storage and cluster checked (before Ray)."""
    settings = resumable(args)
    _check_cluster(args)
    return settings


def _check_cluster(args: argparse.Namespace) -> None:
    if args.address:
        from study.cluster import check_address

        check_address(args.address)


def resume_command(settings: StudySettings) -> str:
    """The command that resumes this study, from any machine for a remote one."""
    return f"python -m study.run --resume {shown_path(settings)}{store_flags(settings)}"

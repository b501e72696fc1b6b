"""Where a study lives: a local folder or any URI pyarrow understands (`s3://bucket/prefix`).

A `--storage` value resolves to a `Location`: a `pyarrow.fs.FileSystem` plus a path in it, the
same pair Ray Tune takes as `RunConfig(storage_filesystem=..., storage_path=...)` and
`Tuner.restore(path, storage_filesystem=...)`. For S3-compatible stores (MinIO, Ceph, moto) an
endpoint (`--storage-endpoint http://host:port`) overrides AWS's; credentials come from the
environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, profiles, instance roles), as for
every AWS tool, and are never written into the study.

`check_storage` and `check_study` fail early, with one line (`UserError`), on an unreachable
endpoint, a missing bucket, or a URI that holds no study. `read_text`/`write_text` move the
small files of a study (`study.json`, `tasks.json`, `confirmation.json`); `sync_down` and
`sync_up` mirror a remote study and a local cache folder (see `sync_down` for what the cache
is for). No Ray import here: the CLI checks run before Ray starts.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fnmatch
import functools
import json
import os
import shlex
import urllib.parse
from pathlib import Path

from errors import UserError
from names import SETTINGS_FILE, default_cache_dir

CONNECT_TIMEOUT_S = 5.0  # an unreachable endpoint fails in seconds, not after minutes of retries
REQUEST_TIMEOUT_S = 30.0
SYNC_MANIFEST = ".sync.json"  # in a cache folder: what each file was when last synced
SYNC_THREADS = 8  # object stores answer slowly and in parallel


@dataclasses.dataclass(frozen=True)
class Location:
    """A folder in a filesystem: `fs` is a pyarrow FileSystem, `path` a path in it (for S3
    `bucket/prefix`, for a local folder an absolute path)."""

    uri: str  # as the user gave it, for messages
    fs: object  # pyarrow.fs.FileSystem (not typed: pyarrow is imported lazily)
    path: str
    endpoint: str | None = None

    @property
    def is_local(self) -> bool:
        return self.fs.type_name == "local"

    def child(self, *names: str) -> Location:
        path = "/".join([self.path.rstrip("/"), *names])
        uri = "/".join([self.uri.rstrip("/"), *names])
        return dataclasses.replace(self, path=path, uri=uri)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def is_remote(uri: str) -> bool:
    """A URI with a scheme other than file://: the study is not on a local disk."""
    scheme = urllib.parse.urlparse(str(uri)).scheme
    return len(scheme) > 1 and scheme != "file"  # a Windows drive letter is no scheme


@functools.lru_cache(maxsize=32)
def resolve(uri: str, endpoint: str | None = None) -> Location:
    """The filesystem and path of a `--storage`/`--resume` value. A malformed URI or endpoint,
    or a scheme pyarrow does not know, raises UserError. Cached: one filesystem per store."""
    from pyarrow import fs as pafs

    if not is_remote(uri):
        if endpoint:
            raise UserError(f"--storage-endpoint {endpoint} is for object stores, not {uri}")
        local = Path(urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri)
        return Location(uri, pafs.LocalFileSystem(), str(local.expanduser().resolve()))
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UserError(f"--storage {uri}: no bucket; expected s3://bucket/prefix")
        path = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return Location(uri, _s3(endpoint), path, endpoint)
    if endpoint:
        raise UserError(f"--storage-endpoint is for s3:// storage, not {parsed.scheme}://")
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:
        raise UserError(f"--storage {uri}: not a storage URI pyarrow understands ({exc})") from None
    return Location(uri, fs, path.rstrip("/"))


def _s3(endpoint: str | None):
    """An S3 filesystem with short timeouts; `endpoint` (http[s]://host:port) for S3-compatible
    stores. The region comes from AWS_DEFAULT_REGION/AWS_REGION, else us-east-1 for an
    endpoint (S3-compatible stores ignore it) or pyarrow's lookup for AWS itself."""
    from pyarrow import fs as pafs

    options = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "request_timeout": REQUEST_TIMEOUT_S,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if endpoint:
        parsed = urllib.parse.urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path.strip("/"):
            raise UserError(
                f"--storage-endpoint {endpoint!r} is malformed; expected http(s)://host:port"
            )
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
        region = region or "us-east-1"
    if region:
        options["region"] = region
    return pafs.S3FileSystem(**options)


def _where(loc: Location) -> str:
    return f" at {loc.endpoint}" if loc.endpoint else ""


def check_storage(loc: Location) -> None:
    """The storage answers and its bucket (or a local folder's parent) exists; raises a
    one-line UserError naming what is missing. Touches nothing."""
    from pyarrow import fs as pafs

    if loc.is_local:
        return  # a local folder is created when the study is (settings check its parent)
    bucket = loc.path.split("/", 1)[0]
    try:
        info = loc.fs.get_file_info(bucket)
    except OSError as exc:
        raise UserError(
            f"--storage {loc.uri}: the object store{_where(loc)} cannot be reached "
            f"({_first_line(exc)}); expected a reachable endpoint and valid credentials"
        ) from None
    if info.type == pafs.FileType.NotFound:
        raise UserError(
            f"--storage {loc.uri}: bucket {bucket!r} does not exist{_where(loc)}; "
            "create it first (studies are stored in an existing bucket)"
        )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def exists(loc: Location) -> bool:
    from pyarrow import fs as pafs

    return loc.fs.get_file_info(loc.path).type != pafs.FileType.NotFound


def check_study(loc: Location) -> None:
    """`loc` holds a study (its SETTINGS_FILE); else one-line UserError (for `--resume`)."""
    check_storage(loc)
    if not exists(loc.child(SETTINGS_FILE)):
        raise UserError(f"--resume {loc.uri}: not a study (no {SETTINGS_FILE} in it)")


def read_text(loc: Location) -> str:
    with loc.fs.open_input_stream(loc.path) as f:
        return f.read().decode()


def write_text(loc: Location, text: str) -> None:
    """Write a small file whole. Object stores replace it atomically; a local file is written
    beside and renamed, so a reader never sees half of it."""
    if loc.is_local:
        write_local(Path(loc.path), text)
        return
    with loc.fs.open_output_stream(loc.path) as f:
        f.write(text.encode())


def write_local(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to a temporary file beside `path`, then rename it over `path`: a
    reader (a resume, a browser reloading the report) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(loc: Location) -> object:
    return json.loads(read_text(loc))


# ---------------------------------------------------------------------------------------------
# the local cache of a remote study

STUDY_CACHE = "studies"  # under the cache folder: one folder per remote study
# model weights (trainables.checkpoint.STATE_FILE) stay in the store: caches skip them
MODEL_WEIGHTS = ("*/checkpoint_*/state.pt",)


def endpoint_flags(endpoint: str | None) -> str:
    """What a printed command needs after a study's URI to reach an S3-compatible store:
    ` --storage-endpoint URL`, or nothing."""
    return f" --storage-endpoint {shlex.quote(endpoint)}" if endpoint else ""


def cache_folder(loc: Location, cache_dir: str | None = None) -> Path:
    """The local cache of the remote study at `loc`: `<cache dir>/studies/<scheme>/[<endpoint
    host_port>/]<bucket/path>`, the cache dir being `cache_dir` or ~/.cache/mtl-study (as the
    decoded datasets'). Deterministic, so a driver finds its cache again."""
    root = Path(cache_dir or default_cache_dir()).expanduser().resolve()
    scheme = urllib.parse.urlparse(loc.uri).scheme or "file"
    parts = [STUDY_CACHE, scheme]
    if loc.endpoint:
        parts.append(urllib.parse.urlparse(loc.endpoint).netloc.replace(":", "_"))
    return root.joinpath(*parts, *[p for p in loc.path.split("/") if p not in ("", ".", "..")])


def _listing(fs, root: str) -> dict[str, tuple[int, int]]:
    """Every file under `root`: relative path -> (size, mtime in ns)."""
    from pyarrow import fs as pafs

    if fs.get_file_info(root).type == pafs.FileType.NotFound:
        return {}
    found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    return {
        i.path[len(root.rstrip("/")) + 1 :]: (i.size, i.mtime_ns or 0)
        for i in found
        if i.type == pafs.FileType.File
    }


def _load_manifest(cache: Path) -> dict[str, dict[str, list[int]]]:
    """{"remote": rel -> [size, mtime_ns] there, "local": rel -> [size, mtime_ns] here}, as
    they were when each file was last synced; empty for a new cache."""
    try:
        manifest = json.loads((cache / SYNC_MANIFEST).read_text())
        return {"remote": dict(manifest["remote"]), "local": dict(manifest["local"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {"remote": {}, "local": {}}


def _save_manifest(cache: Path, manifest: dict[str, dict[str, list[int]]]) -> None:
    (cache / SYNC_MANIFEST).write_text(json.dumps(manifest))


def _copy(src_fs, src: str, dst_fs, dst: str) -> None:
    from pyarrow import fs as pafs

    if dst_fs.type_name == "local":  # object stores have no folders to make
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(src, dst, source_filesystem=src_fs, destination_filesystem=dst_fs)


def _copy_all(src_fs, src: str, dst_fs, dst: str, rels: list[str]) -> None:
    with concurrent.futures.ThreadPoolExecutor(SYNC_THREADS) as pool:
        list(pool.map(lambda r: _copy(src_fs, f"{src}/{r}", dst_fs, f"{dst}/{r}"), rels))


@dataclasses.dataclass
class SyncReport:
    copied: list[str]  # relative paths copied this time
    unchanged: int  # files skipped: the same size and time as at the last sync
    deleted: list[str]  # files removed from the destination (gone from the source)


def sync_down(
    loc: Location, cache: Path, delete: bool = True, exclude: tuple[str, ...] = ()
) -> SyncReport:
    """Mirror a remote study into `cache`, copying only files whose size or time there changed
    since the last sync (recorded in `cache/.sync.json`) or whose local copy is missing; with
    `delete`, files an earlier sync brought that are gone remotely (e.g. checkpoints Ray
    replaced) are removed locally.

    The cache is a working copy, never the truth: the study's files live in `loc`. It exists
    because some readers need local files: the analysis (pandas over result.json/progress.csv),
    `--resume` from an empty disk (study.json, tasks.json, the Optuna SQLite file when no
    database URL is given) and the summary a driver prints. Deleting it loses nothing.
    `exclude`: fnmatch patterns of relative paths not to copy (e.g. model weights)."""
    from pyarrow import fs as pafs

    local = pafs.LocalFileSystem()

    def skipped(rel: str) -> bool:
        return any(fnmatch.fnmatch(rel, pattern) for pattern in exclude)

    remote = {r: i for r, i in _listing(loc.fs, loc.path).items() if not skipped(r)}
    manifest = _load_manifest(cache)
    here = _listing(local, str(cache)) if cache.is_dir() else {}
    changed = [
        rel
        for rel, info in remote.items()
        if manifest["remote"].get(rel) != list(info)
        or here.get(rel) is None
        or manifest["local"].get(rel) != list(here[rel])
    ]
    cache.mkdir(parents=True, exist_ok=True)
    _copy_all(loc.fs, loc.path, local, str(cache), changed)
    # an excluded file is neither deleted here nor forgotten (e.g. the Optuna database a
    # running driver writes in the cache and uploads itself)
    gone = [r for r in manifest["remote"] if r not in remote and not skipped(r)] if delete else []
    for rel in gone:
        (cache / rel).unlink(missing_ok=True)
    here = _listing(local, str(cache))
    kept = {part: {r: v for r, v in manifest[part].items() if skipped(r)} for part in manifest}
    manifest = {
        "remote": {**kept["remote"], **{rel: list(info) for rel, info in remote.items()}},
        "local": {**kept["local"], **{rel: list(here[rel]) for rel in remote if rel in here}},
    }
    _save_manifest(cache, manifest)
    return SyncReport(sorted(changed), len(remote) - len(changed), sorted(gone))


def changed_here(cache: Path, rel: str) -> bool:
    """The cache's copy of `rel` changed since it was last synced: a driver on this machine is
    writing it (the Optuna SQLite file between two uploads), so a reader must not overwrite it."""
    from pyarrow import fs as pafs

    recorded = _load_manifest(cache)["local"].get(rel)
    info = pafs.LocalFileSystem().get_file_info(str(cache / rel))
    if recorded is None or info.type != pafs.FileType.File:
        return False
    return recorded != [info.size, info.mtime_ns or 0]  # as `_listing` records it


def sync_up(cache: Path, loc: Location, only: list[str] | None = None) -> SyncReport:
    """Upload what changed in `cache` since the last sync (by local size and time) to `loc`;
    `only` limits it to these relative paths (e.g. the Optuna database at a checkpoint). Never
    deletes remotely: Ray owns its files there."""
    from pyarrow import fs as pafs

    local = pafs.LocalFileSystem()
    here = _listing(local, str(cache))
    here.pop(SYNC_MANIFEST, None)
    if only is not None:
        here = {rel: here[rel] for rel in only if rel in here}
    manifest = _load_manifest(cache)
    sent = sorted(rel for rel, info in here.items() if manifest["local"].get(rel) != list(info))
    _copy_all(local, str(cache), loc.fs, loc.path, sent)
    remote = _listing(loc.fs, loc.path) if sent else {}
    for rel in sent:
        manifest["local"][rel] = list(here[rel])  # what was sent ...
        if rel in remote:
            manifest["remote"][rel] = list(remote[rel])  # ... and what it is there: no download
    _save_manifest(cache, manifest)
    return SyncReport(sent, len(here) - len(sent), [])


# ---------------------------------------------------------------------------------------------
# Optuna's database


def check_database_url(url: str, connect: bool = True) -> str:
    """A SQLAlchemy URL for Optuna's RDB storage (`postgresql://user@host/db`,
    `sqlite:////abs/optuna.db`): parsed, its driver installed, and with `connect` answering;
    else one-line UserError. Returns the URL unchanged. The password is never printed."""
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    try:
        parsed = sqlalchemy.engine.make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, ValueError, NoSuchModuleError):
        raise UserError(
            f"--optuna-storage {url!r} is not a database URL; expected e.g. "
            "postgresql://user@host:5432/db or sqlite:////abs/path/optuna.db"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise UserError(
            f"--optuna-storage: the driver of {parsed.drivername}:// is not installed "
            f"({exc}); install it or name an installed one (postgresql+psycopg2://...)"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    if connect:
        pg = parsed.get_backend_name() == "postgresql"
        args = {"connect_timeout": int(CONNECT_TIMEOUT_S)} if pg else {}
        try:
            with sqlalchemy.create_engine(parsed, connect_args=args).connect():
                pass
        except SQLAlchemyError as exc:
            raise UserError(
                f"--optuna-storage {shown}: the database cannot be reached "
                f"({_first_line(exc.orig or exc)})"
            ) from None
    return url


def optuna_study_names(url: str) -> list[str]:
    """The Optuna studies the database at `url` holds, read without writing (no schema is
    created in a database that has none: then there are none)."""
    import optuna

    try:
        store = optuna.storages.RDBStorage(url, skip_table_creation=True)
    except Exception:  # an empty database: Optuna's schema check fails before any table exists
        return []
    try:
        return [study.study_name for study in store.get_all_studies()]
    except Exception:  # no `studies` table
        return []
    finally:
        store.engine.dispose()

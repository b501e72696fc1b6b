"""studyfiles.storage against a real S3 server (moto) and local folders: resolving URIs, the
up-front checks (one-line UserErrors), small files, and the cache sync in both directions."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from services import s3_server_in_env

from errors import UserError
from names import SETTINGS_FILE
from studyfiles import storage


@pytest.fixture(scope="module")
def s3():
    with s3_server_in_env() as store:
        yield store


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_local_paths_resolve_to_absolute_folders(tmp_path: Path) -> None:
    loc = storage.resolve(str(tmp_path / "a" / ".." / "b"))
    assert loc.is_local and loc.path == str(tmp_path / "b")
    assert storage.resolve(f"file://{tmp_path}").path == str(tmp_path)
    assert not storage.is_remote(str(tmp_path)) and storage.is_remote("s3://b/p")


def test_malformed_uris_and_endpoints_are_user_errors(tmp_path: Path) -> None:
    for uri, endpoint, words in [
        ("s3:///prefix", None, "no bucket"),
        ("s3://b/p", "127.0.0.1:9000", "http(s)://host:port"),
        ("s3://b/p", "ftp://host:1", "malformed"),
        (str(tmp_path), "http://127.0.0.1:1", "object stores"),
        ("nosuchscheme://x/y", None, "pyarrow"),
    ]:
        with pytest.raises(UserError) as exc:
            storage.resolve(uri, endpoint)
        assert words in _one_line(exc)


def test_unreachable_endpoint_is_one_line_and_quick(s3) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    loc = storage.resolve("s3://studies/x", dead)
    start = time.monotonic()
    with pytest.raises(UserError) as exc:
        storage.check_storage(loc)
    assert time.monotonic() - start < storage.CONNECT_TIMEOUT_S * 3
    assert "cannot be reached" in _one_line(exc) and dead in str(exc.value)


def test_missing_bucket_and_missing_study_are_named(s3) -> None:
    with pytest.raises(UserError) as exc:
        storage.check_storage(storage.resolve("s3://no-such-bucket/x", s3.endpoint))
    assert "'no-such-bucket' does not exist" in _one_line(exc)
    loc = storage.resolve(s3.uri("nothing-here"), s3.endpoint)
    storage.check_storage(loc)  # the bucket exists
    with pytest.raises(UserError) as exc:
        storage.check_study(loc)
    assert f"no {SETTINGS_FILE}" in _one_line(exc)


def test_small_files_round_trip_and_make_a_study(s3) -> None:
    loc = storage.resolve(s3.uri("rt/study-a"), s3.endpoint)
    storage.write_text(loc.child(SETTINGS_FILE), '{"name": "study-a"}')
    storage.check_study(loc)
    assert storage.read_json(loc.child(SETTINGS_FILE)) == {"name": "study-a"}
    # what pyarrow wrote is what any S3 client sees
    body = s3.client().get_object(Bucket=s3.bucket, Key=f"rt/study-a/{SETTINGS_FILE}")["Body"]
    assert body.read() == b'{"name": "study-a"}'


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != storage.SYNC_MANIFEST
    }


def test_sync_copies_only_what_changed_both_ways(s3, tmp_path: Path) -> None:
    loc = storage.resolve(s3.uri("sync/study-b"), s3.endpoint)
    work = tmp_path / "work"
    for rel, text in {
        "study.json": "{}",
        "multi/trial_1/result.json": "1\n",
        "a/b/c.txt": "x",
    }.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    first = storage.sync_up(work, loc)
    assert sorted(first.copied) == sorted(_tree(work))
    assert storage.sync_up(work, loc).copied == []  # nothing changed

    cache = tmp_path / "cache"  # another machine: an empty cache
    down = storage.sync_down(loc, cache)
    assert _tree(cache) == _tree(work) and down.unchanged == 0
    assert storage.sync_down(loc, cache).copied == []

    # the study grows remotely (a trial reports, a checkpoint is replaced)
    storage.write_text(loc.child("multi/trial_1/result.json"), "1\n2\n")
    s3.client().delete_object(Bucket=s3.bucket, Key="sync/study-b/a/b/c.txt")
    again = storage.sync_down(loc, cache)
    assert again.copied == ["multi/trial_1/result.json"] and again.deleted == ["a/b/c.txt"]
    assert (cache / "multi/trial_1/result.json").read_text() == "1\n2\n"
    assert not (cache / "a/b/c.txt").exists()

    # a file changed in the cache goes up alone, and is not downloaded back
    (cache / "study.json").write_text('{"resumed": true}')
    up = storage.sync_up(cache, loc, only=["study.json", "optuna.db"])
    assert up.copied == ["study.json"]
    assert storage.read_text(loc.child("study.json")) == '{"resumed": true}'
    assert storage.sync_down(loc, cache).copied == []


def test_sync_between_local_folders(tmp_path: Path) -> None:
    (tmp_path / "src" / "x").mkdir(parents=True)
    (tmp_path / "src" / "x" / "f.txt").write_text("hello")
    loc = storage.resolve(str(tmp_path / "src"))
    storage.sync_down(loc, tmp_path / "cache")
    assert (tmp_path / "cache" / "x" / "f.txt").read_text() == "hello"
    os.utime(tmp_path / "src" / "x" / "f.txt", ns=(1, 1))  # same size, other time
    assert storage.sync_down(loc, tmp_path / "cache").copied == ["x/f.txt"]


def test_excluded_files_are_neither_copied_nor_deleted(tmp_path: Path) -> None:
    """A driver's cache: model weights stay remote; the Optuna database, which the driver
    writes in the cache and uploads itself, is never replaced or deleted by a later sync."""
    src = tmp_path / "src"
    for rel in ("optuna.db", "multi/t/result.json", "multi/t/checkpoint_000001/state.pt"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    loc, cache = storage.resolve(str(src)), tmp_path / "cache"
    storage.sync_down(loc, cache, exclude=storage.MODEL_WEIGHTS)  # a resume: with the database
    assert (cache / "optuna.db").exists() and not (cache / "multi/t/checkpoint_000001").exists()
    (cache / "optuna.db").write_text("newer, written by the running driver")
    (src / "optuna.db").unlink()  # even gone remotely
    during = storage.sync_down(loc, cache, exclude=(*storage.MODEL_WEIGHTS, "optuna.db"))
    assert during.copied == [] and during.deleted == []
    assert (cache / "optuna.db").read_text() == "newer, written by the running driver"
    assert storage.sync_up(cache, loc, only=["optuna.db"]).copied == ["optuna.db"]

"""study.lock against a real S3 server (moto) and a local folder: a fresh lock is refused
(naming its host), a stale one is taken over, the heartbeat moves, and release frees it."""

from __future__ import annotations

import json
import time

import pytest
from services import s3_server_in_env

from study import storage
from study.lock import StudyLock, owner_record
from trainables.errors import UserError


@pytest.fixture(scope="module")
def s3():
    with s3_server_in_env() as store:
        yield store


@pytest.fixture(params=["s3", "local"])
def study(request, tmp_path):
    """A study location in each kind of storage the lock supports with compare-and-swap."""
    if request.param == "s3":
        s3 = request.getfixturevalue("s3")
        return storage.resolve(s3.uri(f"locks/{tmp_path.name}"), s3.endpoint)
    return storage.resolve(str(tmp_path / "study"))


def _held(lock: StudyLock) -> dict:
    return json.loads(storage.read_text(lock.loc))


def test_fresh_lock_is_refused_and_names_the_holder(study) -> None:
    with StudyLock(study, heartbeat_s=60) as first:
        assert _held(first)["id"] == first.owner["id"]
        with pytest.raises(UserError) as exc:
            StudyLock(study).acquire()
        message = str(exc.value)
        assert "\n" not in message and first.owner["host"] in message
        assert "heartbeat 0 s ago" in message or "heartbeat 1 s ago" in message
    # released: the next driver gets it at once
    with StudyLock(study) as second:
        assert _held(second)["id"] == second.owner["id"]
    assert not storage.exists(second.loc)


def test_stale_lock_is_taken_over_and_the_old_holder_learns_it(study) -> None:
    old = StudyLock(study, heartbeat_s=3600)
    old.acquire()
    time.sleep(1.2)
    new = StudyLock(study, stale_after_s=1.0)  # to it, a heartbeat 1 s old is stale
    new.acquire()
    assert _held(new)["id"] == new.owner["id"]
    assert old.refresh() is False and old.lost  # the old driver's next beat finds another owner
    old.release()  # does not delete the new owner's lock
    assert _held(new)["id"] == new.owner["id"]
    new.release()


def test_a_dead_drivers_lock_is_stale_after_the_default(study) -> None:
    dead = {**owner_record(heartbeat=time.time() - 10 * 60), "host": "lost-head-node"}
    storage.write_text(study.child(".lock"), json.dumps(dead))
    with StudyLock(study) as lock:  # default STALE_AFTER_S: 5 min < 10 min
        assert _held(lock)["host"] != "lost-head-node"


def test_heartbeat_is_refreshed_in_the_background(study) -> None:
    with StudyLock(study, heartbeat_s=0.3) as lock:
        first = _held(lock)["heartbeat"]
        deadline = time.time() + 10
        while _held(lock)["heartbeat"] == first and time.time() < deadline:
            time.sleep(0.1)
        assert _held(lock)["heartbeat"] > first and not lock.lost


def test_unreadable_lock_is_treated_as_stale(study) -> None:
    storage.write_text(study.child(".lock"), "not json")
    with StudyLock(study) as lock:
        assert _held(lock)["id"] == lock.owner["id"]

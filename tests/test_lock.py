"""studyfiles.lock against a real S3 server (moto) and a local folder: a fresh lock is refused
(naming its host and when it goes stale), a stale one is taken over, a holder that missed its
beats is waited for, the heartbeat moves, and release frees it."""

from __future__ import annotations

import json
import threading
import time

import pytest
from services import s3_server_in_env

from errors import UserError
from studyfiles import storage
from studyfiles.lock import (
    HEARTBEAT_S,
    MISSED_BEATS,
    STALE_AFTER_S,
    StudyLock,
    describe_holder,
    owner_record,
)


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
    with StudyLock(study) as lock:  # default STALE_AFTER_S: 1 min < 10 min
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


def test_refusal_says_when_the_lock_goes_stale(study) -> None:
    said: list[str] = []
    with StudyLock(study) as held:
        start = time.monotonic()
        with pytest.raises(UserError) as exc:
            StudyLock(study).acquire(say=said.append)  # a live holder: no wait
        assert time.monotonic() - start < 3 and said == []
    message = str(exc.value)
    stale = f"{STALE_AFTER_S:.0f} s"
    assert describe_holder(held.owner) in message
    assert f"it is taken over once its heartbeat is {stale} old: retry then (in " in message


def test_the_defaults_tolerate_a_lost_beat_and_keep_a_resume_short() -> None:
    """A live holder whose beat failed once is never taken over; a lost one within a minute."""
    assert MISSED_BEATS * HEARTBEAT_S < STALE_AFTER_S <= 60
    assert STALE_AFTER_S >= 5 * HEARTBEAT_S  # five failed beats in a row before a take-over


def _gone_elsewhere(study, age: float, heartbeat_s: float) -> dict:
    """The lock of a driver on another host that stopped beating `age` seconds ago."""
    holder = owner_record(heartbeat=time.time() - age, heartbeat_s=heartbeat_s)
    holder["host"] = "lost-head-node"
    storage.write_text(study.child(".lock"), json.dumps(holder))
    return holder


def test_a_holder_that_missed_its_beats_is_waited_for_then_taken_over(study) -> None:
    _gone_elsewhere(study, age=3.0, heartbeat_s=1.0)  # three periods: it missed its beats
    with pytest.raises(UserError):
        StudyLock(study, stale_after_s=5.0).acquire()  # without `say`: refused at once
    said: list[str] = []
    lock = StudyLock(study, stale_after_s=5.0)
    start = time.monotonic()
    lock.acquire(say=said.append)
    waited = time.monotonic() - start
    assert _held(lock)["id"] == lock.owner["id"]
    lock.release()
    assert 1.0 <= waited < 5.0  # until its heartbeat was 5 s old, not 5 s more
    assert len(said) == 1 and "lost-head-node" in said[0] and "missed beats" in said[0]


def test_a_holder_whose_heartbeat_moves_while_waited_for_is_refused(study) -> None:
    holder = _gone_elsewhere(study, age=3.0, heartbeat_s=1.0)

    def beat_again() -> None:  # the holder was only slow: it beats again
        time.sleep(0.5)
        storage.write_text(study.child(".lock"), json.dumps({**holder, "heartbeat": time.time()}))

    thread = threading.Thread(target=beat_again)
    thread.start()
    start = time.monotonic()
    with pytest.raises(UserError) as exc:
        StudyLock(study, stale_after_s=30.0).acquire(say=lambda line: None)
    thread.join()
    assert time.monotonic() - start < 10 and "lost-head-node" in str(exc.value)

"""A study's lock in its own storage: one driver at a time, even across machines.

The lock is a small JSON object beside the study (`names.LOCK_FILE`) naming its owner (host,
pid, user, a random id, its heartbeat period) and a heartbeat time that a background thread
refreshes every `HEARTBEAT_S`. Acquiring it is refused while the heartbeat is fresh (the message
names the host holding it, how old its heartbeat is and when it goes stale) and taken over once
it is older than `STALE_AFTER_S`, as after a lost head node, or at once when its holder ran on
this host and its process is gone (a kill -9). A holder that has missed heartbeats (its
heartbeat older than two of its periods) is probably gone: `acquire(say=...)` then waits, with
one line, until its heartbeat is stale and takes it over, unless the heartbeat moves meanwhile
(then the holder is alive: refused). It is released (deleted) on exit.

Every change is a compare-and-swap, so of two drivers racing for a free or stale lock one wins:
- S3 (and S3-compatible stores that honour conditional writes, moto included): PutObject with
  `If-None-Match: *` to create, `If-Match: <etag>` to take over or refresh, DeleteObject with
  `If-Match` to release.
- local folders: the same steps under an flock of a guard file beside the lock.
- other pyarrow filesystems (GCS, HDFS, ...): write, then read back and compare the owner id.
  Two drivers writing within the same moment can both read their own write on an eventually
  consistent store; the later heartbeat then finds the other's id and stops its driver
  (`lost`), so the overlap lasts at most one heartbeat.
A refreshed heartbeat that finds another owner marks the lock `lost` and records that owner
(`taken_by`); the runner checks `lost` at every step of Tune's loop (study.lockwatch) and stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from errors import UserError
from studyfiles.storage import Location, exists, read_text

# How often the holder refreshes its heartbeat. On S3 a beat is one conditional PutObject and
# a GET costs nothing here: 8,640 PUTs a day, about 4 US cents at $0.005 per 1,000 PUTs.
HEARTBEAT_S = 10.0
# A heartbeat older than this: the holder is gone; take the lock over. A beat that fails (a
# store's transient error: it is retried at the next beat) leaves a live holder's heartbeat
# 20 s old, so six beats in a row must fail before another driver may take the study over; and
# a `--resume` after a lost driver (whose process cannot be checked from another host) waits
# at most this long. A driver cut off from the store for longer is taken over; its next beat
# then finds the new owner and it stops (`lost`).
STALE_AFTER_S = 60.0
MISSED_BEATS = 2  # a heartbeat older than this many periods: its holder has missed beats
LOCK_LOST_STATUS = 3  # study.run's exit status when another driver took the study over


class LockLost(Exception):
    """Another driver took this study's lock over; the message names it (one line)."""


class Backend:
    """Compare-and-swap on one small object; `tag` identifies the version last seen."""

    def create(self, body: bytes) -> str | None:  # None: it exists already
        raise NotImplementedError

    def read(self) -> tuple[bytes, str] | None:  # None: it does not exist
        raise NotImplementedError

    def replace(self, body: bytes, tag: str) -> str | None:  # None: changed since `tag`
        raise NotImplementedError

    def delete(self, tag: str) -> None:  # only if unchanged since `tag`
        raise NotImplementedError


class S3Backend(Backend):
    """S3 conditional writes through boto3 (pyarrow has no conditional PutObject)."""

    def __init__(self, loc: Location) -> None:
        import boto3

        self.bucket, _, self.key = loc.path.partition("/")
        self.client = boto3.client("s3", endpoint_url=loc.endpoint)

    def _put(self, body: bytes, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            reply = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **condition)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412"):
                return None
            raise
        return reply["ETag"]

    def create(self, body: bytes) -> str | None:
        return self._put(body, IfNoneMatch="*")

    def read(self) -> tuple[bytes, str] | None:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None
        return reply["Body"].read(), reply["ETag"]

    def replace(self, body: bytes, tag: str) -> str | None:
        return self._put(body, IfMatch=tag)

    def delete(self, tag: str) -> None:
        from botocore.exceptions import ClientError

        with contextlib.suppress(ClientError):  # changed or gone: not ours to delete
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=tag)


class LocalBackend(Backend):
    """A file; every step under an exclusive flock of `<lock>.guard`."""

    def __init__(self, loc: Location) -> None:
        self.path = Path(loc.path)

    @contextlib.contextmanager
    def _guard(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".guard"), "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            yield

    def _tag(self) -> str | None:
        with contextlib.suppress(FileNotFoundError):
            st = self.path.stat()
            return f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"
        return None

    def _write(self, body: bytes) -> str | None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, self.path)
        return self._tag()

    def create(self, body: bytes) -> str | None:
        with self._guard():
            return None if self.path.exists() else self._write(body)

    def read(self) -> tuple[bytes, str] | None:
        with self._guard(), contextlib.suppress(FileNotFoundError):
            return self.path.read_bytes(), self._tag()
        return None

    def replace(self, body: bytes, tag: str) -> str | None:
        with self._guard():
            return self._write(body) if self._tag() == tag else None

    def delete(self, tag: str) -> None:
        with self._guard():
            if self._tag() == tag:
                self.path.unlink()


class ReadBackBackend(Backend):
    """Any pyarrow filesystem: write, read back, compare (see the module docstring's race)."""

    def __init__(self, loc: Location) -> None:
        self.loc = loc

    def _write(self, body: bytes) -> str | None:
        with self.loc.fs.open_output_stream(self.loc.path) as f:
            f.write(body)
        found = self.read()
        return found[1] if found and found[0] == body else None

    def create(self, body: bytes) -> str | None:
        return None if exists(self.loc) else self._write(body)

    def read(self) -> tuple[bytes, str] | None:
        if not exists(self.loc):
            return None
        body = read_text(self.loc).encode()
        return body, str(hash(body))

    def replace(self, body: bytes, tag: str) -> str | None:
        found = self.read()
        return self._write(body) if found and found[1] == tag else None

    def delete(self, tag: str) -> None:
        found = self.read()
        if found and found[1] == tag:
            self.loc.fs.delete_file(self.loc.path)


def backend_for(loc: Location) -> Backend:
    if loc.is_local:
        return LocalBackend(loc)
    if loc.fs.type_name == "s3":
        return S3Backend(loc)
    return ReadBackBackend(loc)


def owner_record(heartbeat: float | None = None, heartbeat_s: float = HEARTBEAT_S) -> dict:
    """Who holds the lock: host, pid, user, a random id, the heartbeat (epoch seconds) and how
    often it beats."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "user": getpass.getuser(),
        "id": uuid.uuid4().hex,
        "heartbeat": time.time() if heartbeat is None else heartbeat,
        "heartbeat_s": heartbeat_s,
    }


def holder_gone(holder: dict) -> bool:
    """The holder ran on this host and its process has ended (a kill -9): no need to wait for
    its heartbeat to go stale."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, TypeError, ValueError, OverflowError):
        return False
    return False


def describe_holder(holder: dict) -> str:
    """user@host (pid N): who holds (or took) a lock, as the messages name it."""
    if "pid" not in holder:
        return str(holder.get("host"))
    return f"{holder.get('user')}@{holder.get('host')} (pid {holder.get('pid')})"


def _age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _parse(body: bytes) -> tuple[dict, float]:
    """The holder recorded in a lock and its heartbeat's age; an unreadable lock is stale."""
    try:
        holder = json.loads(body)
        return holder, time.time() - float(holder["heartbeat"])
    except (ValueError, KeyError, TypeError):
        return {"host": "an unreadable lock"}, float("inf")


class StudyLock:
    """The lock of the study at `loc` (its `names.LOCK_FILE`); a context manager.

    `acquire()` raises UserError while another driver's heartbeat is fresh; `lost` turns true
    (and `taken_by` names the new owner) if a heartbeat finds that another driver took the lock
    over (this one looked stale)."""

    def __init__(
        self,
        loc: Location,
        name: str | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        from names import LOCK_FILE

        self.loc = loc.child(name or LOCK_FILE)
        self.backend = backend_for(self.loc)
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.owner = owner_record(heartbeat_s=heartbeat_s)
        self.tag: str | None = None
        self.lost = False
        self.taken_by: dict | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    @property
    def study(self) -> str:
        return self.loc.uri.rsplit("/", 1)[0]

    def _body(self) -> bytes:
        return json.dumps({**self.owner, "heartbeat": time.time()}).encode()

    def acquire(self, say: Callable[[str], None] | None = None) -> None:
        """Take the lock, or raise UserError. With `say`, wait for a holder that has missed
        its heartbeats to go stale (one line through `say`) instead of refusing at once."""
        tag = self.backend.create(self._body())
        if tag is None:
            tag = self._take_over(say)
        self.tag = tag
        self._thread = threading.Thread(target=self._beat, name="study-lock", daemon=True)
        self._thread.start()

    def _take_over(self, say: Callable[[str], None] | None) -> str:
        """The lock exists: refuse while its heartbeat is fresh, else swap it for ours."""
        found = self.backend.read()
        if found is None:  # released in between: try once more to create it
            tag = self.backend.create(self._body())
        else:
            if say is not None:
                found = self._wait_for_stale(found, say)
            body, tag = found
            holder, age = _parse(body)
            if age < self.stale_after_s and not holder_gone(holder):
                raise UserError(self._refusal(holder, age))
            tag = self.backend.replace(self._body(), tag)
        if tag is None:
            raise UserError(f"study {self.study}: another driver took its lock just now")
        return tag

    def _refusal(self, holder: dict, age: float) -> str:
        left = max(1.0, self.stale_after_s - age)
        return (
            f"study {self.study} is being run by {describe_holder(holder)}, heartbeat "
            f"{_age(age)} ago; it is taken over once its heartbeat is {_age(self.stale_after_s)}"
            f" old: retry then (in {_age(left)})"
        )

    def _wait_for_stale(
        self, found: tuple[bytes, str], say: Callable[[str], None]
    ) -> tuple[bytes, str]:
        """While the holder's heartbeat has missed beats and stays put, wait (polling the lock)
        until it is stale; returns the lock as last read. A heartbeat that moves, or one that
        has missed no beat, returns at once (a live holder: the caller refuses)."""
        holder, age = _parse(found[0])
        period = float(holder.get("heartbeat_s") or HEARTBEAT_S)
        if age >= self.stale_after_s or age <= MISSED_BEATS * period or holder_gone(holder):
            return found
        say(
            f"the lock of {self.study} is held by {describe_holder(holder)}, whose heartbeat "
            f"is {_age(age)} old and has missed beats: waiting up to "
            f"{_age(self.stale_after_s - age)} for it to go stale, then taking it over"
        )
        deadline = time.monotonic() + self.stale_after_s - age
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            now = self.backend.read()
            if now is None or now[1] != found[1]:  # released, or its holder beat again
                return now if now is not None else found
        return self.backend.read() or found

    def refresh(self) -> bool:
        """Renew the heartbeat now; False (and `lost`) when another driver owns the lock."""
        with self._mutex:
            if self.lost or self.tag is None:
                return False
            tag = self.backend.replace(self._body(), self.tag)
            if tag is None:
                self.taken_by = self._current_holder()
                self.lost = True
                return False
            self.tag = tag
            return True

    def _current_holder(self) -> dict:
        """Who holds the lock now (after another driver took it over); best effort."""
        try:
            found = self.backend.read()
        except Exception:  # a store's transient error: the lock is lost all the same
            found = None
        return _parse(found[0])[0] if found else {"host": "nobody (the lock was deleted)"}

    def lost_message(self) -> str:
        """One line: this driver's lock was taken over, by whom."""
        who = describe_holder(self.taken_by or {})
        return (
            f"study {self.study}: another driver, {who}, took its lock over (this driver's "
            "heartbeat looked stale); stopped without writing more"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self.refresh():
                    return
            except Exception:  # a store's transient error (OSError, botocore's): next beat retries
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._mutex:
            if self.tag is not None and not self.lost:
                self.backend.delete(self.tag)
            self.tag = None

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

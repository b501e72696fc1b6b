"""One job: a real task's identity (`source_fingerprint`), the hash of its files that the
study records per task in tasks.json, to refuse resuming or comparing across a change of data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

FINGERPRINT_HEAD = 4096  # bytes of each file hashed into a source's fingerprint


def source_fingerprint(sources: Sequence[Path]) -> str:
    """The identity of a task's files: a hash over every file under the loader's `sources`, in
    sorted order, of its path relative to the source's parent, its size in bytes, and a hash of
    its first `FINGERPRINT_HEAD` bytes.

    Why these: the spec says where a dataset is, the fingerprint what it is, so the study can
    record which data each task was (tasks.json) and refuse to resume or compare across a
    change. It must be deterministic on every machine and for every copy of the files, so it
    holds no absolute path and no modification time (which a copy or a checkout changes; the
    decoded cache, local to one machine, keys on those instead). It must be cheap enough to
    compute before every study, so it reads one small head per file rather than whole
    datasets: the head of a CIFAR batch or of an image file differs between any two different
    files in practice, and a file whose bytes change beyond its head almost always changes
    size. A missing source is recorded as missing (the loader then reports it)."""
    h = hashlib.sha256(f"fingerprint-1:{FINGERPRINT_HEAD}\n".encode())
    for source in sources:
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else []
        if source.is_file():
            files = [source]
        if not files:
            h.update(f"{source.name}:missing\n".encode())
        for path in files:
            with open(path, "rb") as f:
                head = hashlib.sha256(f.read(FINGERPRINT_HEAD)).hexdigest()
            rel = path.relative_to(source.parent).as_posix()
            h.update(f"{rel}:{path.stat().st_size}:{head}\n".encode())
    return h.hexdigest()[:16]

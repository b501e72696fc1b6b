"""One job: `atomic_save`, a `torch.save` that a kill mid-write cannot leave half done.

It sits below both of its users, `trainables.checkpoint` (trial checkpoints) and
`trainables.data.cache` (decoded tasks), and imports neither: before it had a module of its own
it lived in `checkpoint`, and `checkpoint -> model -> data -> checkpoint` was an import circle.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_save(obj: Any, path: str | Path) -> Path:
    """`torch.save` to a temporary name beside `path`, fsync, then rename into place: a kill
    mid-write never leaves a half file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

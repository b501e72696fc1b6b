"""One job: decode each task once (`load_task`): run its loader, or read the loader's output
back from an on-disk cache keyed by a fingerprint of the files it reads.

The cache key (`_cache_key`: the files' paths, sizes and modification times, `CACHE_VERSION`,
the task kind, its argument and the data root) is local to one machine; a task's portable
identity is `source_fingerprint`. A loader that declares no `sources` is never cached, and
synthetic stand-ins are generated afresh. The cache holds the loader's output before any split
(`LoadedTask`), so every split and subset is carved from the same decoded images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from errors import UserError
from names import default_cache_dir, task_name
from trainables.atomic import atomic_save
from trainables.data.fingerprint import source_fingerprint
from trainables.data.registry import Loader, check_classes, loader_of, parse_task
from trainables.data.synthetic import KNOWN_CLASSES, make_synthetic, synthetic_fingerprint

CACHE_VERSION = 2  # bump when decoding changes, so stale caches are ignored (2: test/ folders)


@dataclasses.dataclass(frozen=True)
class LoadedTask:
    """A loader's output as tensors: the dataset's training split and its held-out test split,
    before validation is carved out (what the decoded-data cache holds)."""

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor  # N x 3 x 32 x 32 uint8
    train_y: torch.Tensor  # N int64
    heldout_x: torch.Tensor
    heldout_y: torch.Tensor
    synthetic: bool = False
    fingerprint: str = ""  # the source's identity (`source_fingerprint`)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_CACHED_FIELDS = ("train_x", "train_y", "heldout_x", "heldout_y")


def _cache_key(sources: list[Path], kind: str, arg: str, data_root: Path) -> str:
    """Hash of the files under `sources` (relative path, size, mtime), to key the cache."""
    h = hashlib.sha256(f"{CACHE_VERSION}:{kind}:{arg}:{data_root.resolve()}".encode())
    for source in sources:
        files = sorted(source.rglob("*")) if source.is_dir() else [source]
        for path in files:
            if path.is_file():
                st = path.stat()
                h.update(
                    f"{path.relative_to(data_root) if path.is_relative_to(data_root) else path}"
                    f":{st.st_size}:{st.st_mtime_ns}\n".encode()
                )
    return h.hexdigest()[:16]


def _load_cache(path: Path) -> dict | None:
    try:
        with open(path, "rb") as f:
            cached = torch.load(io.BytesIO(f.read()), weights_only=True)
        return cached if set(_CACHED_FIELDS) <= set(cached) else None
    except Exception:  # unreadable cache: decode again and overwrite it
        return None


def load_task(
    spec: str,
    data: str = "real",
    data_root: str | Path = "./dataset",
    *,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> LoadedTask:
    """Decode (or read from cache) one task. Raises UserError for anything wrong with the data."""
    kind, arg = parse_task(spec)
    name = task_name(spec)
    if data == "synthetic":
        if kind not in KNOWN_CLASSES:
            raise UserError(f"no synthetic stand-in for task {spec!r}; use --data real")
        *arrays, classes = make_synthetic(kind, Path(data_root), seed=seed)
        fingerprint = synthetic_fingerprint(kind, seed)
        return LoadedTask(
            name, tuple(classes), **_as_tensors(arrays), synthetic=True, fingerprint=fingerprint
        )
    loader = loader_of(kind)
    root = Path(data_root).expanduser()
    if loader.arg is None and not root.is_dir():
        raise UserError(
            f"data root {root} does not exist (expected a folder with the datasets, see README "
            "'Datasets'; or try --quick, a study on synthetic data)"
        )
    cache_path, identity = None, ""
    if loader.sources is not None:
        sources = loader.sources(arg, root)
        key = _cache_key(sources, kind, arg, root)
        cache_path = Path(cache_dir or default_cache_dir()) / f"{name}-{key}.pt"
    cached = _load_cache(cache_path) if cache_path and cache_path.is_file() else None
    if cached is None:
        cached = _decode(loader, arg, root)
        if cache_path:
            atomic_save(cached, cache_path)
    if loader.sources is not None:  # after decoding: the loader may have fetched its files
        identity = source_fingerprint(loader.sources(arg, root))
    tensors = (cached[f] for f in _CACHED_FIELDS)
    return LoadedTask(name, tuple(cached["classes"]), *tensors, fingerprint=identity)


def _decode(loader: Loader, arg: str, root: Path) -> dict[str, Any]:
    """Run a loader and check its classes; the result in the cache's format."""
    tx, ty, hx, hy, classes = loader.load(arg, root)
    check_classes(root, classes, ty)
    check_classes(root, classes, hy)
    return {"classes": list(classes), **_as_tensors((tx, ty, hx, hy))}


def _as_tensors(arrays: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    """(train_x, train_y, test_x, test_y) arrays -> LoadedTask's tensor fields, sharing memory."""
    return {f: torch.from_numpy(np.ascontiguousarray(a)) for f, a in zip(_CACHED_FIELDS, arrays)}

"""Tasks as uint8 tensors in three splits: loaders behind a registry, an on-disk cache, subsets,
batch augmentation.

A task is decoded once into `N x 3 x 32 x 32` uint8 tensors and cached on disk, so no trial ever
decodes an image twice. Loaders are registered by task kind (`register`), each with the files and
folders it reads, which key its cache (a loader that declares none is never cached). A loader
returns the dataset's training split and its held-out **test** split:

- `cifar10`     the standard python batches under `<data_root>/cifar-10-batches-py` (test_batch)
- `fashionrgb`  the original project's JSON layout or an ImageFolder tree (see `load_fashionrgb`)
- `imagefolder` any `<path>/{train,test}/<class>/<image>` tree (`val/` when it has no `test/`)

`--data synthetic` replaces the known tasks with generated stand-ins (`make_synthetic`) with the
real tasks' shapes and class counts: no files, no download, no cache.

After the cache, `split_task` carves a **validation** split out of the training split
(class-balanced, `names.SPLIT_SEED`, the same images in every space and trial) and subsets the
three splits: `TaskSplits`. A search trial sees only `TaskSplits.search()` (train, scored on
validation), a confirmation run `TaskSplits.confirm()` (train + validation, scored on test), so
test images never reach a search decision.

Augmentation (random crop with 4-pixel zero padding, horizontal flip) and normalization are pure
functions over whole batches on the training device, in the style of airbench.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import tempfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from errors import UserError
from names import (
    SPLIT_SEED,
    TEST,
    VAL_CAP,
    VAL_FRACTION,
    VALIDATION,
    default_cache_dir,
    split_task_spec,
    task_name,
)
from trainables.checkpoint import atomic_save

IMAGE_SIZE = 32  # pixels; every task is resized to 3 x 32 x 32 at load time
CACHE_VERSION = 2  # bump when decoding changes, so stale caches are ignored (2: test/ folders)

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FASHIONRGB_CLASSES = ("Blouse", "Dress", "Jeans", "Skirt", "Tank")
KNOWN_CLASSES = {"cifar10": CIFAR10_CLASSES, "fashionrgb": FASHIONRGB_CLASSES}
# synthetic stand-ins: (train, test) images per task, ratios like the real sets (50k:10k, 10k:5k)
SYNTHETIC_SIZES = {"cifar10": (5000, 1000), "fashionrgb": (2500, 1000)}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclasses.dataclass(frozen=True)
class TaskData:
    """What a trial sees of one task: images to train on and images to score on (uint8 images,
    int64 labels). `eval_split` names the scored split: `names.VALIDATION` or `names.TEST`."""

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor  # N x 3 x 32 x 32 uint8
    train_y: torch.Tensor  # N int64
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_split: str
    synthetic: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device | str) -> TaskData:
        move = {f: getattr(self, f).to(device, non_blocking=True) for f in _TENSOR_FIELDS}
        return dataclasses.replace(self, **move)

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images, in [0, 1] units. Summed in chunks:
        a float copy of all of CIFAR-10 would be 600 MB, more than a 0.25 GPU share may hold."""
        total = torch.zeros(3, dtype=torch.float64, device=self.train_x.device)
        squares = torch.zeros_like(total)
        for chunk in self.train_x.split(4096):
            x = chunk.double().div_(255)
            total += x.sum(dim=(0, 2, 3))
            squares += x.square().sum(dim=(0, 2, 3))
        n = self.train_x[:, 0].numel()
        mean = total / n
        var = (squares - n * mean.square()) / max(n - 1, 1)  # unbiased, as torch.std
        return mean.float(), var.clamp_min(0).sqrt().float().clamp_min(1e-3)


_TENSOR_FIELDS = ("train_x", "train_y", "eval_x", "eval_y")


@dataclasses.dataclass(frozen=True)
class TaskSplits:
    """One task's three disjoint splits: `train` and `val` (validation, carved from the loader's
    training split) and `test` (the loader's held-out split), each already subset. `spec` is the
    task spec it came from, `split_seed` the seed that carved validation and drew the subsets."""

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor  # N x 3 x 32 x 32 uint8
    train_y: torch.Tensor  # N int64
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    synthetic: bool = False
    spec: str = ""
    split_seed: int = SPLIT_SEED
    fingerprint: str = ""  # the source's identity (`source_fingerprint`)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def search(self) -> TaskData:
        """A search trial's view: train, scored on validation; no test image in it."""
        return self._view(self.train_x, self.train_y, self.val_x, self.val_y, VALIDATION)

    def confirm(self) -> TaskData:
        """A confirmation run's view: train + validation (concatenated), scored on test."""
        train_x = torch.cat([self.train_x, self.val_x])
        train_y = torch.cat([self.train_y, self.val_y])
        return self._view(train_x, train_y, self.test_x, self.test_y, TEST)

    def _view(
        self,
        train_x: torch.Tensor,
        train_y: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        split: str,
    ) -> TaskData:
        return TaskData(self.name, self.classes, train_x, train_y, x, y, split, self.synthetic)

    def describe(self) -> dict[str, Any]:
        """Sizes and provenance, as the study writes them per task into tasks.json."""
        return {
            "spec": self.spec,
            "classes": list(self.classes),
            "train_size": len(self.train_y),
            "val_size": len(self.val_y),
            "test_size": len(self.test_y),
            "split_seed": self.split_seed,
            "synthetic": self.synthetic,
            "fingerprint": self.fingerprint,
        }


# ---------------------------------------------------------------------------------------------
# task specs and the registry


Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]
# (arg, data_root) -> (train_x, train_y, test_x, test_y, classes): the dataset's training split
# and its held-out test split (validation is carved from the training split later, see split_task)
Load = Callable[[str, Path], Splits]
Sources = Callable[[str, Path], list[Path]]  # (arg, data_root) -> the files and folders it reads


@dataclasses.dataclass(frozen=True)
class Loader:
    """A registered task kind: how to decode it and what it reads.

    `sources` lists the files and folders `load` reads; the decoded cache is keyed by exactly
    those (paths, sizes, modification times), so editing one re-decodes. A loader without
    `sources` is decoded afresh every time, never cached. `arg` names the argument a kind takes
    (`imagefolder:<path>`); such a kind reads from its argument, not from the data root.
    """

    load: Load
    sources: Sources | None = None
    arg: str | None = None


LOADERS: dict[str, Loader] = {}


def register(
    kind: str, sources: Sources | None = None, arg: str | None = None
) -> Callable[[Load], Load]:
    """Decorator: register `load` as the loader of task kind `kind` (see `Loader`)."""

    def wrap(load: Load) -> Load:
        LOADERS[kind] = Loader(load, sources, arg)
        return load

    return wrap


def parse_task(spec: str) -> tuple[str, str]:
    """`cifar10` -> ("cifar10", ""); `imagefolder:/data/x` -> ("imagefolder", "/data/x"); a
    trailing `=<name>` (`names.split_task_spec`) names the task and is not part of either."""
    kind, _, arg = split_task_spec(spec)[0].partition(":")
    if kind not in LOADERS:
        known = ", ".join(LOADERS)
        forms = ", ".join(f"{k}:<{v.arg}>" for k, v in LOADERS.items() if v.arg)
        raise UserError(f"unknown task {spec!r}; expected one of {known} ({forms})")
    wanted = LOADERS[kind].arg
    if wanted and not arg:
        raise UserError(f"task {kind!r} needs a {wanted}: {kind}:<{wanted}>")
    if not wanted and arg:
        raise UserError(f"task {kind!r} takes no argument, got {spec!r}")
    return kind, arg


# ---------------------------------------------------------------------------------------------
# CIFAR-10: python pickle batches, read with an unpickler that only builds numpy arrays


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except the ones numpy needs to rebuild an array: no code runs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)
    except Exception as exc:  # any damage to a user's file is a user error
        raise UserError(
            f"corrupt CIFAR-10 batch {path}: {type(exc).__name__}: {exc} "
            "(expected a python pickle with b'data' (N x 3072 uint8) and b'labels')"
        ) from None
    if len(images) != len(labels) or labels.min() < 0 or labels.max() >= 10:
        raise UserError(f"corrupt CIFAR-10 batch {path}: labels do not match images or 0..9")
    return images, labels


CIFAR10_FOLDER = "cifar-10-batches-py"  # under the data root, as the archive unpacks


@register("cifar10", sources=lambda arg, data_root: [data_root / CIFAR10_FOLDER])
def load_cifar10(arg: str, data_root: Path) -> Splits:
    folder = data_root / CIFAR10_FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((folder / n).is_file() for n in names):
        _try_download_cifar10(data_root)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise UserError(
            f"CIFAR-10 not found: {folder} lacks {', '.join(missing)} (expected the python version "
            "'cifar-10-python.tar.gz' unpacked there; see README 'Datasets')"
        )
    train = [_read_cifar_batch(folder / n) for n in names[:5]]
    test_x, test_y = _read_cifar_batch(folder / "test_batch")
    classes = CIFAR10_CLASSES
    meta = folder / "batches.meta"
    if meta.is_file():
        with open(meta, "rb") as f:
            try:
                names_meta = _ArrayOnlyUnpickler(f, encoding="bytes").load()[b"label_names"]
                classes = tuple(n.decode() for n in names_meta)
            except Exception:
                raise UserError(f"corrupt CIFAR-10 metadata {meta}") from None
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    return train_x, train_y, test_x, test_y, classes


def _try_download_cifar10(data_root: Path) -> None:
    """torchvision's downloader, into a temporary folder first; silent when offline."""
    if os.environ.get("MTL_STUDY_OFFLINE", "") == "1":
        return
    import socket

    try:
        from torchvision.datasets import CIFAR10
    except ImportError:
        return
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        data_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=data_root) as tmp:
            CIFAR10(tmp, download=True)
            os.replace(Path(tmp) / CIFAR10_FOLDER, data_root / CIFAR10_FOLDER)
    except Exception:  # offline or blocked: the caller reports the missing files
        return
    finally:
        socket.setdefaulttimeout(previous)


# ---------------------------------------------------------------------------------------------
# image files: FashionRGB (the original project's JSON layout or ImageFolder), any ImageFolder


def decode_image(path: Path) -> np.ndarray:
    """Any size/mode (RGB, RGBA, L, P, JPEG/PNG) -> 3 x 32 x 32 uint8, resized once here."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "P" or img.mode in ("RGBA", "LA"):
                img = img.convert("RGBA")
                background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, img)
            img = img.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()
    except FileNotFoundError:
        raise UserError(f"image listed but missing: {path}") from None
    except Exception as exc:
        raise UserError(f"unreadable image {path}: {type(exc).__name__}: {exc}") from None


def _decode_all(paths: Sequence[Path]) -> np.ndarray:
    out = np.empty((len(paths), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = decode_image(path)
    return out


def _read_split_json(json_path: Path, classes: Sequence[str]) -> list[tuple[str, str]]:
    """[[class, file], ...] or [{<class field>: .., <file field>: ..}, ...] -> [(class, file)].

    Which element is the class is found by the class names themselves, so either order works.
    """
    try:
        entries = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{json_path}: not valid JSON ({exc})") from None
    expected = "a list of [class name, image file] pairs"
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{json_path}: expected {expected}")
    rows: list[list[str]] = []
    for entry in entries:
        values = list(entry.values()) if isinstance(entry, dict) else entry
        if not isinstance(values, list) or len(values) != 2:
            raise UserError(f"{json_path}: expected {expected}, found entry {entry!r}")
        if not all(isinstance(v, str) for v in values):
            raise UserError(f"{json_path}: expected {expected}, found entry {entry!r}")
        rows.append(values)
    lower = {c.lower(): c for c in classes}
    for class_col in (0, 1):
        if all(row[class_col].lower() in lower for row in rows):
            return [(lower[row[class_col].lower()], row[1 - class_col]) for row in rows]
    bad = next(r for r in rows if not any(v.lower() in lower for v in r))
    raise UserError(f"{json_path}: entry {bad} names no class of {list(classes)}")


def _check_classes(where: Path, classes: Sequence[str], labels: np.ndarray) -> None:
    counts = np.bincount(labels, minlength=len(classes))
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise UserError(f"{where}: class(es) {empty} have no images; every class needs some")


def _imagefolder_split(split_dir: Path) -> tuple[list[Path], list[str]]:
    if not split_dir.is_dir():
        raise UserError(
            f"missing split folder {split_dir} (expected <root>/train/<class>/ and "
            "<root>/test/<class>/ or <root>/val/<class>/)"
        )
    class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir())
    if not class_dirs:
        raise UserError(f"{split_dir}: no class folders (expected {split_dir}/<class>/<image>)")
    paths: list[Path] = []
    labels: list[str] = []
    for class_dir in class_dirs:
        files = sorted(
            p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise UserError(f"{class_dir}: empty class (no images); every class needs some")
        paths += files
        labels += [class_dir.name] * len(files)
    return paths, labels


def heldout_folder(root: Path) -> str:
    """The held-out (test) split of an ImageFolder tree: `test/` when it exists, else `val/`.
    With a `test/` folder, a `val/` beside it is not read: validation is carved from train."""
    return "test" if (root / "test").is_dir() else "val"


def _load_imagefolder_tree(root: Path, classes: Sequence[str] | None) -> Splits:
    heldout = heldout_folder(root)
    train_paths, train_names = _imagefolder_split(root / "train")
    test_paths, test_names = _imagefolder_split(root / heldout)
    train_set, test_set = sorted(set(train_names)), sorted(set(test_names))
    if train_set != test_set:
        raise UserError(
            f"{root}: class folders differ between train {train_set} and {heldout} {test_set}"
        )
    if classes is not None:
        lower = {c.lower(): c for c in classes}
        if sorted(n.lower() for n in train_set) != sorted(lower):
            raise UserError(f"{root}: class folders {train_set}, expected {list(classes)}")
        train_names = [lower[n.lower()] for n in train_names]
        test_names = [lower[n.lower()] for n in test_names]
    classes = tuple(classes) if classes is not None else tuple(train_set)
    index = {c: i for i, c in enumerate(classes)}
    return (
        _decode_all(train_paths),
        np.array([index[n] for n in train_names], dtype=np.int64),
        _decode_all(test_paths),
        np.array([index[n] for n in test_names], dtype=np.int64),
        classes,
    )


def fashionrgb_candidates(data_root: Path) -> list[Path]:
    return [data_root / "FashionRGB", data_root / "fashionrgb", data_root]


def _fashionrgb_sources(arg: str, data_root: Path) -> list[Path]:
    """The first candidate folder that exists; in the root itself, only the files of the layout."""
    found = [p for p in fashionrgb_candidates(data_root) if p.is_dir()][:1]
    if found == [data_root]:  # the original layout unpacked into the root
        return [data_root / n for n in ("train.json", "val.json", "train", "val")]
    return found


@register("fashionrgb", sources=_fashionrgb_sources)
def load_fashionrgb(arg: str, data_root: Path) -> Splits:
    """The original project's layout `train.json + train/`, `val.json + val/` (in
    `<root>/FashionRGB` or the root itself), or an ImageFolder tree
    `<root>/FashionRGB/{train,val}/<class>/<image>`. Its `val` split is the held-out test split
    (the original project scored on it); validation is carved from `train`."""
    classes = FASHIONRGB_CLASSES
    for base in fashionrgb_candidates(data_root):
        if (base / "train.json").is_file() or (base / "val.json").is_file():
            splits = []
            for split in ("train", "val"):
                json_path = base / f"{split}.json"
                if not json_path.is_file():
                    raise UserError(f"FashionRGB: {json_path} is missing (need train and val)")
                rows = _read_split_json(json_path, classes)
                paths = [base / split / file for _, file in rows]
                labels = np.array([classes.index(c) for c, _ in rows], dtype=np.int64)
                _check_classes(json_path, classes, labels)
                splits += [_decode_all(paths), labels]
            return splits[0], splits[1], splits[2], splits[3], classes
        if (base / "train").is_dir() and base != data_root:
            return _load_imagefolder_tree(base, classes)
    raise UserError(
        f"FashionRGB not found under {data_root}: expected {data_root}/FashionRGB/train.json + "
        f"train/ and val.json + val/, or {data_root}/FashionRGB/{{train,val}}/<class>/<image>"
    )


@register("imagefolder", sources=lambda arg, data_root: [Path(arg).expanduser()], arg="path")
def load_imagefolder(arg: str, data_root: Path) -> Splits:
    """`<path>/train/<class>/<image>` and the held-out `<path>/test/` (else `<path>/val/`)."""
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise UserError(
            f"imagefolder task: {root} is not a folder (expected <path>/train and <path>/test "
            "or <path>/val)"
        )
    return _load_imagefolder_tree(root, None)


# ---------------------------------------------------------------------------------------------
# synthetic stand-ins


def make_synthetic(arg: str, data_root: Path, *, seed: int = 0) -> Splits:
    """Learnable, not trivial: each image blends its class's smooth colour pattern with a random
    other class's (own weight 0.4..1, so some images are ambiguous), shifted, rescaled and noised.
    `arg` is the real task it stands in for; same class names, counts in SYNTHETIC_SIZES."""
    classes = KNOWN_CLASSES[arg]
    n_train, n_test = SYNTHETIC_SIZES[arg]
    g = torch.Generator().manual_seed(zlib.crc32(f"{arg}:{seed}".encode()))
    k = len(classes)
    low = torch.rand(k, 3, 4, 4, generator=g)  # coarse per-class colour layout
    canvas = IMAGE_SIZE + 8  # pixels; each image is a random 32 x 32 window of its pattern
    protos = torch.nn.functional.interpolate(low, size=canvas, mode="bicubic")
    protos = (protos - 0.5) * 2.5  # in about [-1.25, 1.25]; each class keeps its mean colour

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = torch.arange(n) % k  # balanced classes
        y = y[torch.randperm(n, generator=g)]
        other = (y + torch.randint(1, k, (n,), generator=g)) % k  # always a different class
        own = 0.4 + 0.6 * torch.rand(n, 1, 1, 1, generator=g)
        dy, dx = torch.randint(0, canvas - IMAGE_SIZE + 1, (2, n, 1), generator=g)
        # the same arithmetic as blending whole patterns and then cropping, on the windows only
        # and in place: the same images for about half the CPU time (every synthetic study
        # makes them before Ray starts)
        x = _windows(protos, y, dy, dx).mul_(own)
        x.add_(_windows(protos, other, dy, dx).mul_(1 - own))
        x.mul_(0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=g))  # contrast jitter
        x.add_(torch.randn(x.shape, generator=g).mul_(0.3))  # pixel noise
        x = x.mul_(0.5).add_(0.5).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
        return x.numpy(), y.numpy().astype(np.int64)

    train_x, train_y = sample(n_train)
    test_x, test_y = sample(n_test)
    return train_x, train_y, test_x, test_y, classes


def _windows(
    patterns: torch.Tensor, which: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor
) -> torch.Tensor:
    """Image i: the IMAGE_SIZE x IMAGE_SIZE window at (dy[i], dx[i]) of pattern which[i], as
    `_gather_crops(patterns[which], ...)` reads it, without a copy of every whole pattern."""
    rows = dy + torch.arange(IMAGE_SIZE)  # N x H
    cols = dx + torch.arange(IMAGE_SIZE)  # N x W
    out = patterns.permute(0, 2, 3, 1)[which[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)  # N x 3 x H x W, channels_last strides


# ---------------------------------------------------------------------------------------------
# preparation: validate, decode once, cache; then split and subset


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


def _source_fingerprint(sources: list[Path], kind: str, arg: str, data_root: Path) -> str:
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


def synthetic_fingerprint(kind: str, seed: int) -> str:
    """The identity of a synthetic stand-in: what generates it (kind, seed, sizes)."""
    what = f"synthetic-1:{kind}:{seed}:{SYNTHETIC_SIZES[kind]}:{IMAGE_SIZE}"
    return "synthetic-" + hashlib.sha256(what.encode()).hexdigest()[:16]


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
    loader = LOADERS[kind]
    root = Path(data_root).expanduser()
    if loader.arg is None and not root.is_dir():
        raise UserError(
            f"data root {root} does not exist (expected a folder with the datasets, see README "
            "'Datasets'; or try --quick, a study on synthetic data)"
        )
    cache_path, identity = None, ""
    if loader.sources is not None:
        sources = loader.sources(arg, root)
        key = _source_fingerprint(sources, kind, arg, root)
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
    _check_classes(root, classes, ty)
    _check_classes(root, classes, hy)
    return {"classes": list(classes), **_as_tensors((tx, ty, hx, hy))}


def _as_tensors(arrays: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    """(train_x, train_y, test_x, test_y) arrays -> LoadedTask's tensor fields, sharing memory."""
    return {f: torch.from_numpy(np.ascontiguousarray(a)) for f, a in zip(_CACHED_FIELDS, arrays)}


def balanced_subset(
    labels: torch.Tensor,
    limit: int | None,
    num_classes: int,
    *,
    keep: int = 0,
    seed: int = SPLIT_SEED,
) -> torch.Tensor:
    """Indices (sorted) of a deterministic, class-balanced subset of at most `limit` items that
    leaves at least `keep` items of every class out: one per class in turn, in the order of a
    permutation drawn from `seed`, skipping classes that have nothing more to give."""
    n = len(labels)
    if keep == 0 and (limit is None or limit >= n):
        return torch.arange(n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    by_class = [order[labels[order] == c] for c in range(num_classes)]
    room = [max(len(idx) - keep, 0) for idx in by_class]
    quota = [0] * num_classes
    left = n if limit is None else limit
    while left > 0:  # hand out one per class in turn, skipping exhausted classes
        progressed = False
        for c in range(num_classes):
            if left and quota[c] < room[c]:
                quota[c] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return torch.cat([idx[:q] for idx, q in zip(by_class, quota)]).sort().values


def default_val_size(n_train: int, num_classes: int) -> int:
    """Validation images carved from a training split of `n_train`: VAL_FRACTION of it, at most
    VAL_CAP, at least one per class."""
    return max(num_classes, min(VAL_CAP, round(VAL_FRACTION * n_train)))


def carve_validation(
    task: LoadedTask, val_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, validation indices) into the loader's training split: disjoint, sorted,
    validation class-balanced from `SPLIT_SEED`, every class kept in train. UserError (naming
    the task and the numbers) for a size that cannot be carved."""
    n, k = len(task.train_y), task.num_classes
    size = default_val_size(n, k) if val_size is None else val_size
    what = f"task {task.name}: a validation set of {size} images"
    if size > n:
        raise UserError(f"{what} is bigger than its training set of {n} images")
    if size < k:
        raise UserError(f"{what} cannot hold one image of each of its {k} classes")
    counts = torch.bincount(task.train_y, minlength=k).tolist()
    small = min(range(k), key=counts.__getitem__)
    if counts[small] < 2:
        raise UserError(
            f"task {task.name}: class {task.classes[small]!r} has {counts[small]} training "
            "image(s); carving a validation set needs 2 in every class (to validate and to train)"
        )
    if size > n - k:
        raise UserError(
            f"{what} leaves a class without training images (training set {n} images of {k} "
            f"classes: at most {n - k})"
        )
    val = balanced_subset(task.train_y, size, k, keep=1)
    is_val = torch.zeros(n, dtype=torch.bool)
    is_val[val] = True
    return (~is_val).nonzero()[:, 0], val


def split_task(
    task: LoadedTask,
    spec: str = "",
    *,
    val_size: int | None = None,
    limit_train: int | None = None,
    limit_val: int | None = None,
    limit_test: int | None = None,
) -> TaskSplits:
    """Carve validation out of train (`carve_validation`), then subset train, validation and
    test to at most `limit_train`, `limit_val` and `limit_test` images (class-balanced)."""
    k = task.num_classes
    train, val = carve_validation(task, val_size)
    train = train[balanced_subset(task.train_y[train], limit_train, k)]
    val = val[balanced_subset(task.train_y[val], limit_val, k)]
    test = balanced_subset(task.heldout_y, limit_test, k)
    return TaskSplits(
        name=task.name,
        classes=task.classes,
        train_x=task.train_x[train],
        train_y=task.train_y[train],
        val_x=task.train_x[val],
        val_y=task.train_y[val],
        test_x=task.heldout_x[test],
        test_y=task.heldout_y[test],
        synthetic=task.synthetic,
        spec=spec,
        split_seed=SPLIT_SEED,
        fingerprint=task.fingerprint,
    )


def prepare_tasks(
    specs: Sequence[str],
    data: str,
    data_root: str | Path,
    *,
    limit_train: int | None = None,
    limit_val: int | None = None,
    limit_test: int | None = None,
    val_size: int | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, TaskSplits]:
    """Load, validate, split and subset every task, keyed by task name (the runner's up-front
    step). The same arguments give the same splits, whichever space or trial asks. UserError
    when two different specs share a name (the study's settings refuse that before)."""
    tasks: dict[str, TaskSplits] = {}
    for spec in dict.fromkeys(specs):
        name = task_name(spec)
        if name in tasks:
            raise UserError(
                f"tasks {tasks[name].spec!r} and {spec!r} would both be named {name!r}; give "
                f"one its own name with =<name>"
            )
        task = load_task(spec, data, data_root, cache_dir=cache_dir, seed=seed)
        tasks[task.name] = split_task(
            task,
            spec,
            val_size=val_size,
            limit_train=limit_train,
            limit_val=limit_val,
            limit_test=limit_test,
        )
    return tasks


# ---------------------------------------------------------------------------------------------
# batch augmentation on the training device


def augment(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with 4-pixel zero padding and random horizontal flip, per image, on the whole
    uint8 batch (B x 3 x 32 x 32 -> same): one gather of whole 32-pixel rows from a strided view
    of every possible window of the padded batch and of its mirror."""
    b, c, h, w = images.shape
    pad = 4  # pixels
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad)).contiguous()
    dev = images.device
    dy = torch.randint(0, 2 * pad + 1, (b, 1), device=dev, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), device=dev, generator=generator)
    flip = torch.rand(b, 1, device=dev, generator=generator) < 0.5
    # a window at dx of the mirror is the mirror of the window at 2*pad - dx: same distribution
    both = torch.cat([padded, padded.flip(3)])  # 2B x C x H+2p x W+2p
    sb, sc, sh, sw = both.stride()
    n = 2 * pad + 1
    windows = both.as_strided((2 * b, n, n, c, h, w), (sb, sh, sw, sc, sh, sw))
    source = torch.arange(b, device=dev) + b * flip[:, 0].long()
    return windows[source, dy[:, 0], dx[:, 0]]


def _gather_crops(
    padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """Per-image h x w windows at offsets (dy, dx) (each B x 1), read mirrored where `flip`."""
    b, dev = padded.shape[0], padded.device
    rows = dy + torch.arange(h, device=dev)  # B x H
    cols = torch.arange(w, device=dev).expand(b, w)
    cols = torch.where(flip, cols.flip(1), cols) + dx  # B x W, flipped read order
    batch_index = torch.arange(b, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)  # B x 3 x H x W, channels_last strides


def normalize(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels_last: bool = True
) -> torch.Tensor:
    """uint8 -> float32 standardized with per-channel mean/std (in [0, 1] units), as one
    multiply-add against full-size scale/shift planes (a 3-long inner broadcast is slow)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    _, c, h, w = images.shape
    scale = (1 / (255 * std)).view(1, c, 1, 1).expand(1, c, h, w).contiguous(memory_format=fmt)
    shift = (-mean / std).view(1, c, 1, 1).expand(1, c, h, w).contiguous(memory_format=fmt)
    x = images.contiguous(memory_format=fmt).float()
    return torch.addcmul(shift, x, scale)

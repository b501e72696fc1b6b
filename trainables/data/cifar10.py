"""One job: the `cifar10` task kind, read from the standard python batches under
`<data_root>/cifar-10-batches-py` (`data_batch_1..5` to train, `test_batch` held out).

The batches are python pickles; they are read with an unpickler that only rebuilds numpy arrays,
so no code in a user's file ever runs. Missing batches are fetched with torchvision's downloader
when one is installed and the machine is online (never when `MTL_STUDY_OFFLINE=1`).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from errors import UserError
from trainables.data.registry import IMAGE_SIZE, Splits, register

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
CIFAR10_FOLDER = "cifar-10-batches-py"  # under the data root, as the archive unpacks


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

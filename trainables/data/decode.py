"""One job: image files to uint8 arrays: one image (`decode_image`), a list of them, and an
ImageFolder tree `<root>/{train,test or val}/<class>/<image>` (`load_imagefolder_tree`).

Every image is resized here, once, to 3 x `IMAGE_SIZE` x `IMAGE_SIZE`; transparent images are
laid on white first. The `fashionrgb` and `imagefolder` task kinds both read through this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from errors import UserError
from trainables.data.registry import IMAGE_SIZE, Splits

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


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


def decode_all(paths: Sequence[Path]) -> np.ndarray:
    out = np.empty((len(paths), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = decode_image(path)
    return out


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


def load_imagefolder_tree(root: Path, classes: Sequence[str] | None) -> Splits:
    """`<root>/train/<class>/<image>` and the held-out split (`heldout_folder`), decoded; the
    class folders must match `classes` (any case) when given, else they are the classes."""
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
        decode_all(train_paths),
        np.array([index[n] for n in train_names], dtype=np.int64),
        decode_all(test_paths),
        np.array([index[n] for n in test_names], dtype=np.int64),
        classes,
    )

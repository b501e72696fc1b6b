"""Tiny datasets written in the real on-disk formats (no downloads), and ways to break them.

Every image of a fixture has its own content (random pixels seeded by its split, class and
number), so a test can tell splits apart by the images' bytes alone.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from trainables.data import CIFAR10_CLASSES, FASHIONRGB_CLASSES


def write_cifar10(root: Path, per_batch: int = 20, test: int = 30, seed: int = 0) -> Path:
    """`cifar-10-batches-py` with genuine python-2-style pickles (bytes keys, protocol 2)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(i % 10) for i in range(n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder


MODES = ["RGB", "RGBA", "L", "P"]  # image modes the loader must convert
SIZES = [(32, 32), (48, 40), (17, 23), (64, 64)]


SPLITS = ("train", "val", "test")


def _write_image(path: Path, i: int, split: str) -> None:
    """Image number `i` of a split: its mode and size vary with `i`; pixels seeded by both."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([SPLITS.index(split), i])
    w, h = SIZES[i % len(SIZES)]
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    mode = MODES[i % len(MODES)]
    img = img.convert(mode) if mode != "P" else img.convert("P", palette=Image.Palette.ADAPTIVE)
    if path.suffix == ".jpg":
        img = img.convert("RGB") if mode in ("RGBA", "P") else img
    img.save(path)


def write_fashion_json(
    root: Path, per_class: int = 3, objects: bool = False, file_first: bool = False
) -> Path:
    """The original project's layout: <root>/FashionRGB/{train,val}.json + {train,val}/ images."""
    base = root / "FashionRGB"
    for split in ("train", "val"):
        entries = []
        for c, cls in enumerate(FASHIONRGB_CLASSES):
            for k in range(per_class):
                name = f"{cls.lower()}_{k}.{'jpg' if k % 2 else 'png'}"
                _write_image(base / split / name, 100 * c + k, split)
                if objects:
                    entries.append({"label": cls, "image": name})
                else:
                    entries.append([name, cls] if file_first else [cls, name])
        (base / f"{split}.json").write_text(json.dumps(entries))
    return base


def write_imagefolder(
    root: Path, classes=FASHIONRGB_CLASSES, per_class: int = 3, splits=("train", "val")
) -> Path:
    """`<root>/<split>/<class>/<k>.png` for each of `splits` (train, val, test)."""
    for split in splits:
        for c, cls in enumerate(classes):
            for k in range(per_class):
                _write_image(root / split / cls / f"{k}.png", 100 * c + k, split)
    return root


def break_fashionrgb(kind: str, root: Path) -> None:
    """Damage the FashionRGB JSON layout under `root` (from `write_fashion_json`) one way."""
    base = root / "FashionRGB"
    if kind == "no val split":
        (base / "val.json").unlink()
    elif kind == "not a list of pairs":
        (base / "train.json").write_text(json.dumps({"Blouse": "a.png"}))
    elif kind == "listed file missing":
        next((base / "train").glob("*.png")).unlink()
    elif kind == "unknown class":
        rows = json.loads((base / "val.json").read_text())
        rows[0][0] = "Sweater"
        (base / "val.json").write_text(json.dumps(rows))
    elif kind == "empty class":
        rows = [r for r in json.loads((base / "train.json").read_text()) if r[0] != "Tank"]
        (base / "train.json").write_text(json.dumps(rows))
    elif kind == "unreadable image":
        next((base / "val").glob("*.png")).write_bytes(b"not an image at all")
    elif kind == "invalid json":
        (base / "train.json").write_text("[[")
    else:
        raise ValueError(f"unknown way to break FashionRGB: {kind!r}")

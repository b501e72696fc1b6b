"""One job: the `fashionrgb` task kind, in the original project's JSON layout (`train.json` +
`train/`, `val.json` + `val/`) or as an ImageFolder tree (see `load_fashionrgb`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from errors import UserError
from trainables.data.decode import decode_all, load_imagefolder_tree
from trainables.data.registry import Splits, check_classes, register

FASHIONRGB_CLASSES = ("Blouse", "Dress", "Jeans", "Skirt", "Tank")


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


def fashionrgb_candidates(data_root: Path) -> list[Path]:
    """The folders that may hold FashionRGB, in the order they are tried."""
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
                check_classes(json_path, classes, labels)
                splits += [decode_all(paths), labels]
            return splits[0], splits[1], splits[2], splits[3], classes
        if (base / "train").is_dir() and base != data_root:
            return load_imagefolder_tree(base, classes)
    raise UserError(
        f"FashionRGB not found under {data_root}: expected {data_root}/FashionRGB/train.json + "
        f"train/ and val.json + val/, or {data_root}/FashionRGB/{{train,val}}/<class>/<image>"
    )

"""Tasks as uint8 tensors in three splits: loaders behind a registry, an on-disk cache, subsets,
batch augmentation. This package's modules, one job each (read from the bottom up):

- `registry`     task kinds (`register`, `LOADERS`, `parse_task`) and the loader contract
- `cifar10`      the standard python batches under `<data_root>/cifar-10-batches-py`
- `fashionrgb`   the original project's JSON layout or an ImageFolder tree
- `imagefolder`  any `<path>/{train,test}/<class>/<image>` tree (`val/` when it has no `test/`)
- `decode`       image files to 3 x 32 x 32 uint8 arrays, and ImageFolder trees
- `synthetic`    `--data synthetic`: generated stand-ins with the real tasks' shapes and classes
- `fingerprint`  a real task's portable identity (`source_fingerprint`, recorded in tasks.json)
- `cache`        `load_task`: decode once, then read the loader's output from a keyed cache
- `tasks`        `TaskSplits` (train, validation, test) and `TaskData` (what a trial sees)
- `splits`       validation carved from train, class-balanced limits, `prepare_tasks`
- `augment`      `augment` and `normalize`: whole batches on the training device (airbench)

A task is decoded once into `N x 3 x 32 x 32` uint8 tensors and cached on disk, so no trial ever
decodes an image twice. A search trial sees only `TaskSplits.search()` (train, scored on
validation), a confirmation run `TaskSplits.confirm()` (train + validation, scored on test).
The format modules are imported here in the order their kinds are listed to a user.

Callers that need one job import its module (`trainables.data.augment`); the names below are
the package's public surface, for callers that use several.
"""

from __future__ import annotations

# the format modules register their kinds in this order, the order a user sees them listed
# isort: off
from trainables.data.registry import LOADERS, parse_task, register
from trainables.data.cifar10 import CIFAR10_CLASSES
from trainables.data.fashionrgb import FASHIONRGB_CLASSES
from trainables.data import imagefolder  # noqa: F401 (registers the imagefolder kind)

# isort: on
from trainables.data.augment import augment, normalize
from trainables.data.cache import LoadedTask, load_task
from trainables.data.decode import IMAGE_SUFFIXES, decode_image
from trainables.data.fingerprint import source_fingerprint
from trainables.data.splits import (
    balanced_subset,
    carve_validation,
    default_val_size,
    prepare_tasks,
)
from trainables.data.synthetic import KNOWN_CLASSES, SYNTHETIC_SIZES, make_synthetic
from trainables.data.tasks import TaskData, TaskSplits

__all__ = [
    "CIFAR10_CLASSES",
    "FASHIONRGB_CLASSES",
    "IMAGE_SUFFIXES",
    "KNOWN_CLASSES",
    "LOADERS",
    "SYNTHETIC_SIZES",
    "LoadedTask",
    "TaskData",
    "TaskSplits",
    "augment",
    "balanced_subset",
    "carve_validation",
    "decode_image",
    "default_val_size",
    "load_task",
    "make_synthetic",
    "normalize",
    "parse_task",
    "prepare_tasks",
    "register",
    "source_fingerprint",
]

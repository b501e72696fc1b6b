"""The three splits of a task: validation carved from train, test held out, on the real file
formats: disjoint by index and by image content, class-balanced, the same for the same arguments,
and only validation in the search view."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from fixtures import write_cifar10, write_fashion_json, write_imagefolder

from errors import UserError
from names import SPLIT_SEED, TEST, VALIDATION
from trainables.data import (
    IMAGE_SUFFIXES,
    LoadedTask,
    carve_validation,
    decode,
    decode_image,
    default_val_size,
    load_task,
    prepare_tasks,
    source_fingerprint,
)


def hashes(images: torch.Tensor) -> list[str]:
    """sha256 of each image's bytes."""
    return [hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images]


def folder_hashes(folder: Path) -> set[str]:
    """Content hashes of every image under `folder`, decoded as the loader decodes them."""
    files = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    return set(hashes(torch.stack([torch.from_numpy(decode_image(p)) for p in files])))


def cifar10(root: Path) -> str:
    write_cifar10(root)
    return "cifar10"


def fashion_json(root: Path) -> str:
    write_fashion_json(root, per_class=6)
    return "fashionrgb"


def imagefolder_val(root: Path) -> str:
    write_imagefolder(root / "birds", classes=("crow", "owl", "wren"), per_class=6)
    return f"imagefolder:{root / 'birds'}"


def imagefolder_test(root: Path) -> str:
    splits = ("train", "val", "test")
    write_imagefolder(root / "birds", classes=("crow", "owl", "wren"), per_class=6, splits=splits)
    return f"imagefolder:{root / 'birds'}"


FORMATS = [cifar10, fashion_json, imagefolder_val, imagefolder_test]


@pytest.fixture(params=FORMATS, ids=lambda f: f.__name__)
def dataset(request, tmp_path) -> tuple[Path, str]:
    """A tiny dataset in one real on-disk format: (data root, task spec)."""
    return tmp_path, request.param(tmp_path)


def prepare(root: Path, spec: str, **kw):
    return prepare_tasks([spec], "real", root, cache_dir=root / "cache", **kw)


def test_splits_are_disjoint_by_index_and_by_content(dataset):
    root, spec = dataset
    loaded = load_task(spec, "real", root, cache_dir=root / "cache")
    raw_train, raw_test = hashes(loaded.train_x), hashes(loaded.heldout_x)
    assert len(set(raw_train + raw_test)) == len(raw_train) + len(raw_test)  # distinct fixtures

    train_idx, val_idx = carve_validation(loaded)
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(len(loaded.train_y)))

    (task,) = prepare(root, spec).values()
    train, val, test = set(hashes(task.train_x)), set(hashes(task.val_x)), set(hashes(task.test_x))
    assert len(val) == len(task.val_y) == default_val_size(len(raw_train), task.num_classes)
    assert not val & train and not test & (train | val)
    assert train | val == set(raw_train) and test == set(raw_test)
    assert torch.equal(task.val_y, loaded.train_y[val_idx])


def test_imagefolder_tests_on_its_test_folder_when_there_is_one(tmp_path):
    spec = imagefolder_test(tmp_path)
    (task,) = prepare(tmp_path, spec).values()
    assert set(hashes(task.test_x)) == folder_hashes(tmp_path / "birds" / "test")
    assert not set(hashes(task.test_x)) & folder_hashes(tmp_path / "birds" / "val")
    spec = imagefolder_val(tmp_path / "other")
    (task,) = prepare(tmp_path / "other", spec).values()
    assert set(hashes(task.test_x)) == folder_hashes(tmp_path / "other" / "birds" / "val")


def test_validation_is_class_balanced_and_every_class_keeps_training_images():
    (task,) = prepare_tasks(["cifar10"], "synthetic", ".", val_size=55).values()
    assert torch.bincount(task.val_y).tolist() == [6] * 5 + [5] * 5
    (task,) = prepare_tasks(["cifar10"], "synthetic", ".").values()
    assert torch.bincount(task.val_y).tolist() == [50] * 10  # default: 10% of 5000
    assert torch.bincount(task.train_y).tolist() == [450] * 10
    assert default_val_size(10**6, 10) == 5000 and default_val_size(30, 10) == 10
    _, val = carve_validation(imbalanced([20, 3]), 10)  # a small class gives all but one
    assert torch.bincount(imbalanced([20, 3]).train_y[val]).tolist() == [8, 2]


def imbalanced(counts: list[int]) -> LoadedTask:
    """A loaded task with `counts[c]` training images of class c (all black; 2 test images)."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    images = torch.zeros(len(labels), 3, 32, 32, dtype=torch.uint8)
    classes = tuple(f"c{c}" for c in range(len(counts)))
    return LoadedTask("toy", classes, images, labels, images[:2], labels[:2])


def test_the_same_arguments_give_the_same_splits_in_every_space(tmp_path):
    """Validation depends on the data and its size only: not on the other tasks of a space, the
    study seed, the training subset, or whether the decoded data came from the cache."""
    write_cifar10(tmp_path)
    write_fashion_json(tmp_path, per_class=6)
    single = prepare(tmp_path, "cifar10")["cifar10"]
    multi = prepare_tasks(["cifar10", "fashionrgb"], "real", tmp_path, seed=7)["cifar10"]
    subset = prepare(tmp_path, "cifar10", limit_train=30, limit_test=10)["cifar10"]
    for other in (multi, subset):
        assert torch.equal(single.val_x, other.val_x) and torch.equal(single.val_y, other.val_y)
    assert set(hashes(subset.train_x)) < set(hashes(single.train_x))
    assert set(hashes(subset.test_x)) < set(hashes(single.test_x))
    assert single.split_seed == SPLIT_SEED
    synthetic = [prepare_tasks(["fashionrgb"], "synthetic", ".", val_size=40) for _ in range(2)]
    assert torch.equal(synthetic[0]["fashionrgb"].val_x, synthetic[1]["fashionrgb"].val_x)


def test_limits_subset_each_split_class_balanced(tmp_path):
    write_cifar10(tmp_path)
    task = prepare(tmp_path, "cifar10", val_size=30, limit_train=40, limit_val=20, limit_test=10)
    task = task["cifar10"]
    assert torch.bincount(task.train_y).tolist() == [4] * 10
    assert torch.bincount(task.val_y).tolist() == [2] * 10
    assert torch.bincount(task.test_y).tolist() == [1] * 10
    assert task.describe() == {
        "spec": "cifar10",
        "classes": list(task.classes),
        "train_size": 40,
        "val_size": 20,
        "test_size": 10,
        "split_seed": SPLIT_SEED,
        "synthetic": False,
        "fingerprint": source_fingerprint([tmp_path / "cifar-10-batches-py"]),
    }


def test_search_sees_validation_and_confirm_sees_test(tmp_path):
    write_fashion_json(tmp_path, per_class=6)
    task = prepare(tmp_path, "fashionrgb")["fashionrgb"]
    test = set(hashes(task.test_x))
    search = task.search()
    assert search.eval_split == VALIDATION and search.classes == task.classes
    assert torch.equal(search.train_x, task.train_x) and torch.equal(search.eval_x, task.val_x)
    assert not (set(hashes(search.train_x)) | set(hashes(search.eval_x))) & test
    confirm = task.confirm()
    assert confirm.eval_split == TEST and torch.equal(confirm.eval_y, task.test_y)
    assert torch.equal(confirm.train_x, torch.cat([task.train_x, task.val_x]))
    assert torch.equal(confirm.train_y, torch.cat([task.train_y, task.val_y]))
    assert len(confirm.train_y) == len(task.train_y) + len(task.val_y)
    assert not set(hashes(confirm.train_x)) & test


@pytest.mark.parametrize(
    "counts,val_size,message",
    [
        ([5, 5], 11, "validation set of 11 images is bigger than its training set of 10 images"),
        (
            [5, 5],
            9,
            "validation set of 9 images leaves a class without training images .*at most 8",
        ),
        ([5, 5, 5], 2, "validation set of 2 images cannot hold one image of each of its 3 classes"),
        ([5, 1], None, "class 'c1' has 1 training image"),
    ],
)
def test_a_validation_size_that_cannot_be_carved_is_named(counts, val_size, message):
    with pytest.raises(UserError, match=f"task toy: (a )?{message}") as err:
        carve_validation(imbalanced(counts), val_size)
    assert "\n" not in str(err.value)


def test_the_cache_holds_the_loaders_output_and_the_split_comes_after(tmp_path, monkeypatch):
    write_imagefolder(tmp_path / "birds", classes=("crow", "owl"), per_class=6)
    spec = f"imagefolder:{tmp_path / 'birds'}"
    first = prepare(tmp_path, spec)["birds"]
    (cached,) = (tmp_path / "cache").glob("birds-*.pt")
    payload = torch.load(cached, weights_only=True)
    assert len(payload["train_x"]) == 12 and len(payload["heldout_x"]) == 12

    def no_decoding(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(decode, "decode_image", no_decoding)  # where decode_all finds it
    other = prepare(tmp_path, spec, val_size=4)["birds"]  # another split, from the cache
    assert len(other.val_y) == 4 and len(first.val_y) == 2
    assert torch.equal(first.test_x, other.test_x)

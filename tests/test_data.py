"""Datasets: real on-disk formats, synthetic stand-ins, cache, batch augmentation; the three
splits (train, validation carved from it, test held out): disjoint, balanced, stable."""

from __future__ import annotations

import pickle
import zlib

import numpy as np
import pytest
import torch
from fixtures import break_fashionrgb, write_cifar10, write_fashion_json, write_imagefolder

from errors import UserError
from names import task_name
from trainables import data
from trainables.data import (
    CIFAR10_CLASSES,
    FASHIONRGB_CLASSES,
    augment,
    balanced_subset,
    decode,
    load_task,
    make_synthetic,
    normalize,
    parse_task,
    prepare_tasks,
    register,
    registry,
)


def test_cifar10_reads_real_pickle_batches(tmp_path):
    write_cifar10(tmp_path)
    task = load_task("cifar10", "real", tmp_path, cache_dir=tmp_path / "cache")
    assert task.train_x.shape == (100, 3, 32, 32) and task.train_x.dtype == torch.uint8
    assert task.heldout_x.shape == (30, 3, 32, 32)  # test_batch
    assert task.classes == CIFAR10_CLASSES
    assert not task.synthetic
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert np.array_equal(task.train_x[:20].reshape(20, -1).numpy(), raw[b"data"])
    assert task.train_y[:20].tolist() == raw[b"labels"]


def test_cifar10_refuses_pickles_that_carry_code(tmp_path):
    folder = write_cifar10(tmp_path)
    evil = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": eval}  # a global
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump(evil, f, protocol=2)
    with pytest.raises(UserError, match="data_batch_3.*refusing"):
        load_task("cifar10", "real", tmp_path, cache_dir=tmp_path / "cache")


def test_cifar10_missing_and_corrupt(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        load_task("cifar10", "real", tmp_path / "empty", cache_dir=tmp_path / "cache")
    folder = write_cifar10(tmp_path / "bad")
    (folder / "test_batch").write_bytes(b"\x80\x02}q\x00(truncated")
    with pytest.raises(UserError, match="corrupt CIFAR-10 batch .*test_batch"):
        load_task("cifar10", "real", tmp_path / "bad", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("objects,file_first", [(False, False), (False, True), (True, False)])
def test_fashionrgb_json_layouts(tmp_path, objects, file_first):
    write_fashion_json(tmp_path, objects=objects, file_first=file_first)
    task = load_task("fashionrgb", "real", tmp_path, cache_dir=tmp_path / "cache")
    assert task.classes == FASHIONRGB_CLASSES
    assert task.train_x.shape == (15, 3, 32, 32) and task.heldout_x.shape == (15, 3, 32, 32)
    assert sorted(task.train_y.tolist()) == sorted([c for c in range(5) for _ in range(3)])


def test_fashionrgb_imagefolder_layout_and_cache(tmp_path, monkeypatch):
    write_imagefolder(tmp_path / "FashionRGB")
    cache = tmp_path / "cache"
    first = load_task("fashionrgb", "real", tmp_path, cache_dir=cache)
    assert len(list(cache.glob("fashionrgb-*.pt"))) == 1

    def no_decoding(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(decode, "decode_image", no_decoding)  # where decode_all finds it
    second = load_task("fashionrgb", "real", tmp_path, cache_dir=cache)
    assert torch.equal(first.train_x, second.train_x)
    assert torch.equal(first.heldout_y, second.heldout_y)
    (tmp_path / "FashionRGB" / "val" / "Tank" / "9.png").write_bytes(b"")  # data changed
    with pytest.raises(AssertionError, match="decoded"):
        load_task("fashionrgb", "real", tmp_path, cache_dir=cache)


def test_imagefolder_task_brings_own_classes(tmp_path):
    write_imagefolder(tmp_path / "My Birds", classes=("crow", "owl"), per_class=2)
    spec = f"imagefolder:{tmp_path / 'My Birds'}"
    task = load_task(spec, "real", tmp_path, cache_dir=tmp_path / "cache")
    assert task.name == task_name(spec) == "my_birds"
    assert task.classes == ("crow", "owl") and len(task.train_y) == 4


@pytest.mark.parametrize(
    "kind,message",
    [
        ("no val split", "val.json is missing"),
        ("not a list of pairs", "list of \\[class name, image file\\] pairs"),
        ("listed file missing", "image listed but missing"),
        ("unknown class", "names no class"),
        ("empty class", "Tank.*no images"),
        ("unreadable image", "unreadable image"),
        ("invalid json", "not valid JSON"),
    ],
)
def test_fashionrgb_bad_layouts_name_the_problem(tmp_path, kind, message):
    write_fashion_json(tmp_path)
    break_fashionrgb(kind, tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match=message) as err:
        load_task("fashionrgb", "real", tmp_path, cache_dir=cache)
    assert "\n" not in str(err.value)
    assert not cache.exists()  # nothing half-written


def test_imagefolder_bad_trees(tmp_path):
    write_imagefolder(tmp_path / "a", classes=("x", "y"))
    (tmp_path / "a" / "val" / "y").rename(tmp_path / "a" / "val" / "z")
    with pytest.raises(UserError, match="differ between train"):
        load_task(f"imagefolder:{tmp_path / 'a'}", "real", tmp_path, cache_dir=tmp_path / "c")
    write_imagefolder(tmp_path / "b", classes=("x", "y"))
    for f in (tmp_path / "b" / "train" / "y").iterdir():
        f.unlink()
    with pytest.raises(UserError, match="empty class"):
        load_task(f"imagefolder:{tmp_path / 'b'}", "real", tmp_path, cache_dir=tmp_path / "c")
    with pytest.raises(UserError, match="not a folder"):
        load_task(f"imagefolder:{tmp_path / 'nope'}", "real", tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_task("fashionrgb", "real", tmp_path / "nope")
    with pytest.raises(UserError, match="unknown task"):
        load_task("imagenet", "real", tmp_path)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("imagenet", r"expected one of cifar10, fashionrgb, imagefolder \(imagefolder:<path>\)"),
        ("synthetic", "unknown task"),
        ("imagefolder", "needs a path: imagefolder:<path>"),
        ("cifar10:x", "takes no argument"),
    ],
)
def test_task_specs_are_checked(spec, message):
    with pytest.raises(UserError, match=message):
        parse_task(spec)


def test_synthetic_is_deterministic_and_shaped_like_the_real_tasks():
    a = make_synthetic("cifar10", None)
    b = make_synthetic("fashionrgb", None)
    assert a[0].shape[1:] == (3, 32, 32) and a[0].dtype == np.uint8
    assert len(a[4]) == 10 and len(b[4]) == 5
    assert np.array_equal(a[0], make_synthetic("cifar10", None)[0])
    assert not np.array_equal(a[0][:100], make_synthetic("cifar10", None, seed=1)[0][:100])
    task = load_task("cifar10", "synthetic")
    assert task.synthetic and task.classes == CIFAR10_CLASSES


def _gather_crops(
    padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """Per-image h x w windows at offsets (dy, dx) (each B x 1), read mirrored where `flip`: the
    crop the first recipe used (the product no longer needs it)."""
    b, dev = padded.shape[0], padded.device
    rows = dy + torch.arange(h, device=dev)  # B x H
    cols = torch.arange(w, device=dev).expand(b, w)
    cols = torch.where(flip, cols.flip(1), cols) + dx  # B x W, flipped read order
    batch_index = torch.arange(b, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)  # B x 3 x H x W, channels_last strides


def _synthetic_reference(arg: str, seed: int) -> list[np.ndarray]:
    """make_synthetic's recipe as first written (blend the classes' whole 40 x 40 patterns, then
    crop the window; out of place): the studies made with it had these very images."""
    k = len(data.KNOWN_CLASSES[arg])
    g = torch.Generator().manual_seed(zlib.crc32(f"{arg}:{seed}".encode()))
    low = torch.rand(k, 3, 4, 4, generator=g)
    protos = (torch.nn.functional.interpolate(low, size=40, mode="bicubic") - 0.5) * 2.5
    arrays = []
    for n in data.SYNTHETIC_SIZES[arg]:
        y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
        other = (y + torch.randint(1, k, (n,), generator=g)) % k
        own = 0.4 + 0.6 * torch.rand(n, 1, 1, 1, generator=g)
        x = own * protos[y] + (1 - own) * protos[other]
        dy, dx = torch.randint(0, 9, (2, n, 1), generator=g)
        x = _gather_crops(x, dy, dx, torch.zeros(n, 1, dtype=torch.bool), 32, 32)
        x = x * (0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=g))
        x = x + 0.3 * torch.randn(x.shape, generator=g)
        arrays += [((x * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).numpy(), y.numpy()]
    return arrays


@pytest.mark.parametrize(("arg", "seed"), [("cifar10", 0), ("fashionrgb", 3)])
def test_synthetic_images_are_those_of_the_first_recipe(arg, seed):
    made = make_synthetic(arg, None, seed=seed)
    for ours, reference in zip(made[:4], _synthetic_reference(arg, seed), strict=True):
        assert np.array_equal(ours, reference)


def test_balanced_subset_is_deterministic_and_balanced():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 5)
    idx = balanced_subset(labels, 30, 3)
    assert torch.equal(idx, balanced_subset(labels, 30, 3))
    assert torch.bincount(labels[idx]).tolist() == [13, 12, 5]  # the small class is exhausted
    assert len(balanced_subset(labels, None, 3)) == 85
    kept = balanced_subset(labels, None, 3, keep=1)  # all but one of each class
    assert torch.bincount(labels[kept]).tolist() == [49, 29, 4]
    assert torch.bincount(labels[balanced_subset(labels, 14, 3, keep=4)]).tolist() == [7, 6, 1]


def test_augment_is_a_crop_of_the_padded_image_or_its_mirror():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    y = augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(len(x)):
        windows = [padded[i, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(y[i], w) or torch.equal(y[i], w.flip(2)) for w in windows)
    flipped = sum(
        not any(
            torch.equal(y[i], padded[i, :, a : a + 32, b : b + 32])
            for a in range(9)
            for b in range(9)
        )
        for i in range(len(x))
    )
    assert 10 < flipped < 54  # about half are mirrored


def test_normalize_standardizes_channels():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    mean = x.float().div(255).mean(dim=(0, 2, 3))
    std = x.float().div(255).std(dim=(0, 2, 3))
    z = normalize(x, mean, std)
    assert z.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# the recipe "Add a dataset", followed once: a loader registered with the files it reads


@pytest.fixture
def digits(tmp_path, monkeypatch):
    """A tiny dataset kind `digits`: one .npy file per split under `<root>/digits` (images
    N x 3 x 32 x 32, label = first pixel's parity). Returns (data root, loader calls, register:
    `register(**declared)` registers the loader with what it declares, for this test only)."""
    monkeypatch.setattr(registry, "LOADERS", {**registry.LOADERS})  # where register writes
    rng = np.random.default_rng(0)
    (tmp_path / "digits").mkdir()
    for split, n in (("train", 40), ("val", 10)):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        x[:, 0, 0, 0] = np.arange(n)  # both classes in every split
        np.save(tmp_path / "digits" / f"{split}.npy", x)
    calls = []

    def load_digits(arg, data_root):
        calls.append(arg)
        splits = []
        for split in ("train", "val"):
            x = np.load(data_root / "digits" / f"{split}.npy")
            splits += [x, (x[:, 0, 0, 0] % 2).astype(np.int64)]
        return (*splits, ("even", "odd"))

    return tmp_path, calls, lambda **declared: register("digits", **declared)(load_digits)


def test_a_new_dataset_is_one_registered_loader_and_is_cached(digits):
    root, calls, register_digits = digits
    register_digits(sources=lambda arg, data_root: [data_root / "digits"])
    cache = root / "cache"
    first = prepare_tasks(["digits"], "real", root, limit_train=20, cache_dir=cache)["digits"]
    assert first.classes == ("even", "odd") and len(first.train_y) == 20
    assert len(first.val_y) == 4 and len(first.test_y) == 10  # 10% of train; its test split
    assert len(list(cache.glob("digits-*.pt"))) == 1
    second = load_task("digits", "real", root, cache_dir=cache)
    assert len(calls) == 1  # from the cache
    heldout = torch.from_numpy(np.load(root / "digits" / "val.npy"))
    assert torch.equal(second.heldout_x, heldout)
    np.save(root / "digits" / "val.npy", np.load(root / "digits" / "val.npy")[:8])  # a change
    assert len(load_task("digits", "real", root, cache_dir=cache).heldout_y) == 8
    assert len(calls) == 2


def test_a_loader_without_sources_is_not_cached(digits):
    root, calls, register_digits = digits
    register_digits()
    for _ in range(2):
        assert load_task("digits", "real", root, cache_dir=root / "cache").num_classes == 2
    assert len(calls) == 2 and not (root / "cache").exists()

"""Batch pipeline throughput, no model: our uint8 tensor path vs the baseline PIL DataLoader.

    python -m benchmarks.pipeline [--images 5000] [--batch-size 128] [--rounds 5] [--threads 2]

"ours" is what `trainables.engine.train_epoch` does per batch before the model: the next indices
from a `BatchStream`, a gather from the in-memory uint8 tensor, `augment` (crop + flip as one
gather) and `normalize` (to float32, channels_last). "baseline_w0" / "baseline_w2" are a torchvision
`DataLoader` over PIL images with RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor and
Normalize, with 0 and 2 worker processes (persistent, warmed up: steady state, which flatters
them). One epoch of each variant per round, variants interleaved in an order that rotates each
round; medians over rounds.
Prints one JSON line: images/s per variant and ours / best baseline variant (target >= 10).
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import (
    baseline_loader,
    emit,
    loadavg,
    log,
    median,
    rotated,
    spread,
    synthetic_task,
    timed,
)
from trainables.data import TaskData, augment, normalize
from trainables.engine import BatchStream

TARGET = 10.0  # ours / best baseline variant


def ours_epoch(
    task: TaskData,
    stats: tuple[torch.Tensor, torch.Tensor],
    batch_size: int,
    stream: BatchStream,
    gen: torch.Generator,
) -> None:
    for _ in range(-(-len(task.train_y) // batch_size)):
        idx = stream.next(batch_size)
        x = normalize(augment(task.train_x.index_select(0, idx), gen), *stats, True)
        y = task.train_y.index_select(0, idx)
        assert x.shape[0] == y.shape[0]


def loader_epoch(loader: torch.utils.data.DataLoader) -> None:
    for x, y in loader:
        assert x.shape[0] == y.shape[0]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--images",
        type=int,
        default=5000,
        help="images per epoch (<= 4900: the stand-in's 5000 "
        "training images less 100 carved for validation)",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5, help="interleaved repeats; medians reported")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the main process")
    return p


def measure(task: TaskData, batch_size: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per epoch of our path and of the baseline loaders, interleaved by round."""
    n, stats = len(task.train_y), task.channel_stats()
    stream = BatchStream(n, seed=0, task_index=0)
    gen = torch.Generator().manual_seed(0)
    loaders = {f"baseline_w{w}": baseline_loader(task, batch_size, w) for w in (0, 2)}
    variants = {
        "ours": lambda: ours_epoch(task, stats, batch_size, stream, gen),
        **{name: (lambda ld=ld: loader_epoch(ld)) for name, ld in loaders.items()},
    }
    for fn in variants.values():  # warm-up: worker start, allocator, first-call costs
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in rotated(list(variants), r):
            times[name].append(timed(variants[name], torch.device("cpu")))
        log(
            f"pipeline round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {n / v[-1]:,.0f} img/s" for k, v in times.items())
        )
    return times


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    load_before = loadavg()
    torch.set_num_threads(args.threads)
    task = synthetic_task(args.images, 100)
    n = len(task.train_y)
    times = measure(task, args.batch_size, args.rounds)
    rate = {name: n / median(t) for name, t in times.items()}
    best_baseline = max((k for k in rate if k != "ours"), key=rate.__getitem__)
    ratio = rate["ours"] / rate[best_baseline]
    emit(
        {
            "benchmark": "pipeline",
            "images_per_epoch": n,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "threads": args.threads,
            "img_per_s": rate,
            "spread": {name: spread(t) for name, t in times.items()},
            "best_img_per_s": {name: n / min(t) for name, t in times.items()},
            "best_baseline_variant": best_baseline,
            "ratio_vs_best_baseline": ratio,
            "ratio_vs_baseline_w0": rate["ours"] / rate["baseline_w0"],
            "target": TARGET,
            "ok": ratio >= TARGET,
            "loadavg": [load_before, loadavg()],
        }
    )


if __name__ == "__main__":
    main()

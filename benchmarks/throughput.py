"""Training and evaluation images/s of one trial: the engine vs a bare loop vs the baseline.

    python -m benchmarks.throughput [--device cpu|cuda] [--threads 2] [--batch-size 128]
        [--batches 12] [--precision auto|fp32|bf16] [--rounds 3] [--baseline-workers 0]
        [--compile off|default|reduce-overhead|max-autotune]

Variants, all on the same synthetic single task (`cifar10` stand-in), batch size and device:

- engine:   `trainables.engine.setup` + `train_epoch` (and `evaluate`), exactly as a trial runs
            (`--compile` sets the trial's torch.compile mode; the warm-up epoch compiles).
- bare:     `build_model` (channels_last), Adam, `F.cross_entropy` over pre-made, pre-normalized
            batches (no augmentation, no metrics): the floor the engine is measured against.
- baseline: the original project's pipeline: a torchvision DataLoader over PIL images with
            RandomCrop, flip, ToTensor, Normalize; fp32, contiguous (not channels_last) model.

One epoch of `--batches` batches per variant per round, variants interleaved (the order rotates
each round, so no variant always runs right after another); medians over rounds, and `best_*`
from the fastest round (robust to other load on shared CPUs). Prints two JSON lines: training
(targets engine/bare >= 0.95, engine/baseline >= 2) and evaluation (engine `evaluate` vs a bare
inference loop).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F

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
from trainables.config import TrialConfig
from trainables.data import TaskData, normalize
from trainables.engine import EVAL_BATCH, evaluate, setup, train_epoch
from trainables.model import MultiTaskNet, build_model
from trainables.resources import claim_resources

TASK = "cifar10"
TARGET_BARE = 0.95  # engine / bare, training
TARGET_BASELINE = 2.0  # engine / baseline pipeline, training


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def make_optimizer(model: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """Adam at lr 1e-3, fused on CUDA: what the engine builds for the default config."""
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.Adam(model.parameters(), lr=1e-3, **fused)


def bare_train(
    model: MultiTaskNet, opt: torch.optim.Optimizer, batches: list, bf16: bool, device: torch.device
) -> None:
    model.train()
    for x, y in batches:
        with autocast(device, bf16):
            logits = model(x, TASK)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.inference_mode()
def bare_eval(model: MultiTaskNet, batches: list, bf16: bool, device: torch.device) -> int:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    for x, y in batches:
        with autocast(device, bf16):
            correct += (model(x, TASK).argmax(1) == y).sum()
    return int(correct)


def baseline_train(
    model: MultiTaskNet,
    opt: torch.optim.Optimizer,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
) -> None:
    model.train()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x, TASK), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def premade_batches(
    x: torch.Tensor, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor], batch: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    xn = normalize(x, *stats, True)
    return [(xn[i : i + batch], y[i : i + batch]) for i in range(0, len(y), batch)]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=2, help="torch threads (a trial's CPU share)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=12, help="training batches per epoch")
    p.add_argument("--val-images", type=int, default=1024, help="validation images")
    p.add_argument("--precision", default="auto", help="auto (bf16 on CUDA), fp32 or bf16")
    p.add_argument("--rounds", type=int, default=3, help="interleaved repeats; medians reported")
    p.add_argument(
        "--baseline-workers", type=int, default=0, help="baseline pipeline's DataLoader workers"
    )
    p.add_argument("--compile", default="off", help="the engine's torch.compile mode")
    return p


@dataclasses.dataclass
class Variants:
    """The measured variants: one epoch of training each, one pass of evaluation each, and the
    images each of those handles."""

    train: dict[str, Callable[[], object]]
    evals: dict[str, Callable[[], object]]
    images: dict[str, int]  # per training epoch
    eval_images: int
    bf16: bool


def build_variants(args: argparse.Namespace, device: torch.device) -> Variants:
    """The engine as a trial runs it, the bare loop and the baseline pipeline, on one task."""
    bs, n_train = args.batch_size, args.batches * args.batch_size
    cfg = TrialConfig.from_dict(
        {
            "tasks": [TASK],
            "data": "synthetic",
            "limit_train": n_train,
            "limit_val": args.val_images,
            "batch_size": bs,
            "max_epochs": 100,
            "precision": args.precision,
            "channels_last": True,
            "cpus": args.threads,
            "gpus": 1.0 if device.type == "cuda" else 0.0,
            "compile": args.compile,
        }
    )
    claim_resources(cfg)  # threads; on CUDA cuDNN autotuning, which every variant then shares
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    cpu_task: TaskData = synthetic_task(n_train, args.val_images)
    tasks = {TASK: cpu_task.to(device)}
    state = setup(cfg, tasks, device)
    task, stats = tasks[TASK], state.stats[TASK]
    bare_model = build_model({TASK: task.num_classes}, device, channels_last=True)
    bare_opt = make_optimizer(bare_model, device)
    train_batches = premade_batches(task.train_x, task.train_y, stats, bs)
    val_batches = premade_batches(task.eval_x, task.eval_y, stats, EVAL_BATCH)
    baseline_model = build_model({TASK: task.num_classes}, device, channels_last=False)
    baseline_opt = make_optimizer(baseline_model, device)
    loader = baseline_loader(cpu_task, bs, args.baseline_workers, pin_memory=device.type == "cuda")
    images = {
        "engine": state.plan.iters_per_epoch * bs,
        "bare": n_train,
        "baseline": len(loader.dataset),
    }
    return Variants(
        train={
            "engine": lambda: train_epoch(state, tasks),
            "bare": lambda: bare_train(bare_model, bare_opt, train_batches, bf16, device),
            "baseline": lambda: baseline_train(baseline_model, baseline_opt, loader, device),
        },
        evals={
            "engine": lambda: evaluate(state, tasks),
            "bare": lambda: bare_eval(bare_model, val_batches, bf16, device),
        },
        images=images,
        eval_images=len(task.eval_y),
        bf16=bf16,
    )


def measure(v: Variants, rounds: int, device: torch.device) -> tuple[dict, dict]:
    """Seconds per call of every variant, interleaved round by round (after one warm-up)."""
    for fn in [*v.train.values(), *v.evals.values()]:  # warm-up: kernels, allocator, workers
        fn()
    t_train: dict[str, list[float]] = {k: [] for k in v.train}
    t_eval: dict[str, list[float]] = {k: [] for k in v.evals}
    for r in range(rounds):
        for name in rotated(list(v.train), r):
            t_train[name].append(timed(v.train[name], device))
        for name in rotated(list(v.evals), r):
            t_eval[name].append(timed(v.evals[name], device))
        log(
            f"throughput round {r + 1}/{rounds}: train "
            + ", ".join(f"{k} {v.images[k] / s[-1]:,.0f}" for k, s in t_train.items())
            + " img/s; eval "
            + ", ".join(f"{k} {v.eval_images / s[-1]:,.0f}" for k, s in t_eval.items())
            + " img/s"
        )
    return t_train, t_eval


def train_record(v: Variants, t_train: dict[str, list[float]]) -> dict:
    """The training line: medians and bests of img/s, the ratios and their targets."""
    rate = {k: v.images[k] / median(s) for k, s in t_train.items()}
    best = {k: v.images[k] / min(s) for k, s in t_train.items()}
    return {
        "phase": "train",
        "images_per_epoch": v.images["engine"],
        "img_per_s": rate,
        "spread": {k: spread(s) for k, s in t_train.items()},
        "best_img_per_s": best,
        "engine_vs_bare_best": best["engine"] / best["bare"],
        "engine_vs_bare": rate["engine"] / rate["bare"],
        "engine_vs_baseline": rate["engine"] / rate["baseline"],
        "targets": {"engine_vs_bare": TARGET_BARE, "engine_vs_baseline": TARGET_BASELINE},
        "ok": rate["engine"] / rate["bare"] >= TARGET_BARE
        and rate["engine"] / rate["baseline"] >= TARGET_BASELINE,
    }


def eval_record(v: Variants, t_eval: dict[str, list[float]]) -> dict:
    """The evaluation line: `evaluate` against a bare inference loop."""
    rate = {k: v.eval_images / median(s) for k, s in t_eval.items()}
    best = {k: v.eval_images / min(s) for k, s in t_eval.items()}
    return {
        "phase": "eval",
        "images": v.eval_images,
        "eval_batch": EVAL_BATCH,
        "img_per_s": rate,
        "spread": {k: spread(s) for k, s in t_eval.items()},
        "best_img_per_s": best,
        "engine_vs_bare_best": best["engine"] / best["bare"],
        "engine_vs_bare": rate["engine"] / rate["bare"],
    }


def main(argv: list[str] | None = None) -> None:
    p = _parser()
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available here")
    load_before = loadavg()
    variants = build_variants(args, device)
    t_train, t_eval = measure(variants, args.rounds, device)
    common = {
        "benchmark": "throughput",
        "device": str(device),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "precision": "bf16" if variants.bf16 else "fp32",
        "rounds": args.rounds,
        "compile": args.compile,
        "loadavg": [load_before, loadavg()],
    }
    emit({**common, **train_record(variants, t_train), "baseline_workers": args.baseline_workers})
    emit({**common, **eval_record(variants, t_eval)})


if __name__ == "__main__":
    main()

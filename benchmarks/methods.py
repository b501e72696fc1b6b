"""Step time and peak memory of every multi-task method, relative to `ew` (equal weights).

    python -m benchmarks.methods [--device cpu|cuda] [--threads 2] [--batch-size 128]
        [--tasks 2] [--steps 3] [--rounds 3] [--methods ew,upgrad,...]

One step is a `joint` step as the engine will run it with a method: each of the K tasks takes a
forward of its own batch (pre-made, normalized, channels_last; K x `--batch-size` images) through
the real model (`trainables.model.build_model`: EfficientNet-B0, one head per task), then the
method's `backward` (`trainables.methods`), then a fused Adam step over the model's and the
method's parameters. fp32 on the CPU, bf16 autocast on CUDA, as trials run.

- time: per round, every method builds its model, takes one warm-up step, then `--steps` timed
  steps; methods interleaved, their order rotating each round; median seconds per step over
  rounds, `time_ratio` = a method's median / ew's.
- memory: the peak a step adds above the memory held before it. On CUDA, the allocator's peak
  (`max_memory_allocated`); on the CPU, the peak resident set (VmHWM, reset through
  /proc/self/clear_refs) of a fresh process per method, since the allocator keeps what an earlier
  method freed. `memory_ratio` = a method's peak / ew's.

Prints one JSON line per method and a `"phase": "summary"` line with the ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import emit, loadavg, log, median, rotated, spread, sync
from trainables.methods import METHODS
from trainables.model import autocast, build_model

CLASSES = 10


def make_step(name: str, tasks: int, batch: int, device: torch.device) -> Callable[[], None]:
    """A closure taking one optimizer step of method `name` on a fresh model (seed 0)."""
    torch.manual_seed(0)
    model = build_model({f"task{i}": CLASSES for i in range(tasks)}, device, channels_last=True)
    combiner = METHODS[name].create(tasks, seed=0, device=device)
    opt = torch.optim.Adam([*model.parameters(), *combiner.parameters()], lr=1e-3, fused=True)
    g = torch.Generator().manual_seed(1)
    batches = [
        (
            torch.randn(batch, 3, 32, 32, generator=g).to(
                device, memory_format=torch.channels_last
            ),
            torch.randint(0, CLASSES, (batch,), generator=g).to(device),
        )
        for _ in range(tasks)
    ]
    shared, heads = list(model.backbone.parameters()), list(model.heads.parameters())
    model.train()

    def step() -> None:
        losses = []
        for task, (x, y) in zip(model.heads, batches):
            with autocast("auto", device):
                logits = model(x, task)
            losses.append(F.cross_entropy(logits.float(), y))
        opt.zero_grad(set_to_none=True)
        combiner.backward(losses, shared, heads)
        opt.step()

    return step


def _vm(field: str) -> int:
    """A Vm* line of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def step_peak(name: str, tasks: int, batch: int, steps: int, device: torch.device) -> int:
    """Bytes a step of `name` adds at its peak above what the process held before it."""
    step = make_step(name, tasks, batch, device)
    sync(device)
    if device.type == "cuda":
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        before = _vm("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    for _ in range(steps):
        step()
    sync(device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _vm("VmHWM")
    return peak - before


def _peak_worker(name: str, tasks: int, batch: int, steps: int, threads: int, out) -> None:
    torch.set_num_threads(threads)
    out.put(step_peak(name, tasks, batch, steps, torch.device("cpu")))


def cpu_step_peak(name: str, args: argparse.Namespace) -> int:
    """`step_peak` on the CPU in a fresh (spawned) process."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(
        target=_peak_worker, args=(name, args.tasks, args.batch_size, 2, args.threads, out)
    )
    proc.start()
    peak = out.get(timeout=600)
    proc.join()
    return peak


def time_steps(names: list[str], args: argparse.Namespace, device: torch.device) -> dict:
    """Seconds per step of every method, one median per round."""
    per_round: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in rotated(names, r):
            step = make_step(name, args.tasks, args.batch_size, device)
            step()  # warm-up
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync(device)
            per_round[name].append((time.perf_counter() - start) / args.steps)
        log(
            f"methods round {r + 1}/{args.rounds}: "
            + ", ".join(f"{n} {s[-1]:.3f} s" for n, s in per_round.items())
        )
    return per_round


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128, help="images per task per step")
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="timed steps per method per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--methods",
        default=",".join(n for n, m in METHODS.items() if not m.missing()),
        help="comma-separated; ew is added (default: every method whose extra is installed)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    p = _parser()
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available here")
    names = ["ew", *[n for n in args.methods.split(",") if n and n != "ew"]]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        p.error(f"unknown method(s) {', '.join(unknown)} (known: {', '.join(METHODS)})")
    torch.set_num_threads(args.threads)
    load_before = loadavg()
    times = time_steps(names, args, device)
    peaks = {
        n: step_peak(n, args.tasks, args.batch_size, 2, device)
        if device.type == "cuda"
        else cpu_step_peak(n, args)
        for n in names
    }
    common = {
        "benchmark": "methods",
        "device": str(device),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "tasks": args.tasks,
        "steps": args.steps,
        "rounds": args.rounds,
    }
    ew_time, ew_peak = median(times["ew"]), peaks["ew"]
    for n in names:
        emit(
            {
                **common,
                "method": n,
                "jacobian": METHODS[n].jacobian,
                "step_s": median(times[n]),
                "spread": spread(times[n]),
                "best_step_s": min(times[n]),
                "peak_step_bytes": peaks[n],
                "time_ratio": median(times[n]) / ew_time,
                "memory_ratio": peaks[n] / ew_peak,
            }
        )
    emit(
        {
            **common,
            "phase": "summary",
            "time_ratio": {n: median(times[n]) / ew_time for n in names},
            "best_time_ratio": {n: min(times[n]) / min(times["ew"]) for n in names},
            "memory_ratio": {n: peaks[n] / ew_peak for n in names},
            "loadavg": [load_before, loadavg()],
        }
    )


if __name__ == "__main__":
    main()

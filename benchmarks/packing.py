"""Packing: aggregate training images/s of 1, 2, 4, 8 trials sharing one device, and their memory.

    python -m benchmarks.packing [--device cuda|cpu] [--trials 1,2,4,8] [--seconds 20]
        [--launcher auto|ray|processes] [--batch-size 128] [--limit-train 2560]
        [--tasks cifar10,fashionrgb] [--scheme joint] [--compile off] [--cpus C]

For each N in `--trials`, N trial workers share the device, each with a 1/N share of it:
`gpus = 1/N` on CUDA (and `cpus = C/N`), `cpus = C/N` on the CPU. With `--launcher ray` every
worker is a Ray actor asking for exactly that share (`num_gpus=1/N`: Ray's fractional GPU
accounting, as the study's trials get it); `processes` starts the same workers as plain spawned
processes, for a machine without Ray; `auto` takes Ray when it is importable.

A worker is a trial's training loop: it claims its share with the code trials use
(`trainables.resources.claim_resources`: threads, and on CUDA a memory cap at its share),
builds the engine state on synthetic multi-task data (the `--tasks` stand-ins, on the device),
trains one warm-up epoch, and reports ready. When all are ready they are told to start together
and each trains whole epochs for `--seconds`. Aggregate img/s = all images trained / (the last
worker's end - the first worker's start): conservative, since a worker that finishes early left
the device to the others for a moment.

Prints one JSON line per N (`aggregate_img_per_s`, `per_trial_img_per_s`, `speedup_vs_1`,
`peak_memory` per trial with its `memory_share_bytes`, `memory_ok`), then a summary line with the
targets: on CUDA, 4 trials at 0.25 each >= 2.5x one trial alone, and no trial's peak reserved
memory above its share. Per-batch progress is never printed; a line per N goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import emit, loadavg, log, sync

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP_AT_4 = 2.5  # aggregate of 4 trials at 0.25 GPU / one trial alone (CUDA)


class PackedTrial:
    """One trial's engine on synthetic data, trained for a fixed time (an actor or a process)."""

    def __init__(self, config: dict[str, Any]) -> None:
        from trainables.config import TrialConfig
        from trainables.data import prepare_tasks
        from trainables.engine import setup
        from trainables.resources import claim_resources

        self.config = TrialConfig.from_dict(config)
        self.device = claim_resources(self.config)
        data = prepare_tasks(
            list(self.config.tasks),
            "synthetic",
            ".",
            limit_train=self.config.limit_train,
            limit_val=64,
        )
        self.tasks = {name: task.search().to(self.device) for name, task in data.items()}
        self.state = setup(self.config, self.tasks, self.device)

    def _epoch(self) -> int:
        """One training epoch; returns the images it trained on."""
        from names import STEPS
        from trainables.engine import train_epoch

        out = train_epoch(self.state, self.tasks)
        self.state.epoch += 1
        return sum(out[name][STEPS] for name in self.tasks) * self.config.batch_size

    def prepare(self) -> float:
        """Warm-up epoch (kernels, allocator, cuDNN autotuning, compilation); its seconds."""
        start = time.perf_counter()
        self._epoch()
        sync(self.device)
        return time.perf_counter() - start

    def train(self, seconds: float) -> dict[str, Any]:
        """Whole epochs until `seconds` have passed; images, start/end (epoch time), memory."""
        from trainables.resources import peak_memory

        sync(self.device)
        start, images = time.time(), 0
        while time.time() - start < seconds:
            images += self._epoch()
            sync(self.device)
        end = time.time()
        return {
            "images": images,
            "start": start,
            "end": end,
            "pid": os.getpid(),
            "memory": peak_memory(self.device),
        }


def _process_worker(config: dict[str, Any], seconds: float, barrier: Any, results: Any) -> None:
    try:
        trial = PackedTrial(config)
        warmup = trial.prepare()
        barrier.wait()
        results.put({**trial.train(seconds), "warmup_s": warmup})
    except BaseException as exc:  # reported to the driver, which fails loudly
        barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def run_processes(configs: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    barrier, results = ctx.Barrier(len(configs)), ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(c, seconds, barrier, results)) for c in configs
    ]
    for p in procs:
        p.start()
    out = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return out


def run_ray(configs: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    import ray

    actor = ray.remote(PackedTrial)
    actors = [actor.options(num_cpus=c["cpus"], num_gpus=c["gpus"]).remote(c) for c in configs]
    try:
        warmups = ray.get([a.prepare.remote() for a in actors])  # all built and warm
        results = ray.get([a.train.remote(seconds) for a in actors])  # then start together
    finally:
        for a in actors:
            ray.kill(a)
    return [{**r, "warmup_s": w} for r, w in zip(results, warmups)]


def start_ray(cpus: float, gpus: int) -> None:
    import ray

    from study.internals import keep_legacy_reporter

    keep_legacy_reporter()
    ray.init(
        address="local",
        num_cpus=cpus,
        num_gpus=gpus,
        include_dashboard=False,
        configure_logging=True,
        logging_level="WARNING",
        log_to_driver=True,
        # actors import this module (it is not installed), so give them the repository root
        runtime_env={
            "env_vars": {
                "PYTHONPATH": os.pathsep.join(
                    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
                )
            }
        },
    )


def summarize(n: int, runs: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """One N's figures from its workers' results (pure: tested without a device)."""
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        return {"trials": n, "error": errors}
    window = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    per_trial = [r["images"] / (r["end"] - r["start"]) for r in runs]
    record: dict[str, Any] = {
        "trials": n,
        "cpus_per_trial": config["cpus"],
        "gpus_per_trial": config["gpus"],
        "window_s": window,
        "images": sum(r["images"] for r in runs),
        "aggregate_img_per_s": sum(r["images"] for r in runs) / window,
        "per_trial_img_per_s": per_trial,
        "start_skew_s": max(r["start"] for r in runs) - min(r["start"] for r in runs),
        "warmup_s": [r["warmup_s"] for r in runs],
        "peak_memory": [r["memory"] for r in runs],
    }
    total = runs[0]["memory"].get("device_total_bytes")
    if total:
        share = int(config["gpus"] * total) if config["gpus"] < 1 else total
        record["memory_share_bytes"] = share
        record["memory_ok"] = all(r["memory"]["peak_reserved_bytes"] <= share for r in runs)
    return record


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.packing",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--device", default="cuda", help="cuda (shares of one GPU) or cpu")
    p.add_argument("--trials", default=None, help="comma-separated N (cuda 1,2,4,8; cpu 1,2)")
    p.add_argument("--seconds", type=float, default=20.0, help="timed training per N")
    p.add_argument("--launcher", default="auto", choices=("auto", "ray", "processes"))
    p.add_argument("--batch-size", type=int, default=128, help="images per task per step")
    p.add_argument("--limit-train", type=int, default=2560, help="images per task (an epoch)")
    p.add_argument("--tasks", default="cifar10,fashionrgb", help="synthetic stand-ins to train")
    p.add_argument("--scheme", default="joint", help="task-sampling scheme")
    p.add_argument("--compile", default="off", help="torch.compile mode of the backbone")
    p.add_argument("--cpus", type=float, default=None, help="CPUs to share (default: all)")
    return p


def _counts(p: argparse.ArgumentParser, args: argparse.Namespace) -> list[int]:
    """The trial counts to measure; the device checked first."""
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            p.error("--device cuda: CUDA is not available here (use --device cpu)")
    elif args.device != "cpu":
        p.error(f"--device must be cuda or cpu, got {args.device!r}")
    default = "1,2,4,8" if args.device == "cuda" else "1,2"
    counts = [int(n) for n in (args.trials or default).split(",")]
    if any(n < 1 for n in counts):
        p.error("--trials must be positive counts")
    return counts


def measure_counts(args: argparse.Namespace, counts: list[int], launcher: str) -> list[dict]:
    """One record per N: N workers at 1/N of the device each (and of the CPUs), side by side."""
    cpus = args.cpus or float(os.cpu_count() or 1)
    if launcher == "ray":
        start_ray(cpus, 1 if args.device == "cuda" else 0)
    base = {
        "tasks": args.tasks.split(","),
        "data": "synthetic",
        "limit_train": args.limit_train,
        "batch_size": args.batch_size,
        "max_epochs": 1000,
        "scheme": args.scheme,
        "compile": args.compile,
    }
    records: list[dict] = []
    for n in counts:
        config = {**base, "cpus": cpus / n, "gpus": 1 / n if args.device == "cuda" else 0.0}
        runs = (run_ray if launcher == "ray" else run_processes)([config] * n, args.seconds)
        record = summarize(n, runs, config)
        alone = next((r for r in [*records, record] if r["trials"] == 1 and "error" not in r), None)
        if alone and "error" not in record:
            record["speedup_vs_1"] = record["aggregate_img_per_s"] / alone["aggregate_img_per_s"]
        records.append(record)
        emit({"benchmark": "packing", "device": args.device, "launcher": launcher, **record})
        done = record.get("aggregate_img_per_s")
        outcome = f"{done:,.0f} img/s aggregate" if done else f"failed: {record['error']}"
        log(f"packing: {n} trial(s): {outcome}")
    return records


def main(argv: list[str] | None = None) -> None:
    p = _parser()
    args = p.parse_args(argv)
    counts = _counts(p, args)
    launcher = args.launcher
    if launcher == "auto":
        launcher = "ray" if importlib.util.find_spec("ray") else "processes"
    load_before = loadavg()
    records = measure_counts(args, counts, launcher)
    speedups = {r["trials"]: r.get("speedup_vs_1") for r in records}
    summary: dict[str, Any] = {
        "benchmark": "packing",
        "phase": "summary",
        "device": args.device,
        "launcher": launcher,
        "batch_size": args.batch_size,
        "tasks": args.tasks.split(","),
        "scheme": args.scheme,
        "compile": args.compile,
        "seconds": args.seconds,
        "speedup_vs_1": speedups,
        "loadavg": [load_before, loadavg()],
    }
    if args.device == "cuda":
        summary["targets"] = {"speedup_at_4": TARGET_SPEEDUP_AT_4, "memory_within_share": True}
        summary["ok"] = (speedups.get(4) or 0) >= TARGET_SPEEDUP_AT_4 and all(
            r.get("memory_ok", False) for r in records
        )
    emit(summary)


if __name__ == "__main__":
    main()

"""Study efficiency: how much of the CPUs' wall time a quick study spends inside trials' epochs.

    python -m benchmarks.study [--preset standard|small|fixed] [--num-samples N] [--max-epochs E]
        [--limit-train L] [--cpus 2] [--before DIR | --s3] [--rounds R] [--keep] [--storage DIR]

Runs `python -m study.run --quick --space multi --scheduler fifo --confirm-seeds 0` with a
preset's size (`standard`: 8 trials x 3 epochs x 2000 images per task; `small`: 6 x 3 x 1500,
where the fixed costs show; both with `--limit-val 500`; `fixed`: 2 x 1 x 64, the fixed costs
alone; the flags override it; the search stage alone: confirmation runs are trials of the same
kind) as a subprocess and times it; then reads
every `<tmp>/bench/multi/trial_*/result.json` (one JSON line per epoch) and sums
`time_this_iter_s`: the trials' own training time. Prints one JSON line per run with
`efficiency = trial_train_s_sum / cpus / wall_s` (target >= 0.8; cpus = the machine's cores, or
`--cpus`, which the study then gets as its `--num-cpus`; each trial takes 1 of them) and a
breakdown of where the rest of the wall time went, taken from the timestamps of the runner's
output lines and of the trials' files.

`--s3` runs the same study alternately with its storage in a local folder and in S3 (moto's
server on 127.0.0.1, started here as the tests start it: `tests/services.s3_server`; the driver's
cache under the run's folder), `--rounds` times each, and ends with a summary line whose
`s3_overhead` is the median S3 wall time over the median local one, minus 1 (goal: at most
`S3_GOAL`, 10 %). The S3 run's trial results are read from the store (synced down after it ends).
Each S3 record has `store_cpu_s`, the server's own CPU time: on this host it shares the cores with
the study, which a real store on other machines does not; `--cpus 1` on 2 cores gives it one.

`--before DIR` runs the same study from another checkout (e.g. a worktree of main) alternately
with this one, `--rounds` times each, and ends with a summary line: per checkout, every run's
efficiency, wall time and load, and their medians over all runs and over the clean ones (1-minute
load below `CLEAN_LOAD` as the run began). On a shared machine only the clean runs mean much:
other work slows the trials' epochs, which makes `efficiency` look better, not worse.

- `tuner_started_s`: launch to the runner's first status table: interpreter and torch import,
  data preparation, Ray start.
- `actor_first_trial_start_s`: launch to each actor's first trial start (trials reuse actors,
  one process per concurrent slot): the above plus the actor's process start and imports.
- `gaps_between_trials_s`: from a trial's last report to the next trial's start on that actor.
- `idle_slot_s`: the slot-seconds (slots = cpus, one per trial) not spent in epochs, split into
  `startup`, `between_trials`, `end_imbalance` (slots idle while the last trials finish),
  `tail` (last report to exit: summaries, Ray shutdown, the interpreter's exit) and `other`
  (rounding). `summary_printed_s` and `exit_after_summary_s` split the tail at the summary's
  last line.

A trial's times come from its `result.json` (`timestamp` is whole seconds: +-0.5 s); its first
epoch's `time_this_iter_s` includes the trial's own set-up (model, optimizer, data to device).

Ray gets a private `RAY_TMPDIR`: without it, `ray.init()` joins whatever cluster the last
`ray start` on this machine left in `/tmp/ray/ray_current_cluster` (another user's, or a test's)
instead of starting its own. `loadavg` (1-minute load before and after) tells whether other work
shared the CPUs during the run; the figure means little when it is well above 0.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import emit, loadavg, log, median, rotated
from names import MULTI_SPACE
from tests.services import environ, s3_server

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.8
S3_GOAL = 0.10  # a study in S3 may take at most this much longer than the same one on disk
CLEAN_LOAD = 1.0  # a run is clean when the 1-minute load was below this as it began
NAME = "bench"
# the studies measured; the flags override a preset's values. `standard`: the quick preset's
# data with trials long enough that Ray's fixed start-up stays small (the README's first figures
# were measured on it). `small`: a study short enough that the fixed costs (Ray's start-up, the
# trial processes' imports, data preparation, shutdown, the last trial's tail) show. `fixed`:
# those costs alone (2 trials of 1 epoch on 64 images: its efficiency means nothing; read
# `wall_s` and `actor_first_trial_start_s`), free of the trials' own run-to-run spread.
PRESETS = {
    "standard": {"num_samples": 8, "max_epochs": 3, "limit_train": 2000, "limit_val": 500},
    "small": {"num_samples": 6, "max_epochs": 3, "limit_train": 1500, "limit_val": 500},
    "fixed": {"num_samples": 2, "max_epochs": 1, "limit_train": 64, "limit_val": 32},
}
DEFAULT_PRESET = "standard"
# the search stage alone (the confirmation stage's trials are of the same kind)
STUDY = ["study.run", "--quick", "--space", MULTI_SPACE, "--scheduler", "fifo"]
STUDY += ["--confirm-seeds", "0"]


def study_args(preset: str, overrides: dict[str, int | None]) -> list[str]:
    """The study's command line after `python -m`: the preset's values, then the overrides."""
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return [*STUDY, *(f"--{k.replace('_', '-')}={v}" for k, v in values.items())]


def study_command(args: argparse.Namespace) -> tuple[list[str], int]:
    """The study's command line (see `study_args`) and the cores it may use: `--cpus`, passed
    on as its `--num-cpus` (every trial takes 1), else all of this machine's."""
    overrides = {k: getattr(args, k) for k in ("num_samples", "max_epochs", "limit_train")}
    study = study_args(args.preset, overrides)
    if args.cpus:
        study.append(f"--num-cpus={args.cpus}")
    return study, args.cpus or os.cpu_count() or 1


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: the checkout that runs the study, and where its study lives."""

    code: Path
    s3: bool = False


@dataclass
class Trial:
    """One trial's per-epoch results (JSON lines of its `result.json`)."""

    name: str
    results: list[dict[str, Any]]

    @property
    def train_s(self) -> float:
        return float(sum(r["time_this_iter_s"] for r in self.results))

    @property
    def actor(self) -> int:
        """The process that ran it (trials reuse actors: one process per concurrent slot)."""
        return int(self.results[0]["pid"])

    @property
    def start(self) -> float:
        """Unix time its trainable started: first report minus the first epoch's duration.
        Ray's `timestamp` is whole seconds, so these are +-0.5 s."""
        return self.results[0]["timestamp"] + 0.5 - self.results[0]["time_this_iter_s"]

    @property
    def end(self) -> float:
        return self.results[-1]["timestamp"] + 0.5


def read_trials(experiment: Path) -> list[Trial]:
    trials = []
    for path in sorted(experiment.glob("trial_*/result.json")):
        results = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if results:
            trials.append(Trial(path.parent.name, results))
    return trials


def breakdown(
    trials: list[Trial], launch: float, wall: float, slots: int, lines: list[tuple[float, str]]
) -> dict[str, Any]:
    """Where the slot-seconds that were not spent in trials' epochs went (times from launch)."""
    by_actor: dict[int, list[Trial]] = {}
    for t in sorted(trials, key=lambda t: t.start):
        by_actor.setdefault(t.actor, []).append(t)
    last_end = max(t.end for t in trials) - launch
    first_starts = sorted(ts[0].start - launch for ts in by_actor.values())
    gaps = [b.start - a.end for ts in by_actor.values() for a, b in itertools.pairwise(ts)]
    imbalance = [last_end - (ts[-1].end - launch) for ts in by_actor.values()]
    unused = max(slots - len(by_actor), 0) * wall  # slots that never got an actor
    parts = {
        "startup": sum(first_starts),
        "between_trials": sum(gaps),
        "end_imbalance": sum(imbalance),
        "tail": slots * (wall - last_end),
        "unused_slots": unused,
    }
    lost = slots * wall - sum(t.train_s for t in trials)
    tuner = next((t for t, line in lines if "== Status ==" in line), None)
    summary = next((t for t, line in lines if line.startswith("study directory:")), None)
    return {
        "tuner_started_s": tuner,  # driver imports, data preparation, Ray start
        "summary_printed_s": summary,  # after the last report: Tune's end, the summary
        "exit_after_summary_s": None if summary is None else wall - summary,  # Ray, Python
        "actor_first_trial_start_s": first_starts,  # + actor process start, imports
        "gaps_between_trials_s": gaps,
        "last_trial_end_s": last_end,
        "idle_slot_s": {**parts, "other": lost - sum(parts.values()), "total": lost},
        "trials_per_actor": [len(ts) for ts in by_actor.values()],
        "trial_s": [t.end - t.start for t in trials],
        "epoch_s": [[r["time_this_iter_s"] for r in t.results] for t in trials],
    }


def run_study(
    code: Path, where: list[str], env: dict[str, str], ray_tmp: Path, study: list[str]
) -> tuple[float, float, list[tuple[float, str]], int]:
    """Run the study with the checkout at `code`, its storage flags `where` and extra
    environment `env`: (start unix time, wall seconds, timestamped output lines, exit status)."""
    cmd = [sys.executable, "-m", *study, *where, "--name", NAME]
    path = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **env, "PYTHONPATH": path, "RAY_TMPDIR": str(ray_tmp)}
    env.pop("RAY_ADDRESS", None)
    log("running: " + " ".join(cmd[1:]))
    lines: list[tuple[float, str]] = []
    start_unix, start = time.time(), time.perf_counter()
    with subprocess.Popen(
        cmd,
        cwd=code,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))
        code = proc.wait()
    return start_unix, time.perf_counter() - start, lines, code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.study", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=DEFAULT_PRESET,
        help="the study measured: "
        + "; ".join(f"{name}: {values}" for name, values in PRESETS.items())
        + f" (default: {DEFAULT_PRESET})",
    )
    p.add_argument("--num-samples", type=int, help="trials (default: the preset's)")
    p.add_argument("--max-epochs", type=int, help="epochs per trial (default: the preset's)")
    p.add_argument("--limit-train", type=int, help="training images per task (the preset's)")
    p.add_argument(
        "--cpus",
        type=int,
        help="CPU cores the study may use: its `--num-cpus`, so as many trials at once (default: "
        "all here); with --s3, 1 of 2 leaves the S3 server a core of its own, as a real store has",
    )
    p.add_argument(
        "--before",
        help="another checkout of the project (e.g. a worktree of main): its study runs "
        "alternately with this one's, and a summary line compares the two",
    )
    p.add_argument(
        "--s3",
        action="store_true",
        help="run the study alternately on local storage and in S3 (a local moto server) and "
        f"report the overhead (goal: at most {S3_GOAL * 100:g} percent)",
    )
    p.add_argument("--rounds", type=int, default=1, help="runs of each checkout (default: 1)")
    p.add_argument("--storage", help="folder for the studies (default: a temporary one, removed)")
    p.add_argument("--keep", action="store_true", help="keep the study and Ray's logs; print where")
    return p


def measure(
    arm: Arm, folder: Path, ray_tmp: Path, study: list[str], cpus: float, store: Any = None
) -> dict[str, Any]:
    """Run the study and return the benchmark's record (efficiency and its breakdown). With
    `store` (a tests.services.S3Store) the study lives in its bucket under the run's name."""
    where, env = ["--storage", str(folder)], {}
    if store is not None:
        where = ["--storage", store.uri(folder.name), "--storage-endpoint", store.endpoint]
        where += ["--cache-dir", str(folder / "cache")]
        env = store.env
    load_before, store_cpu = loadavg(), _cpu_s(store)
    start_unix, wall, lines, status = run_study(arm.code, where, env, ray_tmp, study)
    load_after, store_cpu = loadavg(), _cpu_s(store) - store_cpu
    (folder / "study_output.log").write_text("".join(f"{t:8.2f}  {line}\n" for t, line in lines))
    if status != 0:
        log("\n".join(line for _, line in lines[-40:]))
        raise SystemExit(f"study.run exited with status {status}")
    results = folder if store is None else _download(store, folder)
    trials = read_trials(results / NAME / MULTI_SPACE)
    if not trials:
        raise SystemExit(f"no trial results under {results / NAME / MULTI_SPACE}")
    train_s = sum(t.train_s for t in trials)
    slots = max(int(cpus), 1)  # the quick preset gives each trial 1 CPU
    efficiency = train_s / cpus / wall
    return {
        "benchmark": "study",
        "code": str(arm.code),
        "storage": "s3" if store is not None else "local",
        "command": " ".join(["python -m", *study]),
        "wall_s": wall,
        "trials": len(trials),
        "epochs": sum(len(t.results) for t in trials),
        "trial_train_s_sum": train_s,
        "cpus": cpus,
        "efficiency": efficiency,
        "target": TARGET,
        "ok": efficiency >= TARGET,
        "loadavg": [load_before, load_after],
        "clean": load_before < CLEAN_LOAD,
        "breakdown": breakdown(trials, start_unix, wall, slots, lines),
        # the S3 server's own CPU time during the run (0 without one): on this host it shares
        # the cores with the study, which a real object store does not
        "store_cpu_s": store_cpu,
        "store_cpu_share": store_cpu / (os.cpu_count() or 1) / wall,
    }


def _cpu_s(store: Any) -> float:
    """CPU seconds (user + system) the S3 server process has used so far; 0 without one."""
    if store is None:
        return 0.0
    times = psutil.Process(store.proc.pid).cpu_times()
    return times.user + times.system


def _download(store: Any, folder: Path) -> Path:
    """The S3 run's study, synced down (no model weights) into `folder/from-s3`."""
    from studyfiles.storage import resolve, sync_down

    with environ(store.env):
        sync_down(resolve(store.uri(folder.name), store.endpoint), folder / "from-s3")
    return folder / "from-s3"


def compare(records: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The summary of alternated runs: per checkout, each run's efficiency and wall time, their
    medians over every run and over the clean runs (machine quiet when the run began)."""

    def medians(runs: list[dict[str, Any]]) -> dict[str, float | None]:
        return {
            key: median([r[key] for r in runs]) if runs else None
            for key in ("efficiency", "wall_s")
        }

    summary = {
        "phase": "summary",
        "target": TARGET,
        **{
            label: {
                "efficiency": [r["efficiency"] for r in runs],
                "wall_s": [r["wall_s"] for r in runs],
                "loadavg": [r["loadavg"] for r in runs],
                "median": medians(runs),
                "median_clean": medians([r for r in runs if r["clean"]]),
            }
            for label, runs in records.items()
        },
    }
    if {"local", "s3"} <= records.keys():
        local, s3 = (median([r["wall_s"] for r in records[k]]) for k in ("local", "s3"))
        summary["s3_overhead"] = s3 / local - 1  # median wall times of the two storages
        summary["s3_goal"] = S3_GOAL
        summary["s3_ok"] = summary["s3_overhead"] <= S3_GOAL
    return summary


def arms(args: argparse.Namespace) -> dict[str, Arm]:
    """The runs compared, by label: this checkout alone, or against `--before`, or on local
    storage against S3."""
    if args.before and args.s3:
        raise SystemExit("--before and --s3 compare different things: give one of them")
    if args.s3:
        return {"local": Arm(ROOT), "s3": Arm(ROOT, s3=True)}
    if args.before:
        return {"before": Arm(Path(args.before).resolve()), "after": Arm(ROOT)}
    return {"after": Arm(ROOT)}


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    study, cpus = study_command(args)
    runs = arms(args)
    storage = Path(args.storage or tempfile.mkdtemp(prefix="bench-study-")).resolve()
    ray_tmp = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))  # short: Ray's socket paths
    records: dict[str, list[dict[str, Any]]] = {label: [] for label in runs}
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(s3_server()) if args.s3 else None
        try:
            for r in range(args.rounds):
                for label in rotated(list(runs), r):
                    run = f"{label}-{r}"
                    (storage / run).mkdir(parents=True)
                    (ray_tmp / run).mkdir()
                    s3 = store if runs[label].s3 else None
                    record = measure(runs[label], storage / run, ray_tmp / run, study, cpus, s3)
                    records[label].append(record)
                    emit({"preset": args.preset, "run": run, **record})
            if len(runs) > 1 or args.rounds > 1:
                emit({"preset": args.preset, **compare(records)})
        finally:
            if args.keep or args.storage:
                log(f"studies kept: {storage}; Ray's logs: {ray_tmp}")
            else:
                shutil.rmtree(storage, ignore_errors=True)
                shutil.rmtree(ray_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

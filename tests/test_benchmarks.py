"""The benchmark scripts run and print well-formed figures (their numbers are not asserted: they
depend on the machine), packing's and the study benchmark's arithmetic is right on hand-made
results, and the driver's fast exit (a cost the study benchmark measures) loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT, run_module

from benchmarks.common import emit
from benchmarks.packing import summarize
from benchmarks.study import PRESETS, _parser, arms, compare, study_args, study_command

GIB = 2**30


def run_benchmark(module: str, *args: str, timeout: float = 300) -> list[dict]:
    done = run_module(f"benchmarks.{module}", *args, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]  # stdout: JSON lines only


def worker(start: float, end: float, images: int, reserved: int | None = None) -> dict:
    memory = (
        {"peak_rss_bytes": 1}
        if reserved is None
        else {
            "peak_allocated_bytes": reserved // 2,
            "peak_reserved_bytes": reserved,
            "device_total_bytes": 100 * GIB,
        }
    )
    return {"start": start, "end": end, "images": images, "warmup_s": 1.0, "memory": memory}


def test_printed_ratios_agree_with_the_printed_values_they_divide(capsys):
    # millisecond steps on a fast machine: fixed decimals once put a printed ratio 0.14 % away
    # from the ratio of the printed times (CI, stop 28)
    for fast, slow in [(0.0127, 0.025), (3.1e-5, 9.7e-5), (0.5, 1234.5678)]:
        emit({"fast": fast, "slow": slow, "ratio": slow / fast})
        printed = json.loads(capsys.readouterr().out)
        assert printed["ratio"] == pytest.approx(printed["slow"] / printed["fast"], rel=1e-4)
        assert printed["fast"] == pytest.approx(fast, rel=1e-5) and printed["fast"] > 0


def test_packing_aggregate_counts_every_image_over_the_whole_window():
    runs = [worker(10.0, 20.0, 1000), worker(10.5, 22.0, 1500)]
    record = summarize(2, runs, {"cpus": 1.0, "gpus": 0.0})
    assert record["window_s"] == pytest.approx(12.0)  # first start to last end
    assert record["aggregate_img_per_s"] == pytest.approx(2500 / 12.0)
    assert record["per_trial_img_per_s"] == pytest.approx([100.0, 1500 / 11.5])
    assert record["start_skew_s"] == pytest.approx(0.5)
    assert "memory_ok" not in record  # no device memory share on a CPU


@pytest.mark.parametrize("peak_gib,ok", [(24, True), (25, True), (26, False)])
def test_packing_memory_is_judged_against_each_trials_share(peak_gib, ok):
    runs = [worker(0, 1, 10, 20 * GIB), worker(0, 1, 10, peak_gib * GIB)]
    record = summarize(4, runs, {"cpus": 4.0, "gpus": 0.25})
    assert record["memory_share_bytes"] == 25 * GIB
    assert record["memory_ok"] is ok


def test_packing_reports_worker_errors_instead_of_figures():
    record = summarize(
        2, [worker(0, 1, 10), {"error": "OutOfMemoryError: x"}], {"cpus": 1.0, "gpus": 0.5}
    )
    assert record == {"trials": 2, "error": ["OutOfMemoryError: x"]}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["ray", "processes"])
def test_packing_runs_n_trials_at_once(launcher):
    lines = run_benchmark(
        "packing",
        "--device",
        "cpu",
        "--trials",
        "1,2",
        "--seconds",
        "1",
        "--limit-train",
        "32",
        "--batch-size",
        "8",
        "--launcher",
        launcher,
    )
    *per_n, summary = lines
    assert [r["trials"] for r in per_n] == [1, 2]
    for record in per_n:
        assert record["launcher"] == launcher and "error" not in record
        assert len(record["per_trial_img_per_s"]) == record["trials"]
        assert record["images"] > 0 and record["window_s"] >= 1.0
        assert record["cpus_per_trial"] == pytest.approx(os.cpu_count() / record["trials"])
        assert all(m["peak_rss_bytes"] > 0 for m in record["peak_memory"])
    assert summary["phase"] == "summary" and summary["speedup_vs_1"]["1"] == 1.0
    assert summary["speedup_vs_1"]["2"] > 0


@pytest.mark.slow
def test_throughput_prints_train_and_eval_ratios():
    train, evaluation = run_benchmark(
        "throughput", "--batches", "2", "--batch-size", "8", "--val-images", "16", "--rounds", "1"
    )
    assert train["phase"] == "train" and evaluation["phase"] == "eval"
    assert set(train["img_per_s"]) == {"engine", "bare", "baseline"}
    assert train["engine_vs_baseline"] == pytest.approx(
        train["img_per_s"]["engine"] / train["img_per_s"]["baseline"], rel=1e-3
    )
    assert isinstance(train["ok"], bool)


@pytest.mark.slow
def test_pipeline_prints_its_ratio():
    (record,) = run_benchmark("pipeline", "--images", "256", "--batch-size", "64", "--rounds", "1")
    assert record["img_per_s"]["ours"] > 0 and isinstance(record["ok"], bool)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_study_presets_build_the_measured_command(preset):
    args = study_args(preset, {"num_samples": None, "max_epochs": 2})
    values = {**PRESETS[preset], "max_epochs": 2}  # an override wins, None keeps the preset
    for key, value in values.items():
        assert f"--{key.replace('_', '-')}={value}" in args
    assert args[:1] == ["study.run"] and "--confirm-seeds" in args


def test_study_cpus_limit_the_study_itself():
    """`--cpus` is what the study may use (its Ray gets that many), not only the efficiency's
    denominator; without it the study takes the whole machine."""
    from study.run import build_parser

    study, cpus = study_command(_parser().parse_args(["--cpus", "1"]))
    assert cpus == 1 and build_parser().parse_args(study[1:]).num_cpus == 1
    study, cpus = study_command(_parser().parse_args([]))
    assert cpus == os.cpu_count() and build_parser().parse_args(study[1:]).num_cpus is None


def test_study_small_preset_is_the_six_trial_study():
    args = _parser().parse_args(["--preset", "small"])
    assert PRESETS[args.preset]["num_samples"] == 6 and PRESETS[args.preset]["limit_train"] == 1500
    assert _parser().parse_args([]).preset == "standard"  # the README's first figures


def test_study_compare_takes_medians_over_all_and_over_clean_runs():
    def run(efficiency, load):
        return {
            "efficiency": efficiency,
            "wall_s": 100 / efficiency,
            "loadavg": [load, 2.0],
            "clean": load < 1.0,
        }

    records = {"before": [run(0.6, 0.2), run(0.9, 5.0), run(0.7, 0.3)], "after": [run(0.8, 3.0)]}
    summary = compare(records)
    assert summary["before"]["median"]["efficiency"] == pytest.approx(0.7)
    assert summary["before"]["median_clean"]["efficiency"] == pytest.approx(0.65)
    assert summary["after"]["median_clean"] == {"efficiency": None, "wall_s": None}
    assert summary["before"]["loadavg"] == [[0.2, 2.0], [5.0, 2.0], [0.3, 2.0]]


def test_study_s3_compares_median_wall_times_of_the_two_storages():
    def run(wall):
        return {"efficiency": 0.8, "wall_s": wall, "loadavg": [0.1, 0.1], "clean": True}

    summary = compare({"local": [run(100), run(120), run(110)], "s3": [run(130), run(115)]})
    assert summary["s3_overhead"] == pytest.approx(122.5 / 110 - 1)  # medians, not one run
    assert summary["s3_ok"] is (summary["s3_overhead"] <= summary["s3_goal"])
    assert "s3_overhead" not in compare({"before": [run(100)], "after": [run(90)]})
    runs = arms(_parser().parse_args(["--s3"]))
    assert [(label, arm.s3) for label, arm in runs.items()] == [("local", False), ("s3", True)]
    with pytest.raises(SystemExit, match="give one of them"):
        arms(_parser().parse_args(["--s3", "--before", "/elsewhere"]))


def test_exit_now_runs_atexit_handlers_flushes_and_keeps_the_status(tmp_path):
    """The driver skips Python's finalization, not its exit handlers or buffered output."""
    script = (
        "import atexit, sys\n"
        "from study.finish import exit_now\n"
        f"atexit.register(lambda: open({str(tmp_path / 'ran')!r}, 'w').write('yes'))\n"
        "print('buffered', end='')\n"
        "print('err', file=sys.stderr, end='')\n"
        "exit_now(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3
    assert done.stdout == "buffered" and done.stderr == "err"
    assert (tmp_path / "ran").read_text() == "yes"

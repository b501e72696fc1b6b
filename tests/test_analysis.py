"""Tests of `analysis/`: pure functions and hand-built study folders (fast), and one real study
made through `python -m study.run` once per session (slow), checked against its raw files."""

from __future__ import annotations

import fcntl
import html.parser
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import figures as F
from analysis.confusion import best_confusions, normalize_rows
from analysis.report import build_report
from analysis.results import (
    AnalysisError,
    asha_rungs,
    load_study,
    read_result_rows,
    stop_reason,
    study_is_running,
)
from analysis.table import comparison, delta_m, format_change, to_csv, to_markdown, to_text

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.access(p, os.X_OK)),
    shutil.which("chromium"),
)
SEED_SINGLE = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "lr_schedule": "step"}
SEED_MULTI = {**SEED_SINGLE, "scheme": "coin", "coin_p": 0.5}
CLASSES = {"cifar10": 10, "fashionrgb": 5}
VAL_PER_CLASS = {"cifar10": 100, "fashionrgb": 100}


def run_module(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---------------------------------------------------------------------------------------------
# hand-built study folders in the real on-disk format


def confusion_for(task: str, acc: float) -> list[list[int]]:
    """Counts with VAL_PER_CLASS images per class and round(acc * total) on the diagonal."""
    k, per = CLASSES[task], VAL_PER_CLASS[task]
    hits = round(acc * k * per)
    m = np.zeros((k, k), dtype=int)
    for i in range(k):
        h = hits // k + (1 if i < hits % k else 0)
        m[i, i] = h
        m[i, (i + 1) % k] = per - h
    return m.tolist()


def write_trial(
    space_dir: Path,
    trial_id: str,
    params: dict,
    accs: list[dict[str, float]],
    *,
    start: float = 0.0,
    diverged_at: int | None = None,
    errored: bool = False,
    max_epochs: int = 3,
) -> Path:
    """A trial folder: params.json and one result.json line per epoch (`accs[e-1]`)."""
    folder = space_dir / f"trial_{trial_id}"
    folder.mkdir(parents=True)
    tasks = list(accs[0]) if accs else params["tasks"]
    full = {
        **params,
        "tasks": tasks,
        "max_epochs": max_epochs,
        "data": "synthetic",
        "data_root": "/nowhere",
        "batch_size": 32,
        "seed": 0,
    }
    (folder / "params.json").write_text(json.dumps(full))
    lines = []
    for e, acc in enumerate(accs, start=1):
        div = diverged_at is not None and e >= diverged_at
        row = {
            "epoch": e,
            "score": 0.0 if div else float(np.mean(list(acc.values()))),
            "lr": full["lr"],
            "diverged": div,
        }
        for t, a in acc.items():
            row.update(
                {
                    f"acc/{t}": a,
                    f"loss/{t}": 1 - a,
                    f"train_loss/{t}": 1 - a,
                    f"train_acc/{t}": a,
                    f"steps/{t}": 5,
                    f"step_share/{t}": 1 / len(acc),
                    f"confusion/{t}": confusion_for(t, a),
                }
            )
        row.update(
            {
                "timestamp": int(start + 10 * e),
                "time_this_iter_s": 10.0,
                "time_total_s": 10.0 * e,
                "done": e == max_epochs,
                "training_iteration": e,
                "trial_id": trial_id,
                "config": full,
            }
        )
        lines.append(json.dumps(row))
    (folder / "result.json").write_text("".join(line + "\n" for line in lines))
    if errored:
        (folder / "error.txt").write_text("Traceback ...\nRuntimeError: boom\n")
    return folder


def write_settings(
    study: Path,
    space: str = "all",
    scheduler: str = "asha",
    max_epochs: int = 3,
    data: str = "synthetic",
) -> None:
    study.mkdir(parents=True, exist_ok=True)
    (study / "study.json").write_text(
        json.dumps(
            {
                "name": study.name,
                "space": space,
                "storage": "/somewhere/else",
                "num_samples": 6,
                "max_epochs": max_epochs,
                "scheduler": scheduler,
                "seed": 0,
                "data": data,
            }
        )
    )
    (study / "tasks.json").write_text(
        json.dumps(
            {
                t: {
                    "classes": [f"{t}-c{i}" for i in range(k)],
                    "train_size": 500,
                    "val_size": k * VAL_PER_CLASS[t],
                    "synthetic": data == "synthetic",
                }
                for t, k in CLASSES.items()
            }
        )
    )


OTHER = {"optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-4, "lr_schedule": "cosine"}
C, FR = "cifar10", "fashionrgb"


def make_fake_study(
    root: Path, spaces: tuple[str, ...] = ("single-cifar10", "single-fashionrgb", "multi")
) -> Path:
    """Known numbers: best single cifar10 0.887, fashionrgb 0.95; best multi trial (by score)
    'mF' at epoch 2: cifar10 0.806, fashionrgb 0.92 -> "80.6% (↓ 8.1)", "92.0% (↓ 3.0)"."""
    study = root / "fake"
    write_settings(study)
    if "single-cifar10" in spaces:
        d = study / "single-cifar10"
        write_trial(d, "zzseed", {**SEED_SINGLE}, [{C: 0.5}, {C: 0.7}, {C: 0.65}], start=0)
        write_trial(d, "aaother", {**OTHER}, [{C: 0.6}, {C: 0.887}, {C: 0.88}], start=50)
    if "single-fashionrgb" in spaces:
        d = study / "single-fashionrgb"
        write_trial(d, "fseed", {**SEED_SINGLE}, [{FR: 0.8}, {FR: 0.9}, {FR: 0.85}], start=0)
        write_trial(d, "fother", {**OTHER}, [{FR: 0.85}, {FR: 0.93}, {FR: 0.95}], start=50)
    if "multi" in spaces:
        d = study / "multi"
        write_trial(
            d,
            "mE",
            {**SEED_MULTI},
            [{C: 0.5, FR: 0.8}, {C: 0.6, FR: 0.85}, {C: 0.55, FR: 0.88}],
            start=0,
        )
        write_trial(
            d,
            "mF",
            {**OTHER, "scheme": "uniform"},  # per-task maxima at other epochs
            [{C: 0.7, FR: 0.85}, {C: 0.806, FR: 0.92}, {C: 0.85, FR: 0.80}],
            start=10,
        )
        write_trial(
            d,
            "mG",
            {**OTHER, "lr": 0.02, "scheme": "round_robin"},
            [{C: 0.82, FR: 0.70}, {C: 0.83, FR: 0.71}, {C: 0.84, FR: 0.69}],
            start=20,
        )
        write_trial(
            d,
            "mH",
            {**OTHER, "lr": 0.03, "scheme": "joint", "loss_weights": {C: 1.0, FR: 2.0}},
            [{C: 0.5, FR: 0.5}],
            start=30,
        )
        write_trial(
            d,
            "mI",
            {**OTHER, "lr": 0.04, "scheme": "coin", "coin_p": 0.3},
            [{C: 0.6, FR: 0.6}, {C: 0.62, FR: 0.6}],
            start=40,
        )  # interrupted
        write_trial(
            d,
            "mJ",
            {**OTHER, "lr": 0.05, "scheme": "uniform", "tasks": [C, FR]},
            [],
            start=50,
            errored=True,
        )
        write_trial(
            d,
            "mK",
            {**OTHER, "lr": 0.09, "scheme": "uniform"},
            [{C: 0.3, FR: 0.3}, {C: 0.1, FR: 0.2}],
            start=60,
            diverged_at=2,
        )
    return study


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return make_fake_study(tmp_path)


# ---------------------------------------------------------------------------------------------
# pure functions (fast)


def test_format_change_arrows() -> None:
    assert format_change(0.806, 0.887) == "80.6% (↓ 8.1)"
    assert format_change(0.93, 0.90) == "93.0% (↑ 3.0)"
    assert format_change(0.9, 0.9) == "90.0% (= 0.0)"
    assert format_change(0.9, None) == "90.0%"
    assert format_change(0.9, math.nan) == "90.0%"


def test_delta_m() -> None:
    value = delta_m({"a": 0.806, "b": 0.92}, {"a": 0.887, "b": 0.95})
    assert value == pytest.approx(((0.806 - 0.887) / 0.887 + (0.92 - 0.95) / 0.95) / 2 * 100)
    assert delta_m({"a": 0.5}, {"a": 0.5}) == 0.0
    assert math.isnan(delta_m({"a": 0.5, "b": 0.5}, {"a": 0.5}))  # a missing baseline
    assert math.isnan(delta_m({"a": 0.5}, {"a": math.nan}))


def dominated_naive(points: np.ndarray, i: int) -> bool:
    p = points[i]
    return any(
        np.all(q >= p) and np.any(q > p)
        for j, q in enumerate(points)
        if j != i and not np.isnan(q).any()
    )


def test_pareto_front_small_cases() -> None:
    pts = np.array([[0.8, 0.9], [0.9, 0.7], [0.7, 0.7], [0.8, 0.9], [0.9, 0.6], [np.nan, 1.0]])
    assert F.pareto_front(pts).tolist() == [True, True, False, True, False, False]
    assert F.pareto_front(np.empty((0, 2))).tolist() == []
    assert F.pareto_front(np.array([[0.1, 0.1]])).tolist() == [True]
    with pytest.raises(ValueError):
        F.pareto_front(np.array([0.1, 0.2]))


def test_pareto_front_matches_definition_on_random_points() -> None:
    rng = np.random.default_rng(0)
    pts = np.round(rng.random((300, 2)), 2)  # rounding makes ties and duplicates
    mask = F.pareto_front(pts)
    for i in range(len(pts)):
        assert mask[i] == (not dominated_naive(pts, i)), i
    pts3 = rng.random((1100, 3))  # more than one chunk, three objectives
    mask3 = F.pareto_front(pts3)
    for i in rng.choice(len(pts3), 60, replace=False):
        assert mask3[i] == (not dominated_naive(pts3, i))


def test_read_result_rows_tolerates_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text('{"epoch": 1, "score": 0.5}\n{"epoch": 2, "score": 0.6}\n{"epoch": 3, "sc')
    rows, skipped = read_result_rows(path)
    assert [r["epoch"] for r in rows] == [1, 2] and skipped == 1
    assert read_result_rows(tmp_path / "missing.json") == ([], 0)
    (tmp_path / "empty.json").write_text("")
    assert read_result_rows(tmp_path / "empty.json") == ([], 0)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"errored": True, "epochs": 2, "max_epochs": 3, "diverged": False}, "errored"),
        ({"errored": False, "epochs": 3, "max_epochs": 3, "diverged": False}, "finished"),
        ({"errored": False, "epochs": 2, "max_epochs": 3, "diverged": True}, "diverged"),
        ({"errored": False, "epochs": 3, "max_epochs": 3, "diverged": True}, "diverged"),
        ({"errored": False, "epochs": 1, "max_epochs": 3, "diverged": False}, "early-stopped"),
        ({"errored": False, "epochs": 2, "max_epochs": 3, "diverged": False}, "incomplete"),
        ({"errored": False, "epochs": 7, "max_epochs": 30, "diverged": False}, "early-stopped"),
        ({"errored": False, "epochs": 21, "max_epochs": 30, "diverged": False}, "early-stopped"),
        ({"errored": False, "epochs": 8, "max_epochs": 30, "diverged": False}, "incomplete"),
        (
            {
                "errored": False,
                "epochs": 1,
                "max_epochs": 3,
                "diverged": False,
                "scheduler": "fifo",
            },
            "incomplete",
        ),
        (
            {"errored": False, "epochs": 2, "max_epochs": 3, "diverged": False, "running": True},
            "running",
        ),
        ({"errored": False, "epochs": 0, "max_epochs": 3, "diverged": False}, "no-results"),
    ],
)
def test_stop_reason(kw: dict, expected: str) -> None:
    assert stop_reason(**kw) == expected


def test_asha_rungs_follow_the_study_scheduler() -> None:
    assert asha_rungs(30) == [7, 21]  # grace max(1, 30 // 4), reduction factor 3
    assert asha_rungs(2) == [1]
    assert asha_rungs(50) == [12, 36]


def test_normalize_rows() -> None:
    out = normalize_rows(np.array([[3, 1], [0, 0]]))
    assert out.tolist() == [[0.75, 0.25], [0.0, 0.0]]


# ---------------------------------------------------------------------------------------------
# hand-built studies (fast)


def test_load_fake_study(fake: Path) -> None:
    study = load_study(fake)
    t = study.trials.set_index("trial_id")
    assert study.spaces == ["single-cifar10", "single-fashionrgb", "multi"]
    assert study.synthetic
    assert t.loc["mF", "best_score"] == pytest.approx((0.806 + 0.92) / 2)
    assert t.loc["mF", "best_epoch"] == 2
    assert t.loc["mF", "acc_at_best/cifar10"] == 0.806  # at the best-score epoch...
    assert t.loc["mF", "best_acc/cifar10"] == 0.85  # ...not the task's own maximum
    assert t.loc["mF", "last_acc/fashionrgb"] == 0.80
    reasons = t["stop_reason"].to_dict()
    assert reasons["mF"] == "finished" and reasons["mH"] == "early-stopped"
    assert reasons["mI"] == "incomplete" and reasons["mJ"] == "errored"
    assert reasons["mK"] == "diverged"
    assert set(t.index[t["is_seed"]]) == {"zzseed", "fseed", "mE"}  # by params, not by name
    assert t.loc["mH", "loss_weights/fashionrgb"] == 2.0
    assert t.loc["aaother", "scheme"] == "single-task"
    assert len(study.epochs) == 3 + 3 + 3 + 3 + 3 + 3 + 3 + 1 + 2 + 2
    assert study.confusion("multi", "mF", 2, "cifar10").sum() == 1000
    assert any("optuna.db" in n for n in study.notes)


def test_fake_comparison_table(fake: Path) -> None:
    table = comparison(load_study(fake))
    cells = table.cells.set_index("task")
    assert cells.loc["cifar10", "single-task (best)"] == "88.7%"
    assert cells.loc["cifar10", "multi-task (best by score)"] == "80.6% (↓ 8.1)"
    assert cells.loc["fashionrgb", "multi-task (best by score)"] == "92.0% (↓ 3.0)"
    assert cells.loc["cifar10", "seed single-task"] == "70.0%"
    assert cells.loc["cifar10", "seed multi-task"] == "60.0% (↓ 10.0)"
    assert cells.loc["fashionrgb", "seed multi-task"] == "85.0% (↓ 5.0)"
    expected = ((0.806 - 0.887) / 0.887 + (0.92 - 0.95) / 0.95) / 2 * 100
    assert table.delta_m == pytest.approx(expected)
    assert cells.loc["Δm", "multi-task (best by score)"] == f"{expected:+.1f}%" == "-6.1%"
    frame = table.frame.set_index("task")
    assert frame.loc["cifar10", "multi_trial"] == "multi/trial_mF"
    assert frame.loc["cifar10", "change_pts"] == pytest.approx(-8.1)
    text = to_text(table)
    assert "synthetic" in text.splitlines()[0] and "80.6% (↓ 8.1)" in text
    md = to_markdown(table)
    assert "| cifar10 | 88.7% | 80.6% (↓ 8.1) |" in md
    csv = pd.read_csv(__import__("io").StringIO(to_csv(table)))
    assert csv.loc[0, "multi_acc"] == pytest.approx(0.806) and csv.loc[0, "data"] == "synthetic"


def test_fake_pareto_and_schemes(fake: Path) -> None:
    study = load_study(fake)
    data = F.pareto_data(study)
    assert set(data.loc[data["on_front"], "trial_id"]) == {"mF", "mG"}
    assert "mJ" not in set(data["trial_id"])  # errored, no accuracy
    schemes = F.scheme_data(study).set_index(["scheme", "task"])
    assert schemes.loc[("uniform", "cifar10"), "trial_id"] == "mF"
    assert schemes.loc[("uniform", "cifar10"), "acc"] == 0.806
    assert schemes.loc[("single-task", "fashionrgb"), "acc"] == 0.95
    curves = F.learning_curves_data(study, k=2)
    top = curves[curves["task"] == "cifar10"].drop_duplicates("trial_id")["trial_id"].tolist()
    assert top == ["aaother", "mF"]  # 0.887 then 0.85 (mF's own best cifar10 accuracy)
    hist = F.history_data(study)
    assert (hist["source"] == "results").all()
    assert hist.groupby("space")["best_so_far"].apply(lambda s: s.is_monotonic_increasing).all()


def test_fake_confusions(fake: Path) -> None:
    items, notes = best_confusions(load_study(fake))
    assert not notes
    found = {(c.space, c.task): c for c in items}
    assert set(found) == {
        ("single-cifar10", "cifar10"),
        ("single-fashionrgb", "fashionrgb"),
        ("multi", "cifar10"),
        ("multi", "fashionrgb"),
    }
    conf = found[("multi", "cifar10")]
    assert (conf.trial_id, conf.epoch) == ("mF", 2)
    assert conf.total == 1000 and conf.accuracy == pytest.approx(0.806)
    assert conf.classes[0] == "cifar10-c0"
    np.testing.assert_allclose(conf.normalized.sum(axis=1), 1.0)


def test_fake_report_sections(fake: Path, tmp_path: Path) -> None:
    out = build_report(fake, tmp_path / "r" / "report.html")
    page = parse_report(out)
    assert page.sections >= {
        "summary",
        "comparison",
        "learning-curves",
        "history",
        "importances",
        "lr-scheme",
        "schemes",
        "pareto",
        "confusion",
        "trials",
    }
    assert page.figures >= {
        "learning-curves",
        "history",
        "lr-scheme",
        "schemes",
        "pareto",
        "confusion-multi-cifar10",
        "confusion-multi-fashionrgb",
        "trials",
    }
    assert "synthetic" in page.headings[0].lower()
    assert "no optuna.db" in page.text  # importances: says what is missing
    for name in page.figures:
        assert (tmp_path / "r" / "report_figures" / f"{name}.html").is_file()
    assert (tmp_path / "r" / "report_figures" / "plotly.min.js").is_file()


def test_truncated_last_line_in_a_study(fake: Path) -> None:
    path = fake / "multi" / "trial_mF" / "result.json"
    path.write_text(path.read_text() + '{"epoch": 4, "score": 0.99, "acc/cifa')
    study = load_study(fake)
    assert study.trials.set_index("trial_id").loc["mF", "epochs"] == 3
    assert any("skipped 1 unreadable" in n for n in study.notes)


def test_moved_study_loads_the_same(fake: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(fake, moved)
    a, b = load_study(fake), load_study(moved)
    cols = [c for c in a.trials.columns if c != "created"]
    pd.testing.assert_frame_equal(a.trials[cols], b.trials[cols])
    pd.testing.assert_frame_equal(a.epochs, b.epochs)


def test_running_study_is_detected(fake: Path) -> None:
    assert not study_is_running(fake)
    with open(fake / ".lock", "a+") as f:  # what study.runner.locked holds while it runs
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert study_is_running(fake)
        assert load_study(fake).trials.set_index("trial_id").loc["mI", "stop_reason"] == "running"
    assert not study_is_running(fake)


def test_analysis_never_imports_torch_ray_or_trainables(fake: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from analysis.report import build_report\n"
        "from analysis.table import comparison, to_text\n"
        "from analysis.results import load_study\n"
        f"build_report({str(fake)!r}, {str(tmp_path / 'r.html')!r})\n"
        f"to_text(comparison(load_study({str(fake)!r})))\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray', 'trainables'})\n"
        "print(bad)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def load_bench_module():  # benchmarks/ is not an installed package
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "report_bench", ROOT / "benchmarks" / "report_bench.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_with_optuna_db(tmp_path: Path) -> None:
    """The benchmark's generated study (real on-disk format plus an optuna.db): Optuna trials
    link to Ray trials, importances exist, the history comes from the database."""
    folder = load_bench_module().make_study(tmp_path, trials=24, epochs=4)
    study = load_study(folder)
    scored = study.trials.dropna(subset=["best_score"])
    assert scored["optuna_number"].notna().all()
    assert (study.trials.groupby("space")["order"].min() == 0).all()
    seeds = study.trials[study.trials["is_seed"]]
    assert len(seeds) == 3 and (seeds["optuna_number"] == 0).all()
    assert F.history_data(study)["source"].eq("optuna.db").all()
    imp = F.importance_data(study)
    assert set(imp.frame["space"]) == {"single-cifar10", "single-fashionrgb", "multi"}, imp.notes
    assert {"early-stopped", "errored", "finished"} <= set(study.trials["stop_reason"])
    page = parse_report(build_report(folder, tmp_path / "report.html"))
    assert "importances" in page.figures


def test_unreadable_optuna_db_is_a_note(fake: Path, tmp_path: Path) -> None:
    (fake / "optuna.db").write_text("not a database")
    study = load_study(fake)
    assert any("optuna.db unreadable" in n for n in study.notes)
    assert study.optuna_trials.empty
    assert "optuna.db unreadable" in parse_report(build_report(fake, tmp_path / "r.html")).text


def test_cli_outputs(fake: Path, tmp_path: Path) -> None:
    proc = run_module("analysis.table", str(fake))
    assert proc.returncode == 0 and "80.6% (↓ 8.1)" in proc.stdout and "synthetic" in proc.stdout
    proc = run_module(
        "analysis.table", str(fake), "--format", "csv", "--out", str(tmp_path / "t.csv")
    )
    assert proc.returncode == 0
    assert pd.read_csv(tmp_path / "t.csv")["task"].tolist() == ["cifar10", "fashionrgb"]
    proc = run_module("analysis.report", str(fake))  # default: <study dir>/report.html
    assert proc.returncode == 0, proc.stderr
    assert (fake / "report.html").is_file() and (fake / "report_figures").is_dir()


# ---------------------------------------------------------------------------------------------
# bad input (fast)


def test_not_a_study(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="not a study: no study.json"):
        load_study(tmp_path)
    with pytest.raises(AnalysisError, match="no such study directory"):
        load_study(tmp_path / "nope")
    write_settings(tmp_path / "s")
    with pytest.raises(AnalysisError, match="not a study: no experiment folders"):
        load_study(tmp_path / "s")


@pytest.mark.parametrize("module", ["analysis.table", "analysis.report"])
def test_cli_not_a_study_exits_2(tmp_path: Path, module: str) -> None:
    proc = run_module(module, str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_empty_study(tmp_path: Path) -> None:
    study = tmp_path / "empty"
    write_settings(study)
    for i in range(2):
        folder = study / "multi" / f"trial_{i}"
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps({**SEED_MULTI, "tasks": [C, FR]}))
        (folder / "result.json").write_text("")
    with pytest.raises(AnalysisError, match="empty study"):
        load_study(study)
    proc = run_module("analysis.report", str(study))
    assert proc.returncode == 2 and "empty study" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_all_errored_study(tmp_path: Path) -> None:
    study = tmp_path / "errored"
    write_settings(study)
    for space, tasks in (("single-cifar10", [C]), ("multi", [C, FR])):
        for i in range(2):
            write_trial(
                study / space,
                f"{space[:1]}{i}",
                {**OTHER, "tasks": tasks, "scheme": "uniform"},
                [],
                errored=True,
            )
    loaded = load_study(study)
    assert (loaded.trials["stop_reason"] == "errored").all()
    table = comparison(loaded)
    cells = table.cells.set_index("task").to_dict("index")
    assert cells["cifar10"]["multi-task (best by score)"] == "missing (multi: all trials errored)"
    assert cells["cifar10"]["single-task (best)"] == "missing (single-cifar10: all trials errored)"
    assert cells["fashionrgb"]["single-task (best)"] == "missing (no single-fashionrgb run)"
    assert any("all 2 trials errored" in n for n in table.notes)
    assert not any("nan" in n for n in table.notes)
    out = build_report(study, tmp_path / "report.html")
    page = parse_report(out)
    assert "all trials errored" in page.text
    assert "trials" in page.figures  # the trial table still shows the errored trials


def test_only_one_space(fake: Path, tmp_path: Path) -> None:
    study = make_fake_study(tmp_path / "one", spaces=("multi",))
    table = comparison(load_study(study))
    cells = table.cells.set_index("task")
    assert cells.loc["cifar10", "single-task (best)"] == "missing (no single-cifar10 run)"
    assert cells.loc["cifar10", "multi-task (best by score)"] == "80.6%"  # no invented change
    assert cells.loc["Δm", "multi-task (best by score)"].startswith("n/a")
    proc = run_module("analysis.table", str(study))
    assert proc.returncode == 0 and "missing (no single-fashionrgb run)" in proc.stdout
    page = parse_report(build_report(study, tmp_path / "one.html"))
    assert "not in this study: single-cifar10, single-fashionrgb" in page.text
    assert "pareto" in page.figures

    single = make_fake_study(tmp_path / "two", spaces=("single-cifar10",))
    page = parse_report(build_report(single, tmp_path / "two.html"))
    assert "no multi run" in page.text and "pareto" not in page.figures
    assert "missing (no multi run)" in page.text


# ---------------------------------------------------------------------------------------------
# the report's HTML


class ReportParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: set[str] = set()
        self.figures: set[str] = set()
        self.figure_divs: set[str] = set()
        self.headings: list[str] = []
        self.errors: list[str] = []
        self.scripts_with_src: list[str] = []
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self.sections.add(a["id"])
        if tag == "div" and "figure" in (a.get("class") or "").split():
            self.figures.add(a.get("data-figure", ""))
        if tag == "div" and (a.get("id") or "").startswith("fig-"):
            self.figure_divs.add(a["id"][4:])
        if tag == "script" and a.get("src"):
            self.scripts_with_src.append(a["src"])
        if tag in ("h1", "h2"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.headings.append(data)
        self._text.append(data)

    @property
    def text(self) -> str:
        return " ".join(self._text)


def parse_report(path: Path) -> ReportParser:
    page = ReportParser()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.figures == page.figure_divs  # every figure wrapper holds its plotly div
    assert not page.scripts_with_src  # self-contained: nothing loaded from elsewhere
    return page


# ---------------------------------------------------------------------------------------------
# one real study through the real CLI (slow)


@pytest.fixture(scope="session")
def real_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("analysis-study")
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths; private
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MTL_STUDY_OFFLINE": "1",
        "RAY_TMPDIR": ray_tmp,
        "XDG_CACHE_HOME": str(root / "xdg"),
    }
    env.pop("RAY_ADDRESS", None)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "study.run",
                "--quick",
                "--space",
                "all",
                "--storage",
                str(root),
                "--name",
                "s",
                "--num-samples",
                "2",
                "--max-epochs",
                "2",
                "--limit-train",
                "128",
                "--limit-val",
                "64",
                "--scheduler",
                "fifo",
                "--cache-dir",
                str(root / "cache"),
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return root / "s"


def raw_results(study_dir: Path) -> dict[tuple[str, str], dict]:
    """Independent re-read of every trial: params and result rows by (space, trial_id)."""
    out = {}
    for params in study_dir.glob("*/trial_*/params.json"):
        trial = params.parent
        rows = [
            json.loads(line)
            for line in (trial / "result.json").read_text().splitlines()
            if line.strip()
        ]
        out[(trial.parent.name, trial.name.removeprefix("trial_"))] = {
            "params": json.loads(params.read_text()),
            "rows": rows,
            "errored": (trial / "error.txt").exists(),
        }
    return out


def best_row(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: r["score"])  # first of equal maxima: the earliest epoch


@pytest.mark.slow
def test_real_study_loads(real_study: Path) -> None:
    raw = raw_results(real_study)
    study = load_study(real_study)
    assert study.spaces == ["single-cifar10", "single-fashionrgb", "multi"]
    assert len(study.trials) == len(raw) == 6
    for _, t in study.trials.iterrows():
        r = raw[(t["space"], t["trial_id"])]
        assert t["epochs"] == len(r["rows"]) == 2
        best = best_row(r["rows"])
        assert t["best_score"] == best["score"] and t["best_epoch"] == best["epoch"]
        for task in r["params"]["tasks"]:
            assert t[f"acc_at_best/{task}"] == best[f"acc/{task}"]
            assert t[f"best_acc/{task}"] == max(x[f"acc/{task}"] for x in r["rows"])
        assert t["stop_reason"] == "finished"  # fifo, every epoch run
    assert study.epochs["score"].notna().all()
    assert len(study.epochs) == sum(len(r["rows"]) for r in raw.values())


@pytest.mark.slow
def test_real_seed_trial_identified(real_study: Path) -> None:
    import optuna

    study = load_study(real_study)
    raw = raw_results(real_study)
    storage = f"sqlite:///{real_study / 'optuna.db'}"
    for space in study.spaces:
        seeds = study.trials[(study.trials["space"] == space) & study.trials["is_seed"]]
        assert len(seeds) == 1, space
        params = raw[(space, seeds["trial_id"].iloc[0])]["params"]
        point = SEED_MULTI if space == "multi" else SEED_SINGLE
        assert {k: params.get(k) for k in point} == point
        # Optuna agrees: its enqueued (fixed_params) trial is this one
        fixed = [
            t
            for t in optuna.load_study(study_name=space, storage=storage).trials
            if "fixed_params" in t.system_attrs
        ]
        assert len(fixed) == 1 and seeds["optuna_number"].iloc[0] == fixed[0].number


@pytest.mark.slow
def test_real_table_matches_raw_results(real_study: Path) -> None:
    raw = raw_results(real_study)
    table = comparison(load_study(real_study))
    frame = table.frame.set_index("task")

    def row_of(ref: str, epoch: int) -> dict:
        space, trial = ref.split("/trial_")
        return next(r for r in raw[(space, trial)]["rows"] if r["epoch"] == epoch)

    multi_rows = [r for (s, _), v in raw.items() if s == "multi" for r in v["rows"]]
    singles = {}
    for task in ("cifar10", "fashionrgb"):
        f = frame.loc[task]
        space_rows = [r for (s, _), v in raw.items() if s == f"single-{task}" for r in v["rows"]]
        chosen = row_of(f["single_trial"], f["single_epoch"])
        assert chosen["score"] == max(r["score"] for r in space_rows)
        assert f["single_acc"] == chosen[f"acc/{task}"]
        singles[task] = f["single_acc"]
        # multi: one trial, one epoch (the best by score) for every task
        assert frame["multi_trial"].nunique() == 1 and frame["multi_epoch"].nunique() == 1
        m = row_of(f["multi_trial"], f["multi_epoch"])
        assert m["score"] == max(r["score"] for r in multi_rows)
        assert f["multi_acc"] == m[f"acc/{task}"]
        assert f["change_pts"] == pytest.approx((m[f"acc/{task}"] - chosen[f"acc/{task}"]) * 100)
        # seed: the seed trial at its own best-score epoch
        for key in ("seed_single", "seed_multi"):
            space, trial = f[f"{key}_trial"].split("/trial_")
            p = raw[(space, trial)]["params"]
            assert p["optimizer"] == "adam" and p["lr"] == 1e-3 and p["lr_schedule"] == "step"
            b = best_row(raw[(space, trial)]["rows"])
            assert f[f"{key}_epoch"] == b["epoch"] and f[f"{key}_acc"] == b[f"acc/{task}"]
    multi = {t: frame.loc[t, "multi_acc"] for t in ("cifar10", "fashionrgb")}
    expected = np.mean([(multi[t] - singles[t]) / singles[t] for t in multi]) * 100
    assert table.delta_m == pytest.approx(expected)
    assert "synthetic" in table.title
    proc = run_module("analysis.table", str(real_study), "--format", "markdown")
    assert proc.returncode == 0 and "| cifar10 |" in proc.stdout and "synthetic" in proc.stdout


@pytest.mark.slow
def test_real_confusions_match_raw(real_study: Path) -> None:
    raw = raw_results(real_study)
    tasks = json.loads((real_study / "tasks.json").read_text())
    items, notes = best_confusions(load_study(real_study))
    assert not notes and len(items) == 4
    for conf in items:
        assert conf.total == tasks[conf.task]["val_size"]
        row = next(r for r in raw[(conf.space, conf.trial_id)]["rows"] if r["epoch"] == conf.epoch)
        assert row["score"] == best_row(raw[(conf.space, conf.trial_id)]["rows"])["score"]
        assert conf.counts.tolist() == row[f"confusion/{conf.task}"]
        assert conf.accuracy == pytest.approx(row[f"acc/{conf.task}"])
        assert list(conf.classes) == tasks[conf.task]["classes"]


@pytest.mark.slow
def test_real_pareto_membership(real_study: Path) -> None:
    raw = raw_results(real_study)
    data = F.pareto_data(load_study(real_study))
    assert len(data) == 2
    pts = []
    for _, r in data.iterrows():
        best = best_row(raw[("multi", r["trial_id"])]["rows"])
        assert (r["acc/cifar10"], r["acc/fashionrgb"]) == (
            best["acc/cifar10"],
            best["acc/fashionrgb"],
        )
        pts.append([best["acc/cifar10"], best["acc/fashionrgb"]])
    pts = np.array(pts)
    for i, on in enumerate(data["on_front"]):
        assert on == (not dominated_naive(pts, i))


@pytest.fixture(scope="session")
def real_report(real_study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    proc = run_module("analysis.report", str(real_study), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


EXPECTED_FIGURES = {
    "learning-curves",
    "history",
    "lr-scheme",
    "schemes",
    "pareto",
    "trials",
    "confusion-single-cifar10-cifar10",
    "confusion-single-fashionrgb-fashionrgb",
    "confusion-multi-cifar10",
    "confusion-multi-fashionrgb",
}


@pytest.mark.slow
def test_real_report_html(real_report: Path) -> None:
    from plotly.offline import get_plotlyjs

    page = parse_report(real_report)
    assert page.figures >= EXPECTED_FIGURES
    assert "importances" in page.sections and "not enough trials" in page.text
    assert "SYNTHETIC" in page.headings[0] and "synthetic" in page.text.lower()
    text = real_report.read_text(encoding="utf-8")
    assert text.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined exactly once
    figures = real_report.parent / "report_figures"
    assert {p.stem for p in figures.glob("*.html")} == page.figures


CHECK_HEAD = """<script>window.__errors=[];
window.addEventListener('error',function(e){window.__errors.push(String(e.message||e))});
window.addEventListener('unhandledrejection',function(e){window.__errors.push(String(e.reason))});
</script>"""
CHECK_TAIL = """<script>window.addEventListener('load',function(){setTimeout(function(){
var out={errors:window.__errors,plotly:typeof Plotly,figures:{}};
document.querySelectorAll('div.figure').forEach(function(d){
 out.figures[d.getAttribute('data-figure')]=d.querySelectorAll('.plotly .main-svg').length;});
var pre=document.createElement('pre');pre.id='analysis-check';
pre.textContent=JSON.stringify(out);document.body.appendChild(pre);},1500);});</script>"""


@pytest.mark.slow
def test_real_report_draws_in_a_browser(real_report: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium binary (/usr/bin/chromium); apt-get install chromium")
    page = real_report.read_text(encoding="utf-8")
    checked = tmp_path / "checked.html"
    checked.write_text(
        page.replace("<head>", "<head>" + CHECK_HEAD, 1).replace(
            "</body>", CHECK_TAIL + "</body>", 1
        ),
        encoding="utf-8",
    )
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            checked.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    start = proc.stdout.find('<pre id="analysis-check">')
    assert start >= 0, f"check did not run: rc={proc.returncode} {proc.stderr[-2000:]}"
    body = proc.stdout[start + len('<pre id="analysis-check">') :]
    result = json.loads(html.unescape(body[: body.index("</pre>")]))
    assert result["errors"] == [] and result["plotly"] == "object", result
    assert set(result["figures"]) >= EXPECTED_FIGURES
    assert all(n >= 1 for n in result["figures"].values()), result["figures"]

"""Tests of loading a study (`analysis.results`), the trial-status rules (`analysis.status`) and
the Optuna link (`analysis.optuna_link`): hand-made study folders (fast) and one real study
through the real CLI (slow), checked against the raw files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fake_study import (
    ALL_SPACES,
    FR,
    OTHER,
    C,
    best_row,
    make_bench_study,
    make_confirmed_study,
    make_fake_study,
    planned_runs,
    raw_results,
    raw_runs,
    write_optuna_db,
    write_run,
    write_settings,
    write_trial,
)
from helpers import ROOT, cli_env, run_module
from real_study import REAL_TASKS

from analysis.results import load_study, read_result_rows
from analysis.status import stop_reason, study_is_running
from errors import AnalysisError
from names import (
    BASELINE_MULTI,
    LOCK_FILE,
    MULTI_SPACE,
    TEST,
    TEST_SCORE,
    asha_rungs,
    baseline,
    confirm_experiment,
    eval_metric,
    single_space,
    task_name,
)
from studyfiles.lock import StudyLock, owner_record
from studyfiles.storage import resolve

pytest_plugins = ["real_study"]


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return make_fake_study(tmp_path)


# ---------------------------------------------------------------------------------------------
# pure pieces


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
        ({"errored": True, "epochs": 3, "max_epochs": 3, "diverged": False}, "finished"),  # retried
        ({"errored": True, "epochs": 0, "max_epochs": 3, "diverged": False}, "errored"),
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


# ---------------------------------------------------------------------------------------------
# hand-built studies (fast)


def test_load_fake_study(fake: Path) -> None:
    study = load_study(fake)
    t = study.trials.set_index("trial_id")
    assert study.spaces == list(ALL_SPACES)
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
    # no optuna.db: the baseline is found by its config, not by its name
    assert set(t.index[t["is_baseline"]]) == {"zzbase", "fbase", "mE"}
    assert t.loc["mH", "loss_weights/fashionrgb"] == 2.0
    assert t.loc["aaother", "scheme"] == "single-task"
    assert len(study.epochs) == 3 + 3 + 3 + 3 + 3 + 3 + 3 + 1 + 2 + 2
    assert study.confusion("multi", "mF", 2, "cifar10").sum() == 1000
    assert any("optuna.db" in n for n in study.notes)


def test_spaces_follow_the_tasks_without_a_list_of_names(tmp_path: Path) -> None:
    """A space named for a new task loads, ordered by tasks.json, before the multi space."""
    study = make_fake_study(tmp_path, spaces=(MULTI_SPACE, single_space(FR)))
    write_trial(study / single_space("birds"), "b1", {**OTHER}, [{"birds": 0.5}])
    loaded = load_study(study)
    assert loaded.spaces == [single_space(FR), single_space("birds"), MULTI_SPACE]
    assert loaded.space_tasks[single_space("birds")] == ("birds",)


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
    with StudyLock(resolve(str(fake))):  # what study.studydir.locked holds while it runs
        assert study_is_running(fake)
        assert load_study(fake).trials.set_index("trial_id").loc["mI", "stop_reason"] == "running"
    assert not study_is_running(fake)
    dead = {**owner_record(), "pid": 2**22 + 1}  # this host, a process that is gone: a kill -9
    (fake / LOCK_FILE).write_text(json.dumps(dead))
    assert not study_is_running(fake)


def test_analysis_never_imports_torch_ray_or_trainables(tmp_path: Path) -> None:
    """Loading, the table and the report (of a study with confirmation runs) and importing
    `analysis.models` never import torch, Ray or trainables."""
    fake = make_confirmed_study(tmp_path / "c")
    code = (
        "import sys\n"
        "import analysis, analysis.models\n"
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
        env=cli_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# confirmation runs: confirm-<space>/ (fast)


def test_confirmation_runs_load(tmp_path: Path) -> None:
    """Every run of confirm-<space>/ is one row, its numbers those of its raw files; the
    confirmation folders are not taken for search spaces."""
    folder = make_confirmed_study(tmp_path, seeds=3, top_k=2)
    study = load_study(folder)
    assert study.spaces == list(ALL_SPACES)  # no confirm-* space
    assert len(study.trials) == len(raw_results(folder)) == 11
    assert not [c for c in study.epochs if c.startswith(TEST)]
    raw = raw_runs(folder)
    assert len(study.runs) == len(raw) == 3 * 3 * 3
    assert set(study.plan) == set(ALL_SPACES)
    for _, r in study.runs.iterrows():
        run, rows = (
            raw[(r["space"], r["trial_id"])]["run"],
            raw[(r["space"], r["trial_id"])]["rows"],
        )
        source = r["source_trial"] if pd.notna(r["source_trial"]) else None
        assert (r["label"], r["seed"], source) == (run["label"], run["seed"], run["source_trial"])
        assert r["status"] == "finished" and r["epochs"] == 3
        assert r[TEST_SCORE] == rows[-1][TEST_SCORE]
        for task in run["config"]["tasks"]:
            assert r[eval_metric("acc", task, TEST)] == rows[-1][f"test_acc/{task}"]
            steps = sum(row[f"steps/{task}"] for row in rows)
            assert r[f"steps/{task}"] == steps and r[f"images/{task}"] == steps * 32
            counts = study.test_confusion(r["space"], r["trial_id"], task)
            assert counts.tolist() == rows[-1][f"test_confusion/{task}"]
    labels = study.runs[study.runs["space"] == MULTI_SPACE]["label"].tolist()
    assert labels == ["baseline"] * 3 + ["tuned-1"] * 3 + ["tuned-2"] * 3


def test_unfinished_confirmation_runs(tmp_path: Path) -> None:
    """A run counts only when it reached max_epochs with test metrics; else it says why."""
    folder = make_fake_study(tmp_path)
    plan = planned_runs(folder, MULTI_SPACE, seeds=4, top_k=1)
    d = folder / confirm_experiment(MULTI_SPACE)
    acc = {C: 0.7, FR: 0.8}
    write_run(d, "ok", plan[0], acc)
    write_run(d, "err", plan[1], None, epochs=1, errored=True)
    write_run(d, "cut", plan[2], None, epochs=2)
    write_run(d, "nan", plan[3], None, epochs=2, diverged=True)
    status = load_study(folder).runs.set_index("trial_id")["status"].to_dict()
    assert status == {"ok": "finished", "err": "errored", "cut": "incomplete", "nan": "diverged"}
    with StudyLock(resolve(str(folder))):
        assert load_study(folder).runs.set_index("trial_id").loc["cut", "status"] == "running"


def test_study_without_confirmation_loads(fake: Path) -> None:
    """A study written before the confirmation stage: no runs, no plan, no eval_split."""
    study = load_study(fake)
    assert study.runs.empty and study.plan == {} and "eval_split" not in study.epochs
    assert study.test_confusion(MULTI_SPACE, "mF", C) is None


# ---------------------------------------------------------------------------------------------
# optuna.db: the link by ray_trial_id and the baseline it names (fast)


def test_study_with_optuna_db(tmp_path: Path) -> None:
    """The benchmark's generated study (real on-disk format plus an optuna.db): Optuna trials
    link to Ray trials, importances exist, the history comes from the database."""
    from analysis import figures as F

    folder = make_bench_study(tmp_path, trials=24, epochs=4)
    study = load_study(folder)
    scored = study.trials.dropna(subset=["best_score"])
    assert scored["optuna_number"].notna().all()
    assert (study.trials.groupby("space")["order"].min() == 0).all()
    baselines = study.trials[study.trials["is_baseline"]]
    assert len(baselines) == 3 and (baselines["optuna_number"] == 0).all()
    linked = study.optuna_trials.dropna(subset=["trial_id"])
    assert (linked["trial_id"] == linked["ray_trial_id"]).all() and len(linked) == 24
    assert F.history_data(study)["source"].eq("optuna.db").all()
    imp = F.importance_data(study)
    assert set(imp.frame["space"]) == set(ALL_SPACES), imp.notes
    assert {"early-stopped", "errored", "finished"} <= set(study.trials["stop_reason"])


def test_optuna_link_by_ray_trial_id(fake: Path) -> None:
    """The link is the recorded Ray trial id, never a config value: a config equal to another
    trial's, an id without a folder and a folder without an Optuna trial all link rightly."""
    write_optuna_db(
        fake,
        MULTI_SPACE,
        [
            {"params": {"lr": 0.01}, "ray_trial_id": "mF"},  # enqueued: the baseline
            {"params": {"lr": 0.001}, "ray_trial_id": "gone"},  # no such folder
            {"params": {"lr": 0.001}, "ray_trial_id": "mE"},  # lr as the baseline config's
            {"params": {"lr": 0.02}},  # no id recorded
        ],
    )
    study = load_study(fake)
    t = study.trials.set_index("trial_id")
    assert t.loc["mF", "optuna_number"] == 0 and t.loc["mE", "optuna_number"] == 2
    assert t.loc[["mG", "mH", "mI", "mJ", "mK"], "optuna_number"].isna().all()
    ot = study.optuna_trials.set_index("number")
    assert ot["trial_id"].fillna("-").tolist() == ["mF", "-", "mE", "-"]
    assert ot["ray_trial_id"].fillna("-").tolist() == ["mF", "gone", "mE", "-"]
    multi = study.space_trials(MULTI_SPACE)
    assert multi["trial_id"].tolist()[:2] == ["mF", "mE"]  # Optuna's numbers give the order
    # the enqueued trial is the baseline, whatever its config; spaces without one in the
    # database fall back to the baseline configuration
    assert set(t.index[t["is_baseline"]]) == {"mF", "zzbase", "fbase"}


def test_baseline_by_config_when_no_trial_is_linked(fake: Path) -> None:
    """A study whose optuna.db records no Ray trial ids (written before they were recorded)
    still finds its baseline, by the baseline configuration."""
    params = {k: v for k, v in baseline(2).items() if k != "optimizer"}
    write_optuna_db(fake, MULTI_SPACE, [{"params": params}, {"params": {"lr": 0.01}}])
    study = load_study(fake)
    t = study.trials.set_index("trial_id")
    assert t["optuna_number"].isna().all()
    assert study.optuna_trials["trial_id"].isna().all()
    assert set(t.index[t["is_baseline"]]) == {"zzbase", "fbase", "mE"}


def test_unreadable_optuna_db_is_a_note(fake: Path) -> None:
    (fake / "optuna.db").write_text("not a database")
    study = load_study(fake)
    assert any("optuna.db unreadable" in n for n in study.notes)
    assert study.optuna_trials.empty


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


def test_empty_study(tmp_path: Path) -> None:
    study = tmp_path / "empty"
    write_settings(study)
    for i in range(2):
        folder = study / "multi" / f"trial_{i}"
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps({**BASELINE_MULTI, "tasks": [C, FR]}))
        (folder / "result.json").write_text("")
    with pytest.raises(AnalysisError, match="empty study"):
        load_study(study)
    proc = run_module("analysis.report", str(study))
    assert proc.returncode == 2 and "empty study" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------
# one real study through the real CLI (slow)


@pytest.mark.slow
def test_real_study_loads(real_study: Path) -> None:
    raw = raw_results(real_study)
    study = load_study(real_study)
    assert study.spaces == [*(single_space(t) for t in REAL_TASKS), MULTI_SPACE]
    assert len(study.trials) == len(raw) == 4 * 4  # 4 spaces x --num-samples 4
    for _, t in study.trials.iterrows():
        r = raw[(t["space"], t["trial_id"])]
        assert t["epochs"] == len(r["rows"]) == 2
        best = best_row(r["rows"])
        assert t["best_score"] == best["score"] and t["best_epoch"] == best["epoch"]
        for task in map(task_name, r["params"]["tasks"]):
            assert t[f"acc_at_best/{task}"] == best[f"acc/{task}"]
            assert t[f"best_acc/{task}"] == max(x[f"acc/{task}"] for x in r["rows"])
        assert t["stop_reason"] == "finished"  # fifo, every epoch run
    assert study.epochs["score"].notna().all()
    assert len(study.epochs) == sum(len(r["rows"]) for r in raw.values())


@pytest.mark.slow
def test_real_baseline_trial_identified(real_study: Path) -> None:
    import optuna

    study = load_study(real_study)
    raw = raw_results(real_study)
    storage = f"sqlite:///{real_study / 'optuna.db'}"
    for space in study.spaces:
        baselines = study.trials[(study.trials["space"] == space) & study.trials["is_baseline"]]
        assert len(baselines) == 1, space
        trial_id = baselines["trial_id"].iloc[0]
        point = baseline(len(study.space_tasks[space]))
        assert {k: raw[(space, trial_id)]["params"].get(k) for k in point} == point
        # Optuna agrees: its enqueued (fixed_params) trial at the baseline point is this one, by
        # its Ray trial id (multi also enqueues a starting trial per searched method)
        fixed = [
            t
            for t in optuna.load_study(study_name=space, storage=storage).trials
            if {k: t.system_attrs.get("fixed_params", {}).get(k) for k in point} == point
        ]
        assert len(fixed) == 1 and baselines["optuna_number"].iloc[0] == fixed[0].number
        assert fixed[0].user_attrs["ray_trial_id"] == trial_id
    assert study.trials["optuna_number"].notna().all()  # every trial linked


def test_the_searched_keys_are_the_studys_own_record(real_study: Path, fake: Path) -> None:
    """With an optuna.db: every parameter its searcher suggested in the space, nothing else, in
    the order the space suggests them; without one: the config keys that differ between the
    space's trials."""
    import optuna

    study = load_study(real_study)
    storage = f"sqlite:///{real_study / 'optuna.db'}"
    for space in study.spaces:
        trials = optuna.load_study(study_name=space, storage=storage).trials
        suggested = {k for t in trials for k in t.distributions}
        keys = study.searched_keys(space)
        assert len(keys) == len(set(keys)) and set(keys) == suggested, space
        order = list(trials[0].params)  # the first trial's, in the order it was suggested
        assert [k for k in keys if k in order] == order, space
        assert set(keys) <= set(study.trials.columns)
    loaded = load_study(fake)  # no optuna.db
    for space in loaded.spaces:
        part = loaded.trials[loaded.trials["space"] == space]
        for key in loaded.config_keys:
            differs = key in part and part[key].astype(str).nunique() > 1
            assert (key in loaded.searched_keys(space)) == differs, (space, key)
    assert "lr" in loaded.searched_keys(MULTI_SPACE)

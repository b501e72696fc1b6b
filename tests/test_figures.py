"""Tests of the report's figures (`analysis.figures`, `analysis.confusion`): each extract step
checked against the raw data, on hand-made studies (fast) and the real study (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_study import (
    OTHER,
    best_row,
    make_confirmed_study,
    make_fake_study,
    raw_results,
    raw_runs,
    t_interval,
    write_trial,
)

from analysis import figures as F
from analysis.confusion import best_confusions, confirmation_confusions, normalize_rows
from analysis.results import load_study
from names import MULTI_SPACE, TEST, VALIDATION, single_space, task_name

pytest_plugins = ["real_study"]


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return make_fake_study(tmp_path)


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


def test_normalize_rows() -> None:
    out = normalize_rows(np.array([[3, 1], [0, 0]]))
    assert out.tolist() == [[0.75, 0.25], [0.0, 0.0]]


def test_fake_pareto_and_schemes(fake: Path) -> None:
    study = load_study(fake)
    data = F.pareto_data(study)
    assert set(data.loc[data["on_front"], "trial_id"]) == {"mF", "mG"}
    assert "mJ" not in set(data["trial_id"])  # errored, no accuracy
    assert data.set_index("trial_id")["is_baseline"].to_dict()["mE"]
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


def test_schemes_in_the_order_found(fake: Path) -> None:
    """No list of scheme names: the single-task label first, then by name, so a scheme added
    to the registry shows up without a change to the analysis."""
    write_trial(
        fake / MULTI_SPACE,
        "mNew",
        {**OTHER, "scheme": "a_new_scheme"},
        [{"cifar10": 0.4, "fashionrgb": 0.4}],
        start=70,
    )
    study = load_study(fake)
    order = list(dict.fromkeys(F.scheme_data(study)["scheme"]))
    assert order == ["single-task", "a_new_scheme", "coin", "joint", "round_robin", "uniform"]
    figure = F.plot_lr_scheme(F.lr_scheme_data(study))
    names = list(dict.fromkeys(trace.name for trace in figure.data))
    assert names == order
    baseline = F.lr_scheme_data(study).set_index("trial_id")["is_baseline"]
    assert set(baseline.index[baseline]) == {"zzbase", "fbase", "mE"}


def test_baseline_labels(fake: Path) -> None:
    study = load_study(fake)
    labels = set(F.learning_curves_data(study, k=5)["label"])
    assert "multi/mE (baseline)" in labels and not any("seed" in x for x in labels)
    table = F.trial_table_data(study).set_index("trial")
    assert table.loc["mE", "baseline"] == "baseline" and table.loc["mF", "baseline"] == ""
    names = {trace.name for trace in F.plot_pareto(F.pareto_data(study)).data}
    assert "baseline configuration" in names


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


def check_seed_accuracy(study_dir: Path, data) -> None:
    """The per-seed figure's extract against the raw files: every finished baseline / tuned-1
    run's test accuracy, and each row's mean and 95 % t-interval over those seeds."""
    raw = raw_runs(study_dir)
    expected = {}
    for (space, trial_id), r in raw.items():
        run, last = r["run"], r["rows"][-1]
        if (
            run["label"] not in ("baseline", "tuned-1")
            or last["epoch"] != run["config"]["max_epochs"]
        ):
            continue
        fashion = "multi" if space == MULTI_SPACE else "single"
        for task in map(task_name, run["config"]["tasks"]):
            expected[(task, run["label"], fashion, run["seed"])] = (
                last[f"test_acc/{task}"],
                trial_id,
            )
    got = {(r.task, r.label, r.fashion, r.seed): (r.acc, r.trial_id) for r in data.itertuples()}
    assert got == expected
    for _, rows in data.groupby(["task", "label", "fashion"]):
        x = rows["acc"].to_numpy()
        mean, low, high = t_interval(list(x))  # no interval (NaN) when all seeds agree
        assert (rows["mean"] == rows["mean"].iloc[0]).all() and (rows["n"] == len(x)).all()
        assert rows["mean"].iloc[0] == pytest.approx(mean)
        got = (rows["ci_low"].iloc[0], rows["ci_high"].iloc[0])
        assert got == pytest.approx((low, high), nan_ok=True)


def test_seed_accuracy_extract(tmp_path: Path) -> None:
    folder = make_confirmed_study(tmp_path, seeds=3, top_k=2)
    data = F.seed_accuracy_data(load_study(folder))
    check_seed_accuracy(folder, data)
    assert len(data) == 2 * 2 * 3 + 2 * 2 * 3  # (tasks x labels) x (single + multi) x seeds
    assert list(dict.fromkeys(data["row"])) == [
        "baseline single-task",
        "baseline multi-task",
        "tuned single-task",
        "tuned multi-task",
    ]
    names = {trace.name for trace in F.plot_seed_accuracy(data).data}
    assert names == {"one seed", "mean, 95% interval"}


def test_seed_accuracy_without_confirmation_is_empty(fake: Path) -> None:
    assert F.seed_accuracy_data(load_study(fake)).empty


def test_confusions_name_their_split(tmp_path: Path) -> None:
    """Test matrices: each space's tuned-1 run, first seed; validation ones: the best trial."""
    folder = make_confirmed_study(tmp_path, seeds=2)
    study = load_study(folder)
    tests, notes = confirmation_confusions(study)
    assert not notes and len(tests) == 4
    raw = raw_runs(folder)
    for conf in tests:
        run = raw[(conf.space, conf.trial_id)]
        assert (run["run"]["label"], run["run"]["seed"], conf.split) == ("tuned-1", 1, TEST)
        assert conf.counts.tolist() == run["rows"][-1][f"test_confusion/{conf.task}"]
        assert conf.epoch == 3 and "tuned-1 seed 1, last epoch" in conf.title
    found = {(c.space, c.task) for c in tests}
    assert (single_space("cifar10"), "cifar10") in found and (MULTI_SPACE, "fashionrgb") in found
    items, _ = best_confusions(study)
    assert {c.split for c in items} == {VALIDATION}
    assert "best trial at its best epoch" in items[0].title
    assert "test images" in F.plot_confusion(tests[0]).layout.title.text


# ---------------------------------------------------------------------------------------------
# one real study through the real CLI (slow)


@pytest.mark.slow
def test_real_seed_accuracy_matches_raw(real_study: Path) -> None:
    data = F.seed_accuracy_data(load_study(real_study))
    check_seed_accuracy(real_study, data)
    assert len(data) == 3 * 2 * 2 * 2  # tasks x labels x (single + multi) x seeds


@pytest.mark.slow
def test_real_test_confusions_match_raw(real_study: Path) -> None:
    tasks = json.loads((real_study / "tasks.json").read_text())
    raw = raw_runs(real_study)
    items, notes = confirmation_confusions(load_study(real_study))
    assert not notes and len(items) == 6  # 3 single-task + 3 tasks of multi
    for conf in items:
        last = raw[(conf.space, conf.trial_id)]["rows"][-1]
        assert conf.counts.tolist() == last[f"test_confusion/{conf.task}"]
        assert conf.total == tasks[conf.task]["test_size"]
        assert conf.accuracy == pytest.approx(last[f"test_acc/{conf.task}"])


@pytest.mark.slow
def test_real_confusions_match_raw(real_study: Path) -> None:
    raw = raw_results(real_study)
    tasks = json.loads((real_study / "tasks.json").read_text())
    items, notes = best_confusions(load_study(real_study))
    assert not notes and len(items) == 6  # 3 single-task + 3 tasks of multi
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
        best = best_row(raw[(MULTI_SPACE, r["trial_id"])]["rows"])
        assert (r["acc/cifar10"], r["acc/fashionrgb"]) == (
            best["acc/cifar10"],
            best["acc/fashionrgb"],
        )
        pts.append([best["acc/cifar10"], best["acc/fashionrgb"]])
    pts = np.array(pts)
    for i, on in enumerate(data["on_front"]):
        assert on == (not dominated_naive(pts, i))

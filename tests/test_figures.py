"""Tests of the report's figures (`analysis.figures`, `analysis.confusion`): each extract step
checked against the raw data, on hand-made studies (fast) and the real study (slow)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import numpy as np
import pytest
from fake_study import (
    OTHER,
    THREE_TASKS,
    best_row,
    make_bench_study,
    make_confirmed_study,
    make_fake_study,
    make_three_task_study,
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


def test_every_family_module_is_reachable_from_the_package() -> None:
    """One module per figure family: each opens with a line naming its family, and every
    function or class it defines is exported by `analysis.figures`, which the report and the
    tests import."""
    modules = [m.name for m in pkgutil.iter_modules(F.__path__) if not m.name.startswith("_")]
    assert {"curves", "history", "importances", "pareto", "methods", "confusion"} <= set(modules)
    for name in modules:
        module = importlib.import_module(f"{F.__name__}.{name}")
        assert module.__doc__ and module.__doc__.splitlines()[0].strip(), name
        own = [
            key
            for key, obj in vars(module).items()
            if not key.startswith("_")
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__
        ]
        assert own, name
        assert [key for key in own if getattr(F, key, None) is not getattr(module, key)] == []
    assert [key for key in F.__all__ if not hasattr(F, key)] == []


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
    names = list(dict.fromkeys(trace.name for trace in figure.data if trace.name != "baseline"))
    assert names == [x for x in order if x != "single-task"] or names == order
    baseline = F.lr_scheme_data(study).set_index("trial_id")["is_baseline"]
    assert set(baseline.index[baseline]) == {"zzbase", "fbase", "mE"}


def test_baseline_labels(fake: Path) -> None:
    study = load_study(fake)
    labels = set(F.learning_curves_data(study, k=5)["label"])
    assert "multi/mE (baseline)" in labels and not any("seed" in x for x in labels)
    table = F.trial_table_data(study).set_index("trial")
    assert table.loc["mE", "baseline"] == "baseline" and table.loc["mF", "baseline"] == ""
    names = {trace.name for trace in F.plot_pareto(F.pareto_figure_data(study)).data}
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
        clipped = tuple(float(np.clip(b, 0.0, 1.0)) for b in (low, high))  # an accuracy's range
        assert got == pytest.approx(clipped, nan_ok=True)


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
    assert "top trial at its peak epoch" in items[0].title
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
    from real_study import REAL_TASKS

    raw = raw_results(real_study)
    data = F.pareto_data(load_study(real_study))
    assert len(data) == len([s for s, _ in raw if s == MULTI_SPACE]) == 4  # every multi trial
    keys = [f"acc/{task}" for task in REAL_TASKS]
    pts = []
    for _, r in data.iterrows():
        best = best_row(raw[(MULTI_SPACE, r["trial_id"])]["rows"])
        assert [r[k] for k in keys] == [best[k] for k in keys]
        pts.append([best[k] for k in keys])
    pts = np.array(pts)
    for i, on in enumerate(data["on_front"]):
        assert on == (not dominated_naive(pts, i))


# ---------------------------------------------------------------------------------------------
# colours, markers and epochs (issue: the report as a user reads it)


def test_one_colour_per_trial_in_every_figure(fake: Path) -> None:
    study = load_study(fake)
    colors = F.trial_colors(study)
    assert len(colors) == len(raw_results(fake))  # every trial folder has its colour
    curves = F.learning_curves_data(study)
    for frame in (curves, F.lr_scheme_data(study), F.pareto_data(study).assign(space=MULTI_SPACE)):
        keys = [F.trial_key(s, t) for s, t in zip(frame["space"], frame["trial_id"])]
        assert list(frame["color"]) == [colors[k] for k in keys]
    shared = curves.groupby(["space", "trial_id"])["color"].nunique()
    assert (shared == 1).all()  # the same trial, in both tasks' panels, in one colour
    assert curves.groupby(["space", "trial_id"])["task"].nunique().max() == 2


def test_lr_scheme_baseline_is_its_own_marker(fake: Path) -> None:
    study = load_study(fake)
    data = F.lr_scheme_data(study)
    figure = F.plot_lr_scheme(data)
    base = [t for t in figure.data if t.name == "baseline"]
    assert sum(len(t.x) for t in base) == int(data["is_baseline"].sum()) == 3
    assert sum(bool(t.showlegend) for t in base) == 1
    for trace in figure.data:
        if trace.name != "baseline" and trace.customdata is not None:
            assert not any("star" in s for s in trace.marker.symbol)
            assert not set(trace.customdata[:, 0]) & set(data.loc[data["is_baseline"], "trial_id"])


def test_trials_of_different_lengths_are_marked(fake: Path) -> None:
    """`early`: fewer epochs than the trial's max_epochs, from the raw files; the schemes
    figure says each bar's epochs and hatches the early ones."""
    raw = raw_results(fake)
    study = load_study(fake)
    data = F.lr_scheme_data(study)
    for r in data.to_dict("records"):
        trial = raw[(r["space"], r["trial_id"])]
        assert r["epochs"] == len(trial["rows"])
        assert r["early"] == (len(trial["rows"]) < trial["params"]["max_epochs"])
    assert data["early"].any() and not data["early"].all()
    schemes = F.scheme_data(study)
    bars = F.plot_schemes(schemes)
    for trace in bars.data:
        part = schemes[schemes["task"] == trace.name]
        assert [
            f"{e}/{m} ep" in t for t, e, m in zip(trace.text, part["epochs"], part["max_epochs"])
        ]
        assert list(trace.marker.pattern.shape) == ["/" if x else "" for x in part["early"]]


def test_learning_curves_ticks_and_dashes(tmp_path: Path) -> None:
    full = F.plot_learning_curves(F.learning_curves_data(load_study(make_fake_study(tmp_path))))
    assert full.layout.xaxis.dtick == 1 and "dashed: multi-task" in full.layout.title.text
    only = make_fake_study(tmp_path / "m", spaces=(MULTI_SPACE,))
    fig = F.plot_learning_curves(F.learning_curves_data(load_study(only)))
    assert "dashed" not in fig.layout.title.text
    assert all(t.line.dash == "solid" for t in fig.data)


def test_importances_caution_below_the_threshold(tmp_path: Path) -> None:
    import optuna

    folder = make_bench_study(tmp_path, trials=12, epochs=2)  # multi: 5 trials
    data = F.importance_data(load_study(folder))
    storage = f"sqlite:///{folder / 'optuna.db'}"
    for space, n in data.finished.items():
        done = optuna.load_study(study_name=space, storage=storage).get_trials(
            states=(optuna.trial.TrialState.COMPLETE,)
        )
        assert n == len(done)
    assert set(data.cautions) == set(data.frame["space"]) != set()
    assert all(str(F.MIN_IMPORTANCE_TRIALS) in text for text in data.cautions.values())
    many = F.importance_data(load_study(make_bench_study(tmp_path / "b", trials=50, epochs=2)))
    assert many.finished["multi"] >= F.MIN_IMPORTANCE_TRIALS
    assert "multi" in set(many.frame["space"]) and "multi" not in many.cautions


def test_pareto_with_one_point_and_references(tmp_path: Path) -> None:
    folder = make_fake_study(tmp_path)
    for trial in (folder / MULTI_SPACE).iterdir():
        if trial.name != "trial_mF":
            import shutil

            shutil.rmtree(trial)
    raw = raw_results(folder)
    data = F.pareto_figure_data(load_study(folder))
    assert len(data.points) == 1 and data.points["on_front"].all()
    for task, (value, key) in data.references.items():
        space = f"single-{task}"
        best = max(  # the top trial: best score at the last epoch (all ran their 3 epochs)
            (t for (s, t) in raw if s == space),
            key=lambda t: raw[(space, t)]["rows"][-1]["score"],
        )
        assert key == F.trial_key(space, best)
        assert value == best_row(raw[(space, best)]["rows"])[f"acc/{task}"]
    fig = F.plot_pareto(data)
    drawn = [t for t in fig.data if t.mode == "markers" and len(t.x)]
    assert sum(len(t.x) for t in drawn) == 1
    x = data.points["acc/cifar10"].iloc[0]
    assert fig.layout.xaxis.range[0] < x < fig.layout.xaxis.range[1]
    lines = {(s.type, s.x0 if s.x0 == s.x1 else s.y0) for s in fig.layout.shapes}
    assert lines >= {("line", v) for v, _ in data.references.values()} - {None}


def test_pareto_of_three_tasks(tmp_path: Path) -> None:
    folder = make_three_task_study(tmp_path)
    data = F.pareto_figure_data(load_study(folder))
    assert data.tasks == list(THREE_TASKS) and set(data.references) == set(THREE_TASKS)
    cols = [f"acc/{t}" for t in THREE_TASKS]
    raw = raw_results(folder)
    pts = data.points[cols].to_numpy()
    for i, r in enumerate(data.points.to_dict("records")):
        best = best_row(raw[(MULTI_SPACE, r["trial_id"])]["rows"])
        assert [r[c] for c in cols] == [best[c] for c in cols]
        assert r["on_front"] == (not dominated_naive(pts, i))
    assert not data.points.set_index("trial_id")["on_front"]["t3c"]
    fig = F.plot_pareto(data)
    axes = {t.xaxis for t in fig.data}
    assert len(axes) == 3  # one panel per task pair


def test_parallel_data(fake: Path) -> None:
    raw = raw_results(fake)
    data = F.parallel_data(load_study(fake))
    scored = {t for (s, t), r in raw.items() if s == MULTI_SPACE and r["rows"]}
    assert set(data["trial_id"]) == scored
    for r in data.to_dict("records"):
        trial = raw[(MULTI_SPACE, r["trial_id"])]
        assert r["score"] == max(x["score"] for x in trial["rows"])
        assert r["epochs"] == len(trial["rows"]) and r["lr"] == trial["params"]["lr"]
    assert {"optimizer", "lr", "scheme"} <= set(data.columns)
    fig = F.plot_parallel(data)
    assert [d.label for d in fig.data[0].dimensions][-1] == "best score (validation)"

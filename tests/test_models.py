"""Tests of `analysis.models.load_model`: which run and checkpoint a table row's model comes
from (fast, with a stand-in for `trainables.checkpoint.load_model`), and, on the real study, that
the loaded model reproduces its run's recorded test accuracy exactly (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_study import make_confirmed_study, planned_runs, raw_runs, run_trial_id, write_run

from analysis.models import load_model
from analysis.results import load_study
from errors import AnalysisError
from names import MULTI_SPACE, SETTINGS_FILE, TRIAL_PREFIX, confirm_experiment, single_space

pytest_plugins = ["real_study"]


def _checkpoint(trial_dir: Path, name: str, epoch: int) -> Path:
    folder = trial_dir / name
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"epoch": epoch}))
    return folder


@pytest.fixture
def loaded_from(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str]]:
    """Replaces `trainables.checkpoint.load_model` with a stand-in that records its folder."""
    from trainables import checkpoint

    calls: list[tuple[Path, str]] = []

    def fake_load(folder: Path, device: str = "cpu") -> tuple[str, dict, dict]:
        calls.append((Path(folder), device))
        return "model", {}, {}

    monkeypatch.setattr(checkpoint, "load_model", fake_load, raising=False)
    return calls


def test_load_model_takes_the_runs_last_checkpoint(tmp_path: Path, loaded_from: list) -> None:
    folder = make_confirmed_study(tmp_path, seeds=2)
    runs = {(s, r["run"]["label"], r["run"]["seed"]): t for (s, t), r in raw_runs(folder).items()}
    multi = folder / confirm_experiment(MULTI_SPACE)
    trial = multi / f"{TRIAL_PREFIX}{runs[(MULTI_SPACE, 'tuned-1', 1)]}"
    _checkpoint(trial, "checkpoint_000002", 2)
    last = _checkpoint(trial, "checkpoint_000001", 3)  # names do not rank, meta.json does
    assert load_model(folder, MULTI_SPACE) == "model"  # tuned-1, lowest seed
    assert loaded_from[-1] == (last, "cpu")
    base = folder / confirm_experiment(single_space("cifar10"))
    trial = base / f"{TRIAL_PREFIX}{runs[(single_space('cifar10'), 'baseline', 2)]}"
    final = _checkpoint(trial, "checkpoint_000003", 3)
    load_model(folder, single_space("cifar10"), label="baseline", seed=2, device="cuda")
    assert loaded_from[-1] == (final, "cuda")


def test_load_model_says_what_is_missing(tmp_path: Path, loaded_from: list) -> None:
    folder = make_confirmed_study(tmp_path, seeds=2)
    with pytest.raises(AnalysisError, match="no tuned-2 confirmation run of multi"):
        load_model(folder, MULTI_SPACE, label="tuned-2")
    with pytest.raises(AnalysisError, match="seed 7"):
        load_model(folder, MULTI_SPACE, seed=7)
    with pytest.raises(AnalysisError, match="no checkpoint folder"):
        load_model(folder, MULTI_SPACE)
    trial = folder / confirm_experiment(MULTI_SPACE) / f"{TRIAL_PREFIX}tuned-1_s1"
    _checkpoint(trial, "checkpoint_000001", 2)  # not the last epoch (3)
    with pytest.raises(AnalysisError, match="not the run's last epoch 3"):
        load_model(folder, MULTI_SPACE)
    assert run_trial_id({"label": "tuned-1", "seed": 1}) == "tuned-1_s1"
    run = {**planned_runs(folder, MULTI_SPACE, 1, 1)[0], "label": "tuned-3"}
    write_run(folder / confirm_experiment(MULTI_SPACE), "cut", run, None, epochs=1)
    with pytest.raises(AnalysisError, match="has not finished: incomplete"):
        load_model(folder, MULTI_SPACE, label="tuned-3")
    assert not loaded_from


# ---------------------------------------------------------------------------------------------
# the real study (slow)


def study_test_data(study_dir: Path, specs: list[str]) -> dict:
    """Each task's test images and labels, prepared as the study prepared them (its settings
    in study.json), through the confirmation view of `trainables.data.prepare_tasks`."""
    from trainables.data import prepare_tasks

    s = json.loads((study_dir / SETTINGS_FILE).read_text())
    splits = prepare_tasks(
        specs,
        s["data"],
        s["data_root"],
        limit_train=s.get("limit_train"),
        limit_val=s.get("limit_val"),
        limit_test=s.get("limit_test"),
        val_size=s.get("val_size"),
        cache_dir=s.get("cache_dir"),
        seed=s.get("seed", 0),
    )
    return {name: split.confirm() for name, split in splits.items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("space", "label", "seed"),
    [(MULTI_SPACE, "tuned-1", None), (single_space("cifar10"), "baseline", 2)],
)
def test_real_model_reproduces_its_test_accuracy(
    real_study: Path, space: str, label: str, seed: int | None
) -> None:
    import torch

    study = load_study(real_study)
    runs = study.runs[(study.runs["space"] == space) & (study.runs["label"] == label)]
    run = runs.sort_values("seed").iloc[0] if seed is None else runs[runs["seed"] == seed].iloc[0]
    raw = raw_runs(real_study)[(space, run["trial_id"])]
    last = raw["rows"][-1]
    model = load_model(real_study, space, label=label, seed=seed)
    data = study_test_data(real_study, raw["run"]["config"]["tasks"])
    for task in str(run["tasks"]).split(","):
        view = data[task]
        assert view.eval_split == "test"
        with torch.no_grad():
            pred = torch.cat([model(x, task).argmax(1) for x in view.eval_x.split(256)])
        k = view.num_classes
        counts = torch.bincount(view.eval_y * k + pred, minlength=k * k).reshape(k, k)
        assert counts.tolist() == last[f"test_confusion/{task}"]
        assert (pred == view.eval_y).sum().item() / len(pred) == last[f"test_acc/{task}"]

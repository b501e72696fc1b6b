"""Engine: LR schedules, batch streams, training that learns, evaluation on validation or test,
exact resume, checkpoints, and the trained model loaded back from a checkpoint alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from names import (
    EVAL_SPLIT,
    METHOD_KEY,
    METHOD_STEPS,
    METHOD_WEIGHT,
    RUN_KEY,
    SCORE,
    TEST,
    TEST_SCORE,
    VALIDATION,
    eval_metric,
    task_metric,
)
from trainables.checkpoint import CorruptCheckpoint, load_checkpoint, load_model, save_checkpoint
from trainables.config import TrialConfig
from trainables.data import prepare_tasks
from trainables.engine import (
    EVAL_BATCH,
    BatchStream,
    evaluate,
    run_epoch,
    setup,
    train_to_end,
)
from trainables.model import build_model

CPU = torch.device("cpu")
TASKS = ["cifar10", "fashionrgb"]


@pytest.fixture(scope="module")
def splits():
    return prepare_tasks(TASKS, "synthetic", ".", limit_train=48, limit_val=20, limit_test=30)


@pytest.fixture(scope="module")
def tiny(splits):
    """What a search trial sees: train, scored on validation."""
    return {name: task.search() for name, task in splits.items()}


@pytest.fixture(scope="module")
def confirm(splits):
    """What a confirmation run sees: train + validation, scored on test."""
    return {name: task.confirm() for name, task in splits.items()}


def config(**kw) -> TrialConfig:
    base = dict(tasks=["cifar10", "fashionrgb"], max_epochs=2, batch_size=16, scheme="coin")
    return TrialConfig.from_dict({**base, **kw})


def test_batch_stream_covers_each_pass_once_and_resumes():
    stream = BatchStream(10, seed=0, task_index=0)
    drawn = torch.cat([stream.next(4) for _ in range(5)])  # two passes exactly
    assert sorted(drawn[:10].tolist()) == list(range(10))
    assert sorted(drawn[10:].tolist()) == list(range(10))
    state = stream.state_dict()
    after = stream.next(7)
    other = BatchStream(10, seed=0, task_index=0)
    other.load_state_dict(state)
    assert torch.equal(other.next(7), after)


def test_batch_stream_is_the_same_on_every_device():
    device = torch.device("cuda" if torch.cuda.is_available() else "meta")
    here, there = BatchStream(10, 3, 1), BatchStream(10, 3, 1, device)
    for _ in range(4):
        a, b = here.next(7), there.next(7)
        assert b.device.type == device.type and b.shape == a.shape
        if device.type == "cuda":
            assert torch.equal(a, b.cpu())
    assert here.state_dict() == there.state_dict() == {"pass": 2, "pos": 8}


def test_compile_is_in_place_and_keeps_checkpoint_keys(tiny):
    eager = setup(config(), tiny, CPU)
    compiled = setup(config(compile="reduce-overhead"), tiny, CPU)  # compiles lazily: no cost
    assert compiled.model.backbone._compiled_call_impl is not None
    assert eager.model.backbone._compiled_call_impl is None
    assert list(compiled.state_dict()["model"]) == list(eager.state_dict()["model"])
    assert compiled.state_dict()["config"]["compile"] == "reduce-overhead"


def test_run_epoch_reports_per_task_metrics(tiny):
    state = setup(config(), tiny, CPU)
    metrics = run_epoch(state, tiny)
    assert metrics["epoch"] == 1 and not metrics["diverged"]
    assert metrics[EVAL_SPLIT] == VALIDATION
    for task, k in (("cifar10", 10), ("fashionrgb", 5)):
        confusion = np.array(metrics[f"confusion/{task}"])
        assert confusion.shape == (k, k) and confusion.sum() == 20
        assert metrics[f"acc/{task}"] == pytest.approx(np.trace(confusion) / 20)
    shares = metrics["step_share/cifar10"] + metrics["step_share/fashionrgb"]
    assert shares == pytest.approx(1.0)
    assert metrics["score"] == pytest.approx(
        (metrics["acc/cifar10"] + metrics["acc/fashionrgb"]) / 2
    )


def test_run_epoch_names_the_split_it_evaluated(tiny, confirm):
    """Validation rows carry `acc/`, `score`; test rows `test_acc/`, `test_score`; never both.
    Without evaluation the same keys, the evaluation ones (and `eval_split`) None."""
    train_keys = {"epoch", "lr", "diverged", EVAL_SPLIT, METHOD_KEY, METHOD_STEPS}
    weights = {task_metric(METHOD_WEIGHT, t) for t in TASKS}  # None: coin combines no step
    train_keys |= {
        f"{m}/{t}"
        for m in ("train_loss", "train_acc", "steps", "step_share", "single_steps")
        for t in TASKS
    }
    keys = {
        split: {eval_metric(m, t, split) for m in ("acc", "loss", "confusion") for t in TASKS}
        for split in (VALIDATION, TEST)
    }
    state = setup(config(), tiny, CPU)
    row = run_epoch(state, tiny)
    assert set(row) == train_keys | weights | keys[VALIDATION] | {SCORE}
    assert not any(k.startswith("test_") for k in row)
    state = setup(config(), confirm, CPU)
    unscored = run_epoch(state, confirm, evaluate=False)
    assert unscored[EVAL_SPLIT] is None
    assert {k for k, v in unscored.items() if v is not None} == train_keys - {EVAL_SPLIT}
    row = run_epoch(state, confirm)
    assert set(row) == train_keys | weights | keys[TEST] | {TEST_SCORE}
    assert row[EVAL_SPLIT] == TEST
    assert set(unscored) == set(row)  # every row of a trial has the same keys (progress.csv)
    assert not any(k.startswith("acc/") for k in row) and SCORE not in row
    assert np.array(row["test_confusion/cifar10"]).sum() == 30
    assert row[TEST_SCORE] == pytest.approx(
        (row["test_acc/cifar10"] + row["test_acc/fashionrgb"]) / 2
    )
    assert len(confirm["cifar10"].train_y) == 68  # train 48 + validation 20


@pytest.mark.parametrize("stem,side", [("imagenet", 1), ("cifar", 2)])
def test_stem_sets_the_feature_map_size(stem, side):
    model = build_model({"a": 3}, stem=stem).eval()
    assert model.backbone.conv_stem.stride == ((2, 2) if stem == "imagenet" else (1, 1))
    with torch.inference_mode():
        features = model.backbone.forward_features(torch.zeros(2, 3, 32, 32))
        assert features.shape == (2, 1280, side, side)
        assert model(torch.zeros(2, 3, 32, 32), "a").shape == (2, 3)
    assert TrialConfig.from_dict({"stem": stem}).stem == stem


def test_a_model_loaded_from_its_checkpoint_scores_exactly_as_evaluate(tiny, confirm, tmp_path):
    """Config, weights and stats in the checkpoint are all a model needs: the same accuracy,
    loss and logits on the same images, without the training data."""
    state = setup(config(stem="cifar", lr_schedule="constant"), confirm, CPU)
    run_epoch(state, confirm, evaluate=False)
    save_checkpoint(tmp_path, state.state_dict())
    expected = evaluate(state, confirm)
    model = load_model(tmp_path)
    assert not model.training and model.config == state.config
    for name, task in confirm.items():
        assert torch.equal(model.stats[name][0], state.stats[name][0])
        with torch.inference_mode():
            logits = torch.cat([model(x, name) for x in task.eval_x.split(EVAL_BATCH)])
        acc = float((logits.argmax(1) == task.eval_y).sum()) / len(task.eval_y)
        assert acc == expected[name]["acc"]
        loss = float(torch.nn.functional.cross_entropy(logits, task.eval_y, reduction="sum"))
        assert loss / len(task.eval_y) == pytest.approx(expected[name]["loss"], rel=1e-6)
    payload = load_checkpoint(tmp_path)
    del payload["stats"]
    save_checkpoint(tmp_path / "old", payload)
    with pytest.raises(CorruptCheckpoint, match="no normalization stats"):
        load_model(tmp_path / "old")


def test_resume_from_checkpoint_is_exact(tiny, tmp_path):
    torch.set_num_threads(1)
    straight = setup(config(), tiny, CPU)
    run_epoch(straight, tiny)
    run_epoch(straight, tiny)

    first = setup(config(), tiny, CPU)
    run_epoch(first, tiny)
    save_checkpoint(tmp_path, first.state_dict())
    resumed = setup(config(), tiny, CPU)
    resumed.load_state_dict(load_checkpoint(tmp_path))
    assert resumed.epoch == 1
    run_epoch(resumed, tiny)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.sampler.state_dict() == resumed.sampler.state_dict()


def test_checkpoint_corruption_names_the_path(tmp_path):
    save_checkpoint(tmp_path, {"epoch": 3, "w": torch.ones(2)})
    assert load_checkpoint(tmp_path)["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "state.pt"]  # no temp
    data = (tmp_path / "state.pt").read_bytes()
    (tmp_path / "state.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpoint, match=str(tmp_path / "state.pt")):
        load_checkpoint(tmp_path)
    with pytest.raises(CorruptCheckpoint, match="missing"):
        load_checkpoint(tmp_path / "nothing")


def test_checkpoint_refuses_pickled_code(tmp_path):
    torch.save({"f": print}, tmp_path / "state.pt")  # a global, as a malicious file would hold
    with pytest.raises(CorruptCheckpoint):
        load_checkpoint(tmp_path)


def test_divergence_stops_with_the_worst_score(tiny):
    state = setup(config(optimizer="sgd", lr=1e6, scheme="joint"), tiny, CPU)
    metrics = run_epoch(state, tiny)
    assert metrics["diverged"] and metrics["score"] == 0.0


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("scheme", ["joint", "round_robin", "coin"])
def test_every_scheme_trains_with_every_optimizer(tiny, scheme, optimizer):
    """One-task steps leave the other heads without gradients: every optimizer copes."""
    state = setup(config(scheme=scheme, optimizer=optimizer, lr=0.01), tiny, CPU)
    before = [p.clone() for p in state.model.backbone.parameters()][:3]
    run_epoch(state, tiny)
    after = list(state.model.backbone.parameters())[:3]
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    assert evaluate(state, tiny)["cifar10"]["loss"] > 0


@pytest.mark.slow
def test_synthetic_is_learnable_but_not_trivial():
    """Two short epochs: clearly above chance (10%), clearly below 100%."""
    torch.set_num_threads(2)
    splits = prepare_tasks(["cifar10"], "synthetic", ".", limit_train=1500, limit_val=500)
    tasks = {name: task.search() for name, task in splits.items()}
    cfg = TrialConfig.from_dict(
        dict(tasks=["cifar10"], max_epochs=2, batch_size=32, lr=5e-3, lr_schedule="cosine")
    )
    state = setup(cfg, tasks, CPU)
    scores = [run_epoch(state, tasks)["score"] for _ in range(2)]
    assert 0.25 < scores[-1] < 0.9, scores


def test_restore_falls_back_to_the_previous_checkpoint(tiny, tmp_path, capsys):
    from ray.tune import Checkpoint

    from trainables.trainable import restore_newest

    state = setup(config(), tiny, CPU)
    run_epoch(state, tiny)
    save_checkpoint(tmp_path / "checkpoint_000000", state.state_dict())
    run_epoch(state, tiny)
    newest = save_checkpoint(tmp_path / "checkpoint_000001", state.state_dict())
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as by a kill mid-copy
    fresh = setup(config(), tiny, CPU)
    used, _ = restore_newest(fresh, Checkpoint.from_directory(tmp_path / "checkpoint_000001"), CPU)
    assert Path(used.path).name == "checkpoint_000000" and fresh.epoch == 1
    out = capsys.readouterr().out
    assert str(newest) in out and "resumed from the previous checkpoint" in out
    (tmp_path / "checkpoint_000000" / "state.pt").write_bytes(b"")
    with pytest.raises(CorruptCheckpoint):
        restore_newest(fresh, Checkpoint.from_directory(tmp_path / "checkpoint_000001"), CPU)


def test_restore_prefers_a_newer_checkpoint_than_rays_snapshot(tiny, tmp_path, capsys):
    """A driver killed between Ray's snapshots leaves newer checkpoints on disk: use them."""
    from ray.tune import Checkpoint

    from trainables.trainable import restore_newest

    state = setup(config(), tiny, CPU)
    run_epoch(state, tiny)
    save_checkpoint(tmp_path / "checkpoint_000000", state.state_dict())
    run_epoch(state, tiny)
    save_checkpoint(tmp_path / "checkpoint_000001", {**state.state_dict(), "metrics": {"a": 1}})
    fresh = setup(config(), tiny, CPU)
    rays = Checkpoint.from_directory(tmp_path / "checkpoint_000000")  # Ray's, the older
    used, payload = restore_newest(fresh, rays, CPU)
    assert Path(used.path).name == "checkpoint_000001" and fresh.epoch == 2
    assert payload["metrics"]["a"] == 1
    assert "newer than Ray's snapshot" in capsys.readouterr().out


def test_claim_resources_keeps_to_the_cpu_share():
    from trainables.resources import claim_resources, peak_memory

    before = torch.get_num_threads()
    try:
        assert claim_resources(config(cpus=1.7, gpus=0.0)) == CPU
        assert torch.get_num_threads() == 1
        expected = "cuda" if torch.cuda.is_available() else "cpu"
        assert claim_resources(config(cpus=0.25, gpus=0.5)).type == expected
        assert torch.get_num_threads() == 1  # a fraction of a CPU still gets one thread
        assert peak_memory(CPU)["peak_rss_bytes"] > 0
    finally:
        torch.set_num_threads(before)


class Recorder:
    """A `report` callback for `train_to_end`: keeps each epoch's metrics and saves a checkpoint
    as the Ray adapter does (the study's tests run the adapter under real Ray)."""

    def __init__(self, state, folder):
        self.state, self.folder, self.rows, self.checkpoints = state, folder, [], []

    def __call__(self, metrics):
        checkpoint = self.folder / f"checkpoint_{len(self.rows):06d}"
        save_checkpoint(checkpoint, {**self.state.state_dict(), "metrics": metrics})
        self.rows.append(metrics)
        self.checkpoints.append(checkpoint)


def train(cfg: TrialConfig, data: dict, folder) -> Recorder:
    state = setup(cfg, data, CPU)
    recorder = Recorder(state, folder)
    train_to_end(state, data, recorder)
    return recorder


def test_a_confirmation_run_is_scored_on_test_once_at_its_last_epoch(confirm, tmp_path):
    run = train(config(max_epochs=3, lr_schedule="constant"), confirm, tmp_path)
    assert [row[EVAL_SPLIT] for row in run.rows] == [None, None, TEST]
    assert [row[TEST_SCORE] is not None for row in run.rows] == [False, False, True]
    model = load_model(run.checkpoints[-1])
    for name, task in confirm.items():
        with torch.inference_mode():
            correct = (model(task.eval_x, name).argmax(1) == task.eval_y).sum()
        assert float(correct) / len(task.eval_y) == run.rows[-1][f"test_acc/{name}"]


def test_a_confirmation_runs_config_is_its_planned_runs(confirm):
    from trainables.trainable import trial_config

    cfg = config(max_epochs=3, lr_schedule="constant").to_dict()
    run = {"label": "baseline", "space": "multi", "source_trial": None, "seed": 1, "config": cfg}
    assert trial_config({RUN_KEY: run}) == trial_config(cfg) == TrialConfig.from_dict(cfg)


def test_a_search_trial_is_scored_on_validation_every_epoch(tiny, tmp_path):
    run = train(config(max_epochs=2), tiny, tmp_path)
    assert [row[EVAL_SPLIT] for row in run.rows] == [VALIDATION, VALIDATION]
    assert all(SCORE in row and TEST_SCORE not in row for row in run.rows)


def test_a_diverged_confirmation_run_still_ends_with_a_test_score(confirm, tmp_path):
    run = train(config(max_epochs=3, optimizer="sgd", lr=1e6, scheme="joint"), confirm, tmp_path)
    assert len(run.rows) == 1 and run.rows[0]["diverged"]
    assert run.rows[0][EVAL_SPLIT] == TEST and run.rows[0][TEST_SCORE] == 0.0

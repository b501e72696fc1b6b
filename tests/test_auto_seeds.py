"""`--confirm-seeds auto` end to end (slow: real Ray, real Optuna, one small `all` study).

The study is as small as an `all` study gets: two synthetic tasks, one trial of one epoch per
space on 64 training images, FIFO; its confirmation starts at 3 seeds per configuration
(baseline and tuned-1 of each of the three spaces) and adds seeds by `study.rounds`' rule until
every multi - single half-width is at most 1 point or 6 seeds ran. The rule itself (projection,
stops, the plan's growth, a resume mid-way) is unit-tested in test_confirm.
"""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest
from helpers import run_cli

from analysis.results import load_study
from analysis.table import comparison
from names import (
    AUTO_FIRST_SEEDS,
    CONFIRM_ROUNDS_FILE,
    MULTI_SPACE,
    confirm_experiment,
    single_space,
)

pytestmark = pytest.mark.slow

TARGET, MOST = 1.0, 6
TASKS = ("cifar10", "fashionrgb")


@pytest.fixture(scope="module")
def auto_study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("auto-seeds")
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths
    args = ["--quick", "--space", "all", "--storage", str(root), "--name", "a"]
    args += ["--num-samples", "1", "--max-epochs", "1", "--limit-train", "64"]
    args += ["--limit-val", "32", "--limit-test", "64", "--scheduler", "fifo"]
    args += ["--confirm-seeds", "auto", "--target-halfwidth", str(TARGET)]
    args += ["--max-seeds", str(MOST), "--cache-dir", str(root / "cache")]
    env = {"RAY_TMPDIR": ray_tmp}
    try:
        first = run_cli(*args, cwd=root, timeout=1200, env=env)
        again = run_cli("--resume", str(root / "a"), cwd=root, timeout=300, env=env)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    study = root / "a"
    record = json.loads((study / CONFIRM_ROUNDS_FILE).read_text())
    return {"dir": study, "out": first.stdout, "again": again, "record": record}


def test_every_round_follows_the_rule_and_the_last_one_stops(auto_study):
    """Each recorded round: its half-widths (one per task and configuration), and a decision
    that the rule dictates: stop when every half-width is at most the target or the round ran
    the maximum, else more seeds (never past the maximum)."""
    rounds = auto_study["record"]["rounds"]
    assert rounds[0]["seeds"] == AUTO_FIRST_SEEDS
    for i, r in enumerate(rounds):
        widths = {(w["task"], w["label"]): w["halfwidth"] for w in r["halfwidths"]}
        assert set(widths) == {(t, lb) for t in TASKS for lb in ("baseline", "tuned-1")}
        narrow = all(w is not None and w <= TARGET for w in widths.values())
        should_stop = narrow or r["seeds"] >= MOST
        assert r["decision"] == ("stop" if should_stop else "add"), r
        if should_stop:
            assert i == len(rounds) - 1
        else:
            assert r["seeds"] < rounds[i + 1]["seeds"] <= MOST
        line = f"confirmation round {r['round']} ({r['seeds']} seeds per configuration"
        assert line in auto_study["out"]
    last = rounds[-1]
    assert last["seeds"] == MOST or all(w["halfwidth"] <= TARGET for w in last["halfwidths"])


def test_the_recorded_half_widths_are_the_tables(auto_study):
    """The last round's record is what the table shows now (the rule reads the table's own
    intervals), over every round's runs: every configuration of every space has the same
    seeds, all finished, each round's added runs in their own experiment."""
    study = load_study(auto_study["dir"])
    diffs = comparison(study).differences.set_index(["task", "label"])
    for w in auto_study["record"]["rounds"][-1]["halfwidths"]:
        row = diffs.loc[(w["task"], w["label"])]
        assert w["halfwidth"] == pytest.approx((row["ci_high"] - row["ci_low"]) / 2)
    rounds = auto_study["record"]["rounds"]
    seeds = list(range(1, rounds[-1]["seeds"] + 1))  # --seed 0: seeds 1, 2, ...
    runs = study.runs
    assert set(runs["status"]) == {"finished"}
    for (space, label), part in runs.groupby(["space", "label"]):
        assert sorted(part["seed"]) == seeds, (space, label)
    for space in (*map(single_space, TASKS), MULTI_SPACE):
        for k in range(1, len(rounds) + 1):
            assert (auto_study["dir"] / confirm_experiment(space, k) / "tuner.pkl").is_file()
    assert any("seeds chosen by precision" in n for n in study.notes)


def test_a_finished_auto_study_resumes_to_nothing(auto_study):
    again = auto_study["again"]
    assert again.returncode == 0 and "complete: nothing to do" in again.stdout, again.stderr

"""Tests of the comparison table (`analysis.table`): its pure pieces, hand-made studies with
known numbers (fast) and the real study's table re-derived from its raw files (slow)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_study import FR, C, best_row, make_all_errored_study, make_fake_study, raw_results
from helpers import run_module

from analysis.results import load_study
from analysis.table import comparison, delta_m, format_change, to_csv, to_markdown, to_text
from names import MULTI_SPACE, baseline, single_space

pytest_plugins = ["real_study"]


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return make_fake_study(tmp_path)


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


def test_fake_comparison_table(fake: Path) -> None:
    table = comparison(load_study(fake))
    cells = table.cells.set_index("task")
    assert cells.loc["cifar10", "single-task (best)"] == "88.7%"
    assert cells.loc["cifar10", "multi-task (best by score)"] == "80.6% (↓ 8.1)"
    assert cells.loc["fashionrgb", "multi-task (best by score)"] == "92.0% (↓ 3.0)"
    assert cells.loc["cifar10", "baseline single-task"] == "70.0%"
    assert cells.loc["cifar10", "baseline multi-task"] == "60.0% (↓ 10.0)"
    assert cells.loc["fashionrgb", "baseline multi-task"] == "85.0% (↓ 5.0)"
    expected = ((0.806 - 0.887) / 0.887 + (0.92 - 0.95) / 0.95) / 2 * 100
    assert table.delta_m == pytest.approx(expected)
    assert cells.loc["Δm", "multi-task (best by score)"] == f"{expected:+.1f}%" == "-6.1%"
    baseline_dm = ((0.6 - 0.7) / 0.7 + (0.85 - 0.9) / 0.9) / 2 * 100
    assert table.baseline_delta_m == pytest.approx(baseline_dm)
    assert cells.loc["Δm", "baseline multi-task"] == f"{baseline_dm:+.1f}%"
    frame = table.frame.set_index("task")
    assert frame.loc["cifar10", "multi_trial"] == "multi/trial_mF"
    assert frame.loc["cifar10", "change_pts"] == pytest.approx(-8.1)
    assert frame.loc["cifar10", "baseline_single_trial"] == "single-cifar10/trial_zzbase"
    assert frame.loc["cifar10", "baseline_change_pts"] == pytest.approx(-10.0)
    text = to_text(table)
    assert "synthetic" in text.splitlines()[0] and "80.6% (↓ 8.1)" in text
    assert "baseline configuration: multi/trial_mE epoch 2" in text and "seed" not in text
    md = to_markdown(table)
    assert "| cifar10 | 88.7% | 80.6% (↓ 8.1) |" in md
    csv = pd.read_csv(io.StringIO(to_csv(table)))
    assert csv.loc[0, "multi_acc"] == pytest.approx(0.806) and csv.loc[0, "data"] == "synthetic"
    assert csv.loc[0, "baseline_delta_m_pct"] == pytest.approx(baseline_dm, rel=1e-5)
    assert not [c for c in csv.columns if "seed" in c]


def test_all_errored_study(tmp_path: Path) -> None:
    study = make_all_errored_study(tmp_path)
    loaded = load_study(study)
    assert (loaded.trials["stop_reason"] == "errored").all()
    table = comparison(loaded)
    cells = table.cells.set_index("task").to_dict("index")
    assert cells["cifar10"]["multi-task (best by score)"] == "missing (multi: all trials errored)"
    assert cells["cifar10"]["single-task (best)"] == "missing (single-cifar10: all trials errored)"
    assert cells["fashionrgb"]["single-task (best)"] == "missing (no single-fashionrgb run)"
    assert any("all 2 trials errored" in n for n in table.notes)
    assert not any("nan" in n for n in table.notes)


def test_only_one_space(tmp_path: Path) -> None:
    study = make_fake_study(tmp_path / "one", spaces=(MULTI_SPACE,))
    table = comparison(load_study(study))
    cells = table.cells.set_index("task")
    assert cells.loc["cifar10", "single-task (best)"] == "missing (no single-cifar10 run)"
    assert cells.loc["cifar10", "multi-task (best by score)"] == "80.6%"  # no invented change
    assert cells.loc["Δm", "multi-task (best by score)"].startswith("n/a")
    proc = run_module("analysis.table", str(study))
    assert proc.returncode == 0 and "missing (no single-fashionrgb run)" in proc.stdout


# ---------------------------------------------------------------------------------------------
# one real study through the real CLI (slow)


@pytest.mark.slow
def test_real_table_matches_raw_results(real_study: Path) -> None:
    raw = raw_results(real_study)
    table = comparison(load_study(real_study))
    frame = table.frame.set_index("task")

    def row_of(ref: str, epoch: int) -> dict:
        space, trial = ref.split("/trial_")
        return next(r for r in raw[(space, trial)]["rows"] if r["epoch"] == epoch)

    multi_rows = [r for (s, _), v in raw.items() if s == MULTI_SPACE for r in v["rows"]]
    singles = {}
    for task in (C, FR):
        f = frame.loc[task]
        space_rows = [r for (s, _), v in raw.items() if s == single_space(task) for r in v["rows"]]
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
        # baseline: the baseline trial at its own best-score epoch
        for key in ("baseline_single", "baseline_multi"):
            space, trial = f[f"{key}_trial"].split("/trial_")
            p = raw[(space, trial)]["params"]
            assert p["optimizer"] == "adam" and p["lr"] == 1e-3 and p["lr_schedule"] == "step"
            assert {k: p[k] for k in baseline(len(p["tasks"]))} == baseline(len(p["tasks"]))
            b = best_row(raw[(space, trial)]["rows"])
            assert f[f"{key}_epoch"] == b["epoch"] and f[f"{key}_acc"] == b[f"acc/{task}"]
    multi = {t: frame.loc[t, "multi_acc"] for t in (C, FR)}
    expected = np.mean([(multi[t] - singles[t]) / singles[t] for t in multi]) * 100
    assert table.delta_m == pytest.approx(expected)
    assert "synthetic" in table.title
    proc = run_module("analysis.table", str(real_study), "--format", "markdown")
    assert proc.returncode == 0 and "| cifar10 |" in proc.stdout and "synthetic" in proc.stdout

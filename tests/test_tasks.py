"""Task identity: names derived from specs (`=name` overrides), the collision check before Ray,
fingerprints in tasks.json, `--space all` following `--tasks`, and the analysis refusing to
compare single- and multi-task results of two different sources under one name."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import pytest
from fake_study import make_confirmed_study
from fixtures import write_cifar10, write_fashion_json, write_imagefolder
from helpers import run_cli

from analysis.results import load_study
from analysis.table import comparison, to_text
from errors import UserError
from names import (
    ALL_SPACE,
    MULTI_SPACE,
    PARAMS_FILE,
    TASKS_FILE,
    TRIAL_PREFIX,
    single_space,
    split_task_spec,
    task_name,
    valid_task_name,
)
from search_spaces import leaf_spaces, single
from study.checks import check_task_names, settings_from_args
from study.cli import build_parser
from study.settings import StudySettings
from study.studydir import check_recorded_tasks, prepare_data
from trainables.data import load_task, source_fingerprint

FOLDERS = ["birds", "Birds", "My Birds", "2020", "a.b", "x-y", "émigré", "_", "a=b", "FashionRGB"]
PARENTS = ["/data", "/data/other", "./rel", "~/sets", "/a=b"]
NAMES = ["birds", "Birds", "b2", "fashion_folder", "x_1", "cifar10"]


def generated_specs(n: int = 400, seed: int = 0) -> list[str]:
    """Specs of every shape: built-ins, imagefolder paths (odd folder names, `=` in paths,
    trailing slashes), each with or without an explicit `=name`."""
    rng = random.Random(seed)
    specs = ["cifar10", "fashionrgb"]
    while len(specs) < n:
        path = f"{rng.choice(PARENTS)}/{rng.choice(FOLDERS)}{rng.choice(['', '/'])}"
        spec = rng.choice([f"imagefolder:{path}", "cifar10", "fashionrgb"])
        if rng.random() < 0.4:
            spec += f"={rng.choice(NAMES)}"
        specs.append(spec)
    return list(dict.fromkeys(specs))


def test_the_same_spec_always_gives_the_same_valid_name() -> None:
    for spec in generated_specs():
        name = task_name(spec)
        assert name == task_name(spec) == task_name(str(spec))
        assert name.isidentifier() and "/" not in name and name == name.lower(), spec


def test_an_explicit_name_overrides_the_derived_one() -> None:
    for spec in generated_specs():
        dataset = split_task_spec(spec)[0]
        for name in NAMES:
            assert valid_task_name(name)
            assert task_name(f"{dataset}={name}") == name.lower()
            assert split_task_spec(f"{dataset}={name}") == (dataset, name)
    assert task_name("imagefolder:/a=b/x") == "x"  # `=` above the last folder: part of the path
    assert task_name("imagefolder:/data/a=b=birds") == "birds"
    assert not any(valid_task_name(n) for n in ["", "a/b", "2x", "a b", "a.b", "é"])


def test_different_specs_never_share_a_name_silently() -> None:
    """Every pair of different specs has different names, or the check refuses the pair
    with both specs and the `=name` fix in its message."""
    specs = generated_specs(200)
    collisions = 0
    for a, b in itertools.combinations(specs, 2):
        if task_name(a) != task_name(b):
            check_task_names([a, b])  # no complaint
            continue
        collisions += 1
        with pytest.raises(UserError) as err:
            check_task_names([a, b])
        message = str(err.value)
        assert repr(a) in message and repr(b) in message and "=" in message
    assert collisions > 50  # the generator does produce colliding pairs


def test_all_follows_the_tasks(tmp_path: Path) -> None:
    tasks = ("cifar10", "fashionrgb", f"imagefolder:{tmp_path}/x=birds")
    leaves = leaf_spaces(ALL_SPACE, tasks)
    names = ["single-cifar10", "single-fashionrgb", "single-birds", MULTI_SPACE]
    assert [s.name for s in leaves] == names
    assert [s.tasks for s in leaves] == [(t,) for t in tasks] + [tasks]
    assert all(s.define is single.define for s in leaves[:3])
    assert [s.name for s in leaf_spaces(ALL_SPACE)] == [
        "single-cifar10",
        "single-fashionrgb",
        "multi",
    ]
    assert leaf_spaces("single-birds", tasks)[0].tasks == (tasks[2],)


def _settings(*argv: str) -> StudySettings:
    return settings_from_args(build_parser().parse_args([*argv, "--cpus-per-trial", "1"]))


def repro_data(root: Path) -> Path:
    """A data root with CIFAR-10 and FashionRGB, and an ImageFolder copy of a fashion set."""
    write_cifar10(root / "data", per_batch=10, test=20)
    write_fashion_json(root / "data", per_class=4)
    write_imagefolder(root / "mine" / "FashionRGB", per_class=4, splits=("train", "test"))
    return root / "data"


def test_the_repro_two_datasets_named_fashionrgb(tmp_path: Path) -> None:
    """The issue's repro: `fashionrgb` beside an imagefolder named FashionRGB is refused before
    Ray starts, naming both; renamed, every task is prepared and recorded apart."""
    data_root = repro_data(tmp_path)
    folder = f"imagefolder:{tmp_path / 'mine' / 'FashionRGB'}"
    base = ["--space", "all", "--data", "real", "--data-root", str(data_root)]
    base += ["--storage", str(tmp_path / "studies"), "--name", "s"]
    with pytest.raises(UserError) as err:
        _settings(*base, "--tasks", f"cifar10,fashionrgb,{folder}")
    assert "'fashionrgb'" in str(err.value) and repr(folder) in str(err.value)
    assert f"{folder}=fashionrgb_2" in str(err.value)

    settings = _settings(*base, "--tasks", f"cifar10,fashionrgb,{folder}=fashion_folder")
    data = prepare_data(settings)
    assert list(data) == [
        "single-cifar10",
        "single-fashionrgb",
        "single-fashion_folder",
        MULTI_SPACE,
    ]
    tasks = {name: t for space in data.values() for name, t in space.items()}
    assert sorted(tasks) == ["cifar10", "fashion_folder", "fashionrgb"]
    assert tasks["fashion_folder"].spec == f"{folder}=fashion_folder"
    prints = {t.fingerprint for t in tasks.values()}
    assert len(prints) == 3 and all(len(p) == 16 for p in prints)


def test_the_repro_exits_2_from_the_command_line(tmp_path: Path) -> None:
    data_root = repro_data(tmp_path)
    folder = f"imagefolder:{tmp_path / 'mine' / 'FashionRGB'}"
    proc = run_cli(
        *["--space", "all", "--data", "real", "--data-root", str(data_root)],
        *["--tasks", f"cifar10,fashionrgb,{folder}", "--storage", str(tmp_path / "studies")],
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "'fashionrgb'" in proc.stderr and folder in proc.stderr
    assert not (tmp_path / "studies").exists()


def test_fingerprint_is_the_files_identity(tmp_path: Path) -> None:
    one = write_imagefolder(tmp_path / "one" / "birds", classes=("crow", "owl"), per_class=3)
    copy = tmp_path / "two" / "birds"
    shutil.copytree(one, copy)  # another place, new modification times: the same data
    assert source_fingerprint([one]) == source_fingerprint([copy]) == source_fingerprint([one])
    image = next((copy / "train" / "owl").glob("*.png"))
    image.write_bytes(image.read_bytes()[:-1] + b"\x00")  # one byte changed (size kept)
    changed = source_fingerprint([copy])
    (copy / "train" / "owl" / "extra.png").write_bytes(image.read_bytes())
    assert len({source_fingerprint([one]), changed, source_fingerprint([copy])}) == 3


def test_a_named_spec_loads_under_its_name_with_its_fingerprint(tmp_path: Path) -> None:
    folder = write_imagefolder(tmp_path / "x", classes=("a", "b"), per_class=3)
    for _ in range(2):  # decoded, then from the cache: the same identity
        task = load_task(f"imagefolder:{folder}=birds", "real", tmp_path, cache_dir=tmp_path / "c")
        assert task.name == "birds" and task.fingerprint == source_fingerprint([folder])
    a, b, c = (load_task("cifar10", "synthetic", seed=s).fingerprint for s in (0, 0, 1))
    assert a == b != c and a.startswith("synthetic-")


def test_resume_refuses_data_that_changed(tmp_path: Path) -> None:
    data_root = repro_data(tmp_path)
    folder = tmp_path / "mine" / "FashionRGB"
    settings = _settings(
        *["--space", "multi", "--data", "real", "--data-root", str(data_root)],
        *["--tasks", f"cifar10,imagefolder:{folder}", "--storage", str(tmp_path / "s")],
    )
    data = prepare_data(settings)
    settings.study_dir.mkdir(parents=True)
    tasks = {n: t.describe() for n, t in data[MULTI_SPACE].items()}
    (settings.study_dir / TASKS_FILE).write_text(json.dumps(tasks))
    check_recorded_tasks(settings, data)  # unchanged: fine
    next((folder / "train" / "Dress").glob("*.png")).unlink()
    with pytest.raises(UserError, match="fashionrgb.*fingerprint.*two datasets"):
        check_recorded_tasks(settings, prepare_data(settings))


# ---------------------------------------------------------------------------------------------
# the analysis: a row compares single and multi only when both trained the same source


def test_an_old_study_without_sources_still_compares(tmp_path: Path) -> None:
    study = make_confirmed_study(tmp_path)
    assert "spec" not in json.loads((study / TASKS_FILE).read_text())["cifar10"]
    table = comparison(load_study(study))
    assert table.differences["diff_pts"].notna().all()
    assert table.delta_m["delta_m_pct"].notna().all()


def _retask_multi(study: Path, specs: list[str]) -> None:
    """Rewrite the multi space's trial configs to name `specs` (as the repro's study did)."""
    for params in (study / MULTI_SPACE).glob(f"{TRIAL_PREFIX}*/{PARAMS_FILE}"):
        config = json.loads(params.read_text())
        params.write_text(json.dumps({**config, "tasks": specs}))


def test_the_table_refuses_two_sources_under_one_name(tmp_path: Path) -> None:
    """The repro's study, written before this check: single-fashionrgb trained the built-in
    FashionRGB, multi an imagefolder named FashionRGB. Its fashionrgb row is not compared."""
    study = make_confirmed_study(tmp_path)
    _retask_multi(study, ["cifar10", "imagefolder:/data/FashionRGB"])
    table = comparison(load_study(study))
    diffs = table.differences.set_index(["task", "label"])
    assert (
        diffs.loc[("cifar10", "tuned-1"), "diff_pts"]
        == diffs.loc[("cifar10", "tuned-1"), "diff_pts"]
    )
    refused = diffs.loc[("fashionrgb", "tuned-1")]
    assert refused["diff_pts"] != refused["diff_pts"]  # NaN: no number
    assert (
        "not compared" in refused["missing"]
        and "imagefolder:/data/FashionRGB" in refused["missing"]
    )
    assert table.delta_m["missing"].str.contains("not compared").all()
    text = to_text(table)
    assert "not compared" in text and "=<name>" in text
    assert any(
        n.startswith("fashionrgb: its changes compare different data") for n in table.search.notes
    )


def test_the_table_refuses_a_source_tasks_json_does_not_record(tmp_path: Path) -> None:
    study = make_confirmed_study(tmp_path)
    tasks = json.loads((study / TASKS_FILE).read_text())
    tasks["cifar10"].update(spec="imagefolder:/elsewhere/cifar10", fingerprint="0" * 16)
    tasks["fashionrgb"].update(spec="fashionrgb", fingerprint="1" * 16)
    (study / TASKS_FILE).write_text(json.dumps(tasks))
    table = comparison(load_study(study))
    why = table.differences.set_index("task")["missing"]
    assert "records 'imagefolder:/elsewhere/cifar10'" in why["cifar10"].iloc[0]
    assert why["fashionrgb"].isna().all()
    assert any("fashionrgb = fashionrgb (files 1111111111111111)" in n for n in table.notes)


def test_single_space_of_a_user_task(tmp_path: Path) -> None:
    settings = _settings(
        *["--space", "single-birds", "--tasks", f"imagefolder:{tmp_path}/x=birds"],
        *["--storage", str(tmp_path), "--data", "real"],
    )
    assert [s.name for s in leaf_spaces(settings.space, settings.tasks)] == [single_space("birds")]
    with pytest.raises(UserError, match="unknown space 'single-owls'.*single-birds"):
        _settings("--space", "single-owls", "--tasks", f"imagefolder:{tmp_path}/x=birds")
    with pytest.raises(UserError, match="must match"):
        _settings("--space", "all", "--tasks", f"cifar10,imagefolder:{tmp_path}/x=my birds")

"""User errors end before Ray starts: exit 2, one line naming the problem, nothing written."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from fixtures import break_fashionrgb, write_fashion_json
from helpers import run_cli

from names import default_cache_dir
from study.run import main

BAD = [
    (["--space", "mega"], "unknown space 'mega'"),
    (["--scheduler", "pbt"], "unknown scheduler 'pbt'"),
    (["--num-samples", "0"], "--num-samples must be a positive number"),
    (["--max-epochs", "-1"], "--max-epochs must be a positive number"),
    (["--max-concurrent", "0"], "--max-concurrent must be a positive number"),
    (["--limit-train", "0"], "--limit-train must be a positive number"),
    (["--batch-size", "0"], "--batch-size must be a positive number"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial must be a positive number"),
    (["--max-failures", "-1"], "--max-failures must be >= 0"),
    (["--gpus-per-trial", "1.5"], "cannot be scheduled"),
    (["--gpus-per-trial", "-0.25"], "cannot be scheduled"),
    (["--gpus-per-trial", "1"], r"--gpus-per-trial 1 is more than the 0 GPU\(s\) here"),
    (["--data", "imagenet"], "--data must be 'real' or 'synthetic'"),
    (["--tasks", "cifar10"], "--tasks needs at least two"),
    (["--tasks", "cifar10,imagenet"], "unknown task 'imagenet'"),
    (["--data", "real", "--data-root", "{tmp}/nothing"], "data root .*nothing does not exist"),
    (["--data", "real", "--data-root", "{tmp}/data"], "CIFAR-10 not found"),
    (["--resume", "{tmp}/nothing"], "no such study directory"),
    (["--resume", "{tmp}/data"], "not a study"),
    (["--resume", "{tmp}/data", "--compare-methods", "uw"], "--compare-methods cannot change"),
    (["--resume", "{tmp}/data", "--num-samples", "9", "--quick"], "--quick, --num-samples cannot"),
    (["--cpus-per-trial", "99"], r"--cpus-per-trial 99 is more than the \d+ CPU\(s\) here"),
    (["--name", "../escape"], "must be a plain folder name"),
    (["--storage", "s3:///x"], "no bucket"),
    (["--storage", "s3://b/x", "--storage-endpoint", "ftp://h"], "malformed"),
    (["--storage", "{tmp}/studies", "--storage-endpoint", "http://h:1"], "is for object stores"),
    (["--optuna-storage", "not a url"], "not a database URL"),
    (["--optuna-storage", "postgresql+pg8000://u@h/db"], "driver of .* is not installed"),
    (["--compile", "fast"], "unknown --compile 'fast'"),
    (["--stem", "tiny"], "unknown --stem 'tiny'"),
    (["--confirm-seeds", "-1"], "--confirm-seeds must be >= 0"),
    (["--confirm-top", "0"], "--confirm-top must be a positive number"),
    (
        ["--space", "multi", "--confirm-seeds", "auto"],
        "auto stops on the multi - single intervals, so it needs",
    ),
    (["--space", "all", "--confirm-seeds", "auto", "--target-halfwidth", "0"], "positive"),
    (["--space", "all", "--confirm-seeds", "auto", "--max-seeds", "2"], "at least 3"),
    (["--max-seeds", "6"], "--max-seeds applies only with --confirm-seeds auto"),
    (["--val-size", "0"], "--val-size must be a positive number"),
    (["--limit-test", "0"], "--limit-test must be a positive number"),
    (["--val-size", "99999"], "validation"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_user_errors_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    (tmp_path / "data").mkdir()
    write_fashion_json(tmp_path / "data")
    before = sorted(p for p in tmp_path.rglob("*"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--resume" not in argv and "--storage" not in argv:
        argv += ["--quick", "--storage", str(tmp_path / "studies")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(message, err), err
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written, no study dir
    cache = Path(default_cache_dir())  # ours; other programs (chromium) share XDG_CACHE_HOME
    assert not cache.exists() or not any(cache.iterdir())


def test_no_arguments_point_to_the_quick_study_and_the_datasets(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./dataset here
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "--quick" in err and "'Datasets'" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_study_is_never_overwritten(tmp_path, capsys):
    study = tmp_path / "studies" / "mine"
    study.mkdir(parents=True)
    (study / "study.json").write_text(json.dumps({"name": "mine"}))
    code = main(["--quick", "--storage", str(tmp_path / "studies"), "--name", "mine"])
    err = capsys.readouterr().err
    assert code == 2 and "already exists" in err and f"--resume {study}" in err
    assert [p.name for p in study.iterdir()] == ["study.json"]


def test_resume_refuses_a_study_writable_by_others(tmp_path, capsys):
    study = tmp_path / "open"
    study.mkdir()
    (study / "study.json").write_text("{}")
    study.chmod(0o777)
    assert main(["--resume", str(study)]) == 2
    assert "writable by others" in capsys.readouterr().err


def test_resume_refuses_a_study_from_before_the_three_way_split(tmp_path, capsys):
    """Its search was scored on the test split: resuming would mix two protocols in one study."""
    study = tmp_path / "old"
    study.mkdir()
    (study / "study.json").write_text(json.dumps({"name": "old", "space": "multi"}))
    old = {"classes": ["a", "b"], "train_size": 50, "val_size": 10, "synthetic": True}
    (study / "tasks.json").write_text(json.dumps({"cifar10": old, "fashionrgb": old}))
    listing = sorted(study.rglob("*"))
    assert main(["--resume", str(study)]) == 2
    err = capsys.readouterr().err
    assert "earlier version" in err and err.count("\n") == 1
    assert sorted(study.rglob("*")) == listing


def test_list_spaces_and_real_subprocess_error(tmp_path):
    listed = run_cli("--list-spaces", cwd=tmp_path)
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "single-cifar10",
        "single-fashionrgb",
        "multi",
        "all",
    ]
    bad = run_cli("--space", "nope", "--storage", str(tmp_path / "s"), cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: unknown space") and "Traceback" not in bad.stderr
    assert not (tmp_path / "s").exists()


def test_a_cpu_share_no_node_has_ends_at_once(tmp_path):
    """Before Ray starts: exit 2 in seconds, one line, no traceback, nothing written."""
    started = time.time()
    done = run_cli(
        "--quick", "--cpus-per-trial", "99", "--storage", str(tmp_path / "s"), cwd=tmp_path
    )
    assert time.time() - started < 10
    assert done.returncode == 2 and done.stdout == ""
    assert re.fullmatch(
        r"error: --cpus-per-trial 99 is more than the \d+ CPU\(s\) here.*\n", done.stderr
    )
    assert list(tmp_path.iterdir()) == []


FASHION_BREAKAGES = [
    "no val split",
    "not a list of pairs",
    "listed file missing",
    "unknown class",
    "empty class",
    "unreadable image",
    "invalid json",
]


@pytest.mark.parametrize("kind", FASHION_BREAKAGES)
def test_broken_datasets_are_reported_once_up_front(tmp_path, capsys, kind):
    """Every dataset problem of the foundation issue, through the CLI: exit 2, one line naming
    the path, no study directory and nothing in the cache."""
    write_fashion_json(tmp_path / "data")
    break_fashionrgb(kind, tmp_path / "data")
    storage = tmp_path / "studies"
    code = main(
        [
            "--space",
            "single-fashionrgb",
            "--data",
            "real",
            "--data-root",
            str(tmp_path / "data"),
            "--storage",
            str(storage),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(tmp_path / "data") in err, err
    assert not storage.exists()
    cache = Path(default_cache_dir())
    assert not cache.exists() or not any(cache.iterdir())


def test_corrupt_cifar_batch_through_the_cli(tmp_path, capsys):
    from fixtures import write_cifar10

    folder = write_cifar10(tmp_path / "data")
    (folder / "data_batch_2").write_bytes(b"garbage")
    code = main(
        [
            "--space",
            "single-cifar10",
            "--data",
            "real",
            "--data-root",
            str(tmp_path / "data"),
            "--storage",
            str(tmp_path / "studies"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "corrupt CIFAR-10 batch" in err and "data_batch_2" in err
    assert not (tmp_path / "studies").exists()

"""Studies beyond one machine, end to end against real services (tests/services.py): object
storage on moto's S3 server, Optuna on PostgreSQL, trials on a 2-node Ray cluster.

One moto, one PostgreSQL and one cluster per module; the scenarios run in sequence:
- bad input ends with exit status 2 and one line, before Ray starts, writing nothing;
- a quick study through `--address` with `--storage s3://` and `--optuna-storage`: trials ran on
  both nodes, Optuna's database holds every trial, the local disk holds only the cache;
- the head node lost: driver and head killed with kill -9, the cache deleted, a new cluster,
  and `--resume s3://...` from a fresh driver finishes exactly the requested trials, the
  finished ones untouched (the Optuna SQLite file travels through the store).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time

import optuna
import pytest
from helpers import (
    ROOT,
    SMALL_STUDY,
    experiment_rows,
    kill_tree,
    run_cli,
    run_module,
    start_cli,
    wait_for,
)
from services import (
    S3_CREDENTIALS,
    environ,
    free_port,
    postgres_server,
    process_tree,
    ray_cluster,
    s3_server,
    stop_tree,
)

from names import (
    BASELINE_LABEL,
    CONFIRM_PLAN_FILE,
    EVAL_SPLIT,
    NODE_KEY,
    OPTUNA_DB,
    RESTARTED,
    SETTINGS_FILE,
    TASKS_FILE,
    TEST,
    confirm_experiment,
    tuned_label,
)
from study.confirm import main as confirm_main
from study.run import main
from study.settings import StudySettings
from studyfiles import storage
from trainables.checkpoint import STATE_FILE

AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")
MULTI_ROWS = (["baseline", "multi-task"], ["tuned", "multi-task"])
INTERVAL = r"\d% (± [\d.]+ \(n=2\)|\(n=2, all 2 seeds equal: no interval\))"


@pytest.fixture(scope="module")
def s3():
    """moto, with its credentials in this process's environment: the drivers and the Ray
    nodes started here inherit them, as machines with an instance role would have them; the
    nodes also import this checkout (as each node of a real cluster has the project installed)."""
    node_env = {**S3_CREDENTIALS, "PYTHONPATH": str(ROOT)}
    with environ(node_env), s3_server() as store:
        yield store


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def ray2(s3):
    with ray_cluster() as cluster:
        yield cluster


def _keys(s3, prefix: str = "") -> list[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _settled(s3, prefix: str, quiet_s: float = 3.0, timeout: float = 60.0) -> None:
    """Wait until nothing under `prefix` has changed for `quiet_s` (no upload in flight), so a
    kill lands at an ordinary moment rather than in the save that the trigger just observed.
    A kill in the middle of a save can leave the store's files at different ages; the resume
    reconciles what it can (see the README's cluster section)."""

    def listing():
        pages = (
            s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
        )
        return sorted((o["Key"], o["ETag"]) for page in pages for o in page.get("Contents", []))

    last, since, deadline = listing(), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.5)
        now = listing()
        if now != last:
            last, since = now, time.monotonic()


def _auth(cluster) -> dict[str, str]:
    return {k: cluster.env[k] for k in AUTH}


def _one_line_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_bad_storage_input_is_refused_before_ray(s3, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    at = ["--storage-endpoint", s3.endpoint]
    cases = [
        (
            [
                "--storage",
                "s3://studies/x",
                "--storage-endpoint",
                f"http://127.0.0.1:{free_port()}",
            ],
            "cannot be reached",
        ),
        (["--storage", "s3://nosuchbucket/x", *at], "does not exist"),
        (["--storage", s3.uri("x"), *at, "--optuna-storage", "not a url"], "not a database URL"),
        (["--storage", s3.uri("x"), *at, "--storage-endpoint", "ftp://h"], "malformed"),
        (["--resume", s3.uri("x/none"), *at], "not a study"),
        (["--address", f"127.0.0.1:{free_port()}"], "no Ray cluster answers"),
    ]
    for args, words in cases:
        new = [] if "--resume" in args else ["--quick"]  # a resume takes the study's settings
        assert words in _one_line_error([*new, *cache, *args], capsys), args
    # the confirmation stage alone takes a study URI the same way
    assert confirm_main([s3.uri("x/none"), *at, *cache]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {s3.uri('x/none')}: not a study (no {SETTINGS_FILE} in it)\n"
    assert list(tmp_path.iterdir()) == [] and _keys(s3) == []  # nothing written anywhere
    # the path analysis.table shows for a remote study is its cache: confirmed in the store
    gone = StudySettings(name="gone", storage=s3.uri("x"), storage_endpoint=s3.endpoint)
    (tmp_path / "cached").mkdir()
    (tmp_path / "cached" / SETTINGS_FILE).write_text(gone.to_json())
    assert confirm_main([str(tmp_path / "cached"), *cache]) == 2
    said = capsys.readouterr()
    assert said.out.startswith(f"note: that folder is the local cache of {s3.uri('x/gone')}")
    assert said.err == f"error: {s3.uri('x/gone')}: not a study (no {SETTINGS_FILE} in it)\n"
    import ray

    assert not ray.is_initialized()


@pytest.mark.slow
def test_quick_study_on_a_cluster_with_s3_and_postgres(s3, pg, ray2, tmp_path, capsys) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    remote = ["--storage", s3.uri("cl"), "--storage-endpoint", s3.endpoint]
    args = [*SMALL_STUDY, "--num-samples", "2", "--max-epochs", "2", *remote]
    args += ["--optuna-storage", pg.url, "--cache-dir", str(cache), "--name", "c"]
    # the confirmation stage too, at its smallest with an interval: baseline and tuned-1, 2 seeds
    args += ["--confirm-seeds", "2", "--confirm-top", "1", "--limit-test", "64"]
    # without the token the cluster refuses the driver: one line saying how to pass it
    no_token = _one_line_error([*args, "--address", ray2.address], capsys)
    assert "RAY_AUTH_MODE=token" in no_token and _keys(s3) == []

    done = run_cli(*args, "--address", ray2.address, cwd=work, env=_auth(ray2))
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(work.iterdir()) == []  # nothing under the local study root
    folder = storage.cache_folder(storage.resolve(s3.uri("cl/c"), s3.endpoint), str(cache))
    rows = experiment_rows(folder / "multi")
    assert len(rows) == 2 and all(len(r) == 2 for r in rows.values())
    assert len({row[NODE_KEY] for trial in rows.values() for row in trial}) == 2  # both nodes
    assert not list(cache.rglob("state.pt"))  # model weights stay in the store
    keys = _keys(s3, "cl/c/")
    for name in (SETTINGS_FILE, TASKS_FILE, CONFIRM_PLAN_FILE, "multi/tuner.pkl"):
        assert f"cl/c/{name}" in keys
    assert f"cl/c/{OPTUNA_DB}" not in keys and "cl/c/.lock" not in keys  # released
    for trial in rows:  # each trial's checkpoint, written from its node to the store
        assert any(k.startswith(f"cl/c/multi/{trial}/checkpoint_") for k in keys)
    seen = optuna.load_study(study_name="multi", storage=pg.url)
    assert len(seen.trials) == 2 and all(t.state.is_finished() for t in seen.trials)
    _check_confirmation(s3, folder, keys)
    table = run_module("analysis.table", s3.uri("cl/c"), "--storage-endpoint", s3.endpoint)
    assert table.returncode == 0 and "synced to the local cache" in table.stderr
    assert table.stdout.startswith("Test accuracy") and "* split: test" in table.stdout
    # the multi-task rows: both seeds' test accuracies, with their interval (or, when the tiny
    # models scored the same, the table's word that there is none)
    cells = [line for line in table.stdout.splitlines() if line.split()[1:3] in MULTI_ROWS]
    assert len(cells) == 4 and all(re.search(INTERVAL, c) for c in cells), table.stdout
    # the confirmation stage alone, on the ended study: nothing to do (it reads the store)
    assert confirm_main([s3.uri("cl/c"), *remote[2:], "--cache-dir", str(cache)]) == 0
    assert "complete: nothing to do" in capsys.readouterr().out
    assert _keys(s3, "cl/c/") == keys  # it wrote nothing


def _check_confirmation(s3, folder, keys: list[str]) -> None:
    """The confirmation stage went to the store: its plan, and per planned run (baseline and
    tuned-1, 2 seeds each) a trial scored on test at its last epoch, with its kept model; the
    cache has the results, never the weights."""
    plan = json.loads(
        storage.read_text(storage.resolve(s3.uri(f"cl/c/{CONFIRM_PLAN_FILE}"), s3.endpoint))
    )
    assert [r["label"] for r in plan["multi"]] == [BASELINE_LABEL] * 2 + [tuned_label(1)] * 2
    runs = experiment_rows(folder / confirm_experiment("multi"))
    assert len(runs) == 4 and all(len(rows) == 2 for rows in runs.values())
    assert all(rows[-1][EVAL_SPLIT] == TEST for rows in runs.values())
    for trial in runs:  # each run's final model, in the store only
        prefix = f"cl/c/{confirm_experiment('multi')}/{trial}/checkpoint_"
        assert any(k.startswith(prefix) and k.endswith(f"/{STATE_FILE}") for k in keys), trial


def _statuses(s3, experiment: str) -> dict[str, str]:
    """trial id -> status in the newest experiment state the store holds."""
    states = sorted(k for k in _keys(s3, experiment) if "/experiment_state-" in k)
    if not states:
        return {}
    body = s3.client().get_object(Bucket=s3.bucket, Key=states[-1])["Body"].read()
    trials = [json.loads(entry[0]) for entry in json.loads(body)["trial_data"]]
    return {t["trial_id"]: t["status"] for t in trials}


def _finished(s3, experiment: str) -> list[str]:
    return [t for t, status in _statuses(s3, experiment).items() if status == "TERMINATED"]


def _rows_in_store(s3, uri: str, into) -> dict[str, list[dict]]:
    folder = storage.resolve(uri, s3.endpoint)
    storage.sync_down(folder, into, exclude=storage.MODEL_WEIGHTS)
    return experiment_rows(into / "multi")


@pytest.mark.slow
def test_resume_after_the_head_node_is_lost(s3, ray2, tmp_path) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    uri = s3.uri("lost/h")
    args = [*SMALL_STUDY, "--num-samples", "3", "--max-epochs", "2", "--storage", s3.uri("lost")]
    args += ["--storage-endpoint", s3.endpoint, "--cache-dir", str(cache), "--name", "h"]
    with open(tmp_path / "driver.log", "w") as log:
        driver = start_cli(
            *args, "--address", ray2.address, cwd=work, env=_auth(ray2), stdout=log, stderr=log
        )
        try:
            wait_for(lambda: bool(_finished(s3, "lost/h/multi/")), driver, timeout=600)
            _settled(s3, "lost/h/")
        finally:
            kill_tree(driver)  # the driver ...
            for p in process_tree(ray2.procs[0]):  # ... and the head node, kill -9
                p.send_signal(signal.SIGKILL)
            stop_tree(ray2.procs[1])  # the other node is lost with its head
    done_before = _finished(s3, "lost/h/multi/")
    before = _rows_in_store(s3, uri, tmp_path / "before")
    assert done_before and f"lost/h/{OPTUNA_DB}" in _keys(s3, "lost/h/")
    shutil.rmtree(cache)  # another machine: an empty cache, elsewhere
    cache = tmp_path / "another-cache"

    with ray_cluster() as fresh:
        resumed = run_cli(
            "--resume",
            uri,
            "--storage-endpoint",
            s3.endpoint,
            "--cache-dir",
            str(cache),
            "--address",
            fresh.address,
            cwd=work,
            env=_auth(fresh),
        )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _rows_in_store(s3, uri, tmp_path / "after")
    assert len(after) == 3 and all(len(rows) == 2 for rows in after.values())
    assert set(_statuses(s3, "lost/h/multi/").values()) == {"TERMINATED"}
    for trial in done_before:  # finished trials untouched (a row the lost driver never
        # saved may be restored from the experiment state: ray_files; never a row changed)
        name = f"trial_{trial}"
        assert after[name][: len(before[name])] == before[name]
    db = storage.cache_folder(storage.resolve(uri, s3.endpoint), str(cache)) / OPTUNA_DB
    seen = optuna.load_study(study_name="multi", storage=f"sqlite:///{db}")
    states = [t.state for t in seen.trials]  # none left RUNNING by the lost driver
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3, states
    assert optuna.trial.TrialState.RUNNING not in states, states
    assert list(work.iterdir()) == []


def _reported(s3, experiment: str) -> dict[str, tuple[str, int]]:
    """trial id -> (status, reports the driver recorded) in the newest experiment state the
    store holds: a trial with a report has a checkpoint that Ray hands back on resume."""
    states = sorted(k for k in _keys(s3, experiment) if "/experiment_state-" in k)
    body = s3.client().get_object(Bucket=s3.bucket, Key=states[-1])["Body"].read()
    found = {}
    for meta, runtime in (map(json.loads, e[:2]) for e in json.loads(body)["trial_data"]):
        last = runtime.get("last_result") or {}
        found[meta["trial_id"]] = (meta["status"], int(last.get("training_iteration") or 0))
    return found


@pytest.mark.slow
def test_a_trial_without_a_readable_checkpoint_in_the_store_restarts(s3, tmp_path) -> None:
    """A study in object storage (here on a local Ray) of 1 trial x 3 epochs, stopped with
    Ctrl-C once its first epoch is reported; its checkpoints in the store then cut to 200
    bytes; --resume: it starts over from epoch 0 rather than erroring, its rows say
    `restarted`, one progress line names its files in the store, and it reaches its last
    epoch, counted by the summary."""
    work, cache, log = tmp_path / "work", tmp_path / "cache", tmp_path / "driver.log"
    work.mkdir()
    uri, experiment = s3.uri("cut/r"), "cut/r/multi/"
    args = [*SMALL_STUDY, "--num-samples", "1", "--storage", s3.uri("cut")]
    args += ["--storage-endpoint", s3.endpoint, "--cache-dir", str(cache), "--name", "r"]
    with open(log, "w") as out:
        driver = start_cli(*args, cwd=work, stdout=out, stderr=out)
        try:  # the driver has recorded a report: Ray hands its checkpoint back on resume
            wait_for(lambda: re.search(r"best validation score \d", log.read_text()), driver)
            driver.send_signal(signal.SIGINT)  # Ctrl-C: Tune stops and saves to the store
            assert driver.wait(timeout=120) == 130
        finally:
            kill_tree(driver)
    ((trial, (status, reports)),) = _reported(s3, experiment).items()
    assert status != "TERMINATED" and reports >= 1, (status, reports)
    files = [k for k in _keys(s3, f"{experiment}trial_{trial}/") if k.endswith(STATE_FILE)]
    for key in files:
        s3.client().put_object(Bucket=s3.bucket, Key=key, Body=b"\0" * 200)
    resumed = run_cli(
        *("--resume", uri, "--storage-endpoint", s3.endpoint, "--cache-dir", str(cache)), cwd=work
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rows = _rows_in_store(s3, uri, tmp_path / "after")[f"trial_{trial}"]
    assert [r["epoch"] for r in rows[-3:]] == [1, 2, 3] and all(r[RESTARTED] for r in rows[-3:])
    assert f"trial_{trial} restarted from epoch 0: no readable checkpoint (" in resumed.stdout
    assert files and all(f"s3://{s3.bucket}/{key}" in resumed.stdout for key in files)
    assert "multi: 1 trials; top" in resumed.stdout  # not errored
    assert "Restarted from epoch 0 (no readable checkpoint): 1 search trial(s)" in resumed.stdout

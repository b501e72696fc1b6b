"""The edges of a study in object storage, against real services (tests/services.py) and no
Ray unless marked slow:

- every line that names a remote study names its URI, never the driver's hidden cache;
- the commands the driver prints (table, report, resume) run as printed: with
  `--storage-endpoint` for an S3-compatible store;
- a driver whose lock another driver took over stops Tune at its next step and writes nothing
  more;
- the searcher Ray pickles into the experiment folder holds no database password, and a
  restore still reaches the database.
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
import secrets
import shlex
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_study import make_fake_study
from services import postgres_server, s3_server_in_env

from errors import UserError
from names import ERROR_FILES, TRIAL_PREFIX
from study import location
from study.checks import settings_from_args
from study.cli import build_parser
from studyfiles import storage
from studyfiles.lock import StudyLock, describe_holder


@pytest.fixture(scope="module")
def s3():
    with s3_server_in_env() as store:
        yield store


def _remote_settings(tmp_path: Path, uri: str, endpoint: str, *argv: str):
    """The settings of a quick study in object storage, its cache under tmp_path."""
    args = ["--quick", "--storage", uri, "--storage-endpoint", endpoint, "--name", "edges"]
    args += ["--cache-dir", str(tmp_path / "cache"), *argv]
    return settings_from_args(build_parser().parse_args(args))


_TASKS = {
    n: {"train_size": 100, "val_size": 10, "test_size": 20} for n in ("cifar10", "fashionrgb")
}


# ---------------------------------------------------------------------------------------------
# 1. the lines a user sees name the study's URI


def _trial(trial_id: str, status: str, epochs: int = 0, score: float | None = None):
    from ray.tune.experiment import Trial  # a stub Trial: no Ray runtime

    trial = Trial("__fake", config={}, trial_id=trial_id, stub=True)
    if epochs:
        trial.update_last_result(
            {"training_iteration": epochs, "time_total_s": 2.0 * epochs, "score": score}
        )
    trial.set_status(status)
    return trial


def test_progress_lines_name_the_uri_not_the_cache(tmp_path: Path) -> None:
    from study import progress
    from study.progress import StudyReporter, plan_text

    settings = _remote_settings(
        tmp_path, "s3://studies/pre", "http://127.0.0.1:9", "--space", "all"
    )
    uri, cache = "s3://studies/pre/edges", str(settings.study_dir)
    assert cache.startswith(str(tmp_path / "cache"))  # the hidden cache: never shown
    plan = plan_text(settings, _TASKS, slots=2, resumed=True)
    assert plan.splitlines()[0] == f"Resuming {uri}" and cache not in plan

    progress.watch(settings, _TASKS, slots=2)
    reporter = StudyReporter("single-fashionrgb")
    reporter.setup(total_samples=6)
    trials = [_trial("a1", "RUNNING", 1, 0.4), _trial("a2", "ERROR", 1, 0.1)]
    lines = reporter.lines(trials, done=False)
    text = "\n".join(lines)
    assert lines[0].endswith(f": {uri}/single-fashionrgb") and cache not in text
    assert f"see {uri}/single-fashionrgb/{TRIAL_PREFIX}a2/{ERROR_FILES[0]}" in text


def test_interrupted_and_refusal_lines_name_the_uri(tmp_path: Path, capsys) -> None:
    from study import experiments, run

    settings = _remote_settings(tmp_path, "s3://studies/pre", "http://127.0.0.1:9")
    cache = str(settings.study_dir)
    assert run._interrupted(settings.study_dir, "multi: 1 of 6 trials ended", settings) == 130
    out = capsys.readouterr().out
    assert "Resume it with: python -m study.run --resume s3://studies/pre/edges " in out
    assert cache not in out

    # a damaged experiment in the cache: the refusal names it in the store
    trial = settings.study_dir / "multi" / f"{TRIAL_PREFIX}x"
    trial.mkdir(parents=True)
    (trial / "result.json").write_text('{"score": 0.5}\n')
    with pytest.raises(UserError) as exc:
        experiments.check_experiments(settings)
    message = str(exc.value)
    assert message.startswith("s3://studies/pre/edges/multi: ") and cache not in message


def test_a_local_study_is_shown_as_its_folder(tmp_path: Path) -> None:
    settings = settings_from_args(build_parser().parse_args(["--storage", str(tmp_path)]))
    assert location.shown_path(settings) == str(settings.study_dir)
    assert location.shown_path(settings, settings.study_dir / "multi") == str(
        settings.study_dir / "multi"
    )
    assert location.store_flags(settings) == ""
    assert location.resume_command(settings) == f"python -m study.run --resume {settings.study_dir}"


# ---------------------------------------------------------------------------------------------
# 2. the printed commands run as printed


def _command(text: str, module: str) -> list[str]:
    """The argv after `python -m <module>` of the one printed line that runs it (up to an
    explanation in parentheses)."""
    found = [line for line in text.splitlines() if f"python -m {module} " in line]
    assert len(found) == 1, text
    return shlex.split(found[0].split(f"python -m {module} ", 1)[1].split(" (")[0])


class _Parsed(Exception):
    """Carries what a CLI's own parser made of its argv, before the CLI runs anything."""


def _parsed(main, argv: list[str], monkeypatch) -> argparse.Namespace:
    """`main(argv)` stopped right after its own argparse parser parsed `argv` (an unknown flag
    is argparse's SystemExit instead)."""
    real = argparse.ArgumentParser.parse_args

    def parse(self, args=None, namespace=None):
        raise _Parsed(real(self, args, namespace))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse)
        with pytest.raises(_Parsed) as got:
            main(argv)
    return got.value.args[0]


def _study_in_store(s3, tmp_path: Path, prefix: str):
    """A finished hand-made study uploaded to the store, and its remote settings."""
    fake = make_fake_study(tmp_path / "made", eval_split="validation")
    settings = _remote_settings(tmp_path, s3.uri(prefix), s3.endpoint)
    storage.sync_up(fake, location.location(settings))
    location.pull(settings, with_db=True)  # the driver's cache, as at the end of a study
    return settings


def test_summary_and_resume_commands_carry_the_endpoint_and_run(
    s3, tmp_path, capsys, monkeypatch
) -> None:
    from analysis import report, table
    from study import confirm, run

    settings = _study_in_store(s3, tmp_path, "printed")
    uri = s3.uri("printed/edges")
    where, flags = location.shown_path(settings), location.store_flags(settings)
    text = run.summary(settings.study_dir, where, flags)
    assert f"study directory: {uri}" in text and str(settings.study_dir) not in text

    for module, main in (("analysis.table", table.main), ("analysis.report", report.main)):
        args = _parsed(main, _command(text, module), monkeypatch)
        assert (args.study, args.storage_endpoint) == (uri, s3.endpoint)
    # no confirmation runs in this study: the table says how to get them, for the store too
    args = _parsed(confirm.main, _command(text, "study.confirm"), monkeypatch)
    assert (args.study, args.storage_endpoint) == (uri, s3.endpoint)

    argv = _command(text, "analysis.table")
    assert table.main(argv) == 0  # another machine: the table's own sync, its own cache
    shown = capsys.readouterr()
    assert "single-cifar10" in shown.out or "cifar10" in shown.out
    assert f"{uri}: synced to the local cache" in shown.err
    # the table's own "get the test figures" command names the store too, not its cache
    args = _parsed(confirm.main, _command(shown.out, "study.confirm"), monkeypatch)
    assert (args.study, args.storage_endpoint) == (uri, s3.endpoint)

    argv = _command(text, "analysis.report")
    assert report.main([*argv, "--no-figure-files", "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert f"python -m study.confirm {uri} --storage-endpoint {s3.endpoint}" in page

    argv = _command(f"Resume it with: {location.resume_command(settings)}", "study.run")
    args = _parsed(run.main, argv, monkeypatch)
    assert args.resume == uri and args.storage_endpoint == s3.endpoint
    args.cache_dir = str(tmp_path / "another-machine")
    resumed = location.for_resume(args)  # everything up to Ray: store, study, cache
    assert location.shown_path(resumed) == uri and resumed.storage_endpoint == s3.endpoint


def test_the_already_exists_refusal_names_a_runnable_resume(s3, tmp_path) -> None:
    settings = _study_in_store(s3, tmp_path, "taken")
    with pytest.raises(UserError) as exc:
        location.check_new(settings)
    argv = _command(str(exc.value), "study.run")
    assert argv == ["--resume", s3.uri("taken/edges"), "--storage-endpoint", s3.endpoint]


# ---------------------------------------------------------------------------------------------
# 3. a lock taken over stops the driver


@pytest.fixture(params=["s3", "local"])
def study_loc(request, tmp_path):
    if request.param == "s3":
        s3 = request.getfixturevalue("s3")
        return storage.resolve(s3.uri(f"lost/{tmp_path.name}"), s3.endpoint)
    return storage.resolve(str(tmp_path / "study"))


def _take_over(loc) -> StudyLock:
    """What a second driver does once the first looks stale to it (here: at once). A heartbeat
    of the first that lands between the second's read and its conditional write makes the
    take-over fail ("took its lock just now"), as it would for a real driver: try again."""
    for _ in range(10):
        second = StudyLock(loc, heartbeat_s=3600, stale_after_s=0.0)
        try:
            second.acquire()
            return second
        except UserError as exc:
            assert "just now" in str(exc)
    raise AssertionError("the take-over lost the race ten times")


def test_the_heartbeat_finds_the_new_owner_and_tune_is_stopped(study_loc) -> None:
    from study import lockwatch

    first = StudyLock(study_loc, heartbeat_s=0.2)
    first.acquire()
    watch = lockwatch.LockWatch()
    lockwatch.bind(first)
    try:
        watch.on_step_begin(iteration=1, trials=[])  # held: Tune goes on
        assert watch.get_state() is None
        second = _take_over(study_loc)
        deadline = time.monotonic() + 10
        while not first.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.lost and first.taken_by["id"] == second.owner["id"]
        with pytest.raises(lockwatch.LockLost) as exc:
            watch.on_step_begin(iteration=2, trials=[])
        message = str(exc.value)
        assert "\n" not in message and describe_holder(second.owner) in message
        with pytest.raises(lockwatch.LockLost):
            watch.get_state()  # Ray asks before it saves the experiment: nothing is saved
        first.release()  # the lost lock is not deleted: the new owner keeps it
        assert storage.exists(second.loc)
        second.release()
    finally:
        lockwatch.bind(None)


def test_the_runner_stops_before_an_experiment_once_the_lock_is_lost(tmp_path: Path) -> None:
    from study import lockwatch, runner, studydir

    settings = settings_from_args(build_parser().parse_args(["--storage", str(tmp_path)]))
    settings.study_dir.mkdir(parents=True)
    with studydir.locked(settings) as lock:
        assert lockwatch.LockWatch.lock is lock
        second = _take_over(location.location(settings))
        assert lock.refresh() is False  # its next beat (every HEARTBEAT_S) finds the new owner

        def never() -> None:
            raise AssertionError("a new experiment was started after the lock was lost")

        with pytest.raises(lockwatch.LockLost):
            runner._fit(settings, settings.study_dir / "multi", None, never, expected=1)
    assert lockwatch.LockWatch.lock is None
    assert not (settings.study_dir / "multi").exists()
    assert storage.exists(second.loc)  # the lost lock was left to its new owner
    second.release()


# ---------------------------------------------------------------------------------------------
# 5. no database password in what Ray pickles


@contextlib.contextmanager
def _password_database():
    """PostgreSQL with a role that must give its password (scram-sha-256 on 127.0.0.1, before
    the server's trust rule): a URL without it is refused. Yields (URL, password)."""
    import psycopg2

    with postgres_server() as pg:
        password = f"pw-{secrets.token_hex(12)}"
        admin = psycopg2.connect(host="127.0.0.1", port=pg.port, user="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE edges LOGIN PASSWORD '{password}'")
            cur.execute("CREATE DATABASE edges OWNER edges")
            hba = pg.data_dir / "pg_hba.conf"
            hba.write_text(f"host all edges 127.0.0.1/32 scram-sha-256\n{hba.read_text()}")
            cur.execute("SELECT pg_reload_conf()")
        admin.close()
        time.sleep(0.5)  # the postmaster re-reads pg_hba.conf
        yield f"postgresql+psycopg2://edges:{password}@127.0.0.1:{pg.port}/edges", password


def _files_holding(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_the_pickled_searcher_holds_no_password_and_restores(tmp_path: Path) -> None:
    import sqlalchemy
    from ray import cloudpickle

    from study import runner
    from study.search import StudyStorage
    from study.settings import study_spaces

    with _password_database() as (url, password):
        hidden = url.replace(password, "***")
        with pytest.raises(sqlalchemy.exc.OperationalError):  # the password is needed
            sqlalchemy.create_engine(hidden).connect().close()
        settings = settings_from_args(
            build_parser().parse_args(["--storage", str(tmp_path), "--optuna-storage", url])
        )
        space = study_spaces(settings)[0]
        config = runner._tune_config(settings, space)  # the searcher as the runner builds it
        searcher = config.search_alg
        assert searcher.suggest("t1")  # an Optuna trial in the database
        experiment = tmp_path / "experiment"
        experiment.mkdir()
        searcher.save_to_dir(str(experiment), session_str="s")  # as Ray saves it
        (experiment / "tuner.pkl").write_bytes(cloudpickle.dumps(config))  # and the Tuner
        assert _files_holding(experiment, password.encode()) == []
        assert _files_holding(experiment, b"edges:***@")  # the storage is in them, masked

        try:
            StudyStorage.current_url = None  # no URL bound: the hidden one does not connect
            with pytest.raises(sqlalchemy.exc.OperationalError):
                pickle.loads((experiment / "tuner.pkl").read_bytes())
            StudyStorage.current_url = url  # the runner binds this driver's URL, then restores
            restored = cloudpickle.loads((experiment / "tuner.pkl").read_bytes()).search_alg
            restored.restore_from_dir(str(experiment))  # as Tuner.restore does
            trials = restored.study.get_trials()
            assert [t.user_attrs.get("ray_trial_id") for t in trials] == ["t1"]
        finally:
            StudyStorage.current_url = None


# ---------------------------------------------------------------------------------------------
# the same, in real Tune experiments (one small Ray instance for the module)


@pytest.fixture(scope="module")
def local_ray():
    """Ray on this machine; this module's trainables travel by value (the workers cannot
    import a test module)."""
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _ticking(config: dict) -> None:
    """A trainable that reports a score every 0.1 s, 100 times (10 s if never stopped), and
    touches `config["started"]` once it has reported."""
    from ray import tune

    for i in range(100):
        time.sleep(0.1)
        tune.report({"score": 0.01 * i})
        Path(config["started"]).touch()


@pytest.mark.slow
def test_a_running_experiment_stops_when_its_lock_is_taken_over(local_ray, tmp_path) -> None:
    from ray import tune

    from study import experiments, lockwatch

    loc = storage.resolve(str(tmp_path / "study"))
    lock = StudyLock(loc, heartbeat_s=0.2)
    lock.acquire()
    lockwatch.bind(lock)
    taken: list[float] = []

    started = tmp_path / "started"

    def second_driver() -> None:  # takes the study over once the trial has reported
        while not started.exists() and not taken:
            time.sleep(0.05)
        _take_over(loc)
        taken.append(time.monotonic())

    tuner = tune.Tuner(
        _ticking,
        param_space={"started": str(started)},
        run_config=tune.RunConfig(
            name="exp",
            storage_path=str(tmp_path / "study"),
            callbacks=[lockwatch.LockWatch()],
            verbose=0,
        ),
    )
    thread = threading.Thread(target=second_driver, daemon=True)
    thread.start()
    try:
        with pytest.raises(lockwatch.LockLost) as exc:
            tuner.fit()
        stopped = time.monotonic()
    finally:
        taken.append(0.0)  # the helper thread ends even if the trial never reported
        lockwatch.bind(None)
        lock.release()
    assert taken[0] and stopped - taken[0] < 5  # promptly: a heartbeat and a step
    assert "took its lock over" in str(exc.value)
    rows = (tmp_path / "study").glob("exp/*/result.json")
    reported = sum(len(p.read_text().splitlines()) for p in rows)
    assert reported < 100  # the trial was stopped, not run to its end
    # and Tune's final save (every trial ended) never reached the study
    assert "TERMINATED" not in (experiments._saved_statuses(tmp_path / "study" / "exp") or [])


@pytest.mark.slow
def test_no_password_in_any_file_of_a_real_experiment(local_ray, tmp_path) -> None:
    from ray import tune

    from study import runner
    from study.settings import study_spaces

    def two_epochs(config: dict) -> None:
        for i in range(2):
            tune.report({"score": 0.1 * i, "training_iteration_": i})

    with _password_database() as (url, password):
        argv = ["--storage", str(tmp_path), "--optuna-storage", url, "--num-samples", "2"]
        settings = settings_from_args(build_parser().parse_args([*argv, "--scheduler", "fifo"]))
        space = study_spaces(settings)[0]
        tune.Tuner(
            two_epochs,
            tune_config=runner._tune_config(settings, space),  # StudySearch, its storage
            run_config=tune.RunConfig(name=space.name, storage_path=str(tmp_path), verbose=0),
        ).fit()
        experiment = tmp_path / space.name
        assert list(experiment.glob("searcher-state-*.pkl")) and (experiment / "tuner.pkl").exists()
        assert _files_holding(experiment, password.encode()) == []
        assert _files_holding(experiment, b"edges:***@")  # the storage was saved, masked

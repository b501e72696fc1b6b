"""study.cluster and the Optuna database check against real services: the Ray token file's
mode, `--address` refused in one line (unreachable, no token, wrong token) on a real 2-node
cluster, and Optuna's RDB storage on a real PostgreSQL seen by `optuna.load_study`."""

from __future__ import annotations

import socket
import stat

import optuna
import pytest
import ray
import sqlalchemy
from services import postgres_server, ray_cluster

from errors import UserError
from study import cluster
from study.run import main as run_main
from studyfiles import storage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_file_is_made_private(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    created = cluster.private_token({}, create=True)  # before a local ray.init: none yet
    assert created == tmp_path / ".ray" / "auth_token" and _mode(created) == 0o600
    assert len(created.read_text()) == 64
    loose = tmp_path / "token"
    loose.write_text(created.read_text())
    loose.chmod(0o644)  # as Ray 2.60 leaves ~/.ray/auth_token
    assert cluster.private_token({cluster.AUTH_TOKEN_PATH: str(loose)}) == loose
    assert _mode(loose) == 0o600 and loose.read_text() == created.read_text()
    assert cluster.private_token({cluster.AUTH_TOKEN: "abc"}) is None  # no file to protect


def test_unreachable_or_malformed_address_is_one_line() -> None:
    for address, words in [
        (f"127.0.0.1:{_free_port()}", "no Ray cluster answers"),
        ("nohostport", "malformed"),
    ]:
        with pytest.raises(UserError) as exc:
            cluster.check_address(address, {})
        assert words in str(exc.value) and "\n" not in str(exc.value)


def test_malformed_or_unreachable_database_url_is_one_line() -> None:
    for url, words in [
        ("not a url", "not a database URL"),
        ("nosuchdb://x/y", "not a database URL"),
        ("postgresql+nosuchdriver://u@h/db", "not a database URL"),
        ("postgresql+pg8000://u@h/db", "not installed"),
        (f"postgresql+psycopg2://u:secret@127.0.0.1:{_free_port()}/db", "cannot be reached"),
    ]:
        with pytest.raises(UserError) as exc:
            storage.check_database_url(url)
        message = str(exc.value)
        assert words in message and "\n" not in message and "secret" not in message


def test_optuna_study_in_postgres_is_seen_by_load_study(tmp_path, monkeypatch, capsys) -> None:
    """...and a new study refuses a database that already holds a search of its spaces (it
    would join it), in one line before Ray starts; reading that writes nothing."""
    with postgres_server() as pg:
        assert storage.check_database_url(pg.url) == pg.url
        assert storage.optuna_study_names(pg.url) == []
        assert sqlalchemy.inspect(sqlalchemy.create_engine(pg.url)).get_table_names() == []
        study = optuna.create_study(
            study_name="multi",
            storage=optuna.storages.RDBStorage(pg.url),
            sampler=optuna.samplers.TPESampler(seed=0),
            direction="maximize",
        )
        study.optimize(lambda t: -((t.suggest_float("lr", 1e-4, 1e-1, log=True) - 0.01) ** 2), 5)
        seen = optuna.load_study(study_name="multi", storage=pg.url)
        assert [t.params for t in seen.trials] == [t.params for t in study.trials]
        assert len(seen.trials) == 5 and seen.best_value == study.best_value
        optuna.storages.RDBStorage(pg.url).engine.dispose()
        monkeypatch.chdir(tmp_path)
        args = ["--quick", "--space", "multi", "--storage", str(tmp_path / "studies")]
        assert run_main([*args, "--optuna-storage", pg.url]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "already holds the Optuna study multi" in err, err
        assert list(tmp_path.iterdir()) == [] and not ray.is_initialized()
        assert storage.optuna_study_names(pg.url) == ["multi"]


@pytest.fixture(scope="module")
def ray2():
    with ray_cluster() as c:
        yield c


def _without_auth(env: dict) -> dict:
    return {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}


@pytest.mark.slow
def test_address_check_on_a_real_cluster(ray2, tmp_path) -> None:
    cluster.check_address(ray2.address, ray2.env)  # the token the cluster was started with
    cases = [
        (_without_auth(ray2.env), "requires an auth token"),  # what a user sees today
        (
            {**_without_auth(ray2.env), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64},
            "differs",
        ),
        (
            {
                **_without_auth(ray2.env),
                "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN_PATH": str(tmp_path / "x"),
            },
            "cannot be read",
        ),
    ]
    for env, words in cases:
        with pytest.raises(UserError) as exc:
            cluster.check_address(ray2.address, env)
        message = str(exc.value)
        assert words in message and "RAY_AUTH_MODE=token" in message and "\n" not in message

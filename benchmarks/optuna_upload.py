"""What uploading Optuna's SQLite file at every experiment checkpoint costs a remote study.

A remote study without `--optuna-storage` uploads its `optuna.db` beside the study each time
Ray saves the experiment state (`study.remote.OptunaUpload`). This builds databases of a real
study's shape (TPE, N trials x E epochs of intermediate values), starts moto's S3 server on
127.0.0.1 (stopped by its PID at the end), and times `studyfiles.storage.sync_up` of the file, as
the callback calls it. One JSON line per database size.

    python -m benchmarks.optuna_upload [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def make_db(folder: Path, trials: int, epochs: int) -> Path:
    import optuna

    from trainables.optim import OPTIMIZERS

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{folder / 'optuna.db'}"
    study = optuna.create_study(study_name="multi", storage=url, direction="maximize")
    space = {
        "lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
        "optimizer": optuna.distributions.CategoricalDistribution(list(OPTIMIZERS)),
    }
    for _ in range(trials):
        trial = study.ask(space)
        for epoch in range(epochs):
            trial.report(epoch / epochs, epoch)
        study.tell(trial, 0.5)
    return folder / "optuna.db"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    os.environ.update(CREDENTIALS)
    from studyfiles import storage

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        for trials, epochs in ((20, 30), (100, 30)):
            folder = Path(tempfile.mkdtemp())
            db = make_db(folder, trials, epochs)
            loc = storage.resolve(f"s3://bench/{trials}", endpoint)
            times = []
            for _ in range(args.rounds):
                db.write_bytes(db.read_bytes())  # changed since the last upload
                start = time.perf_counter()
                assert storage.sync_up(folder, loc, only=[db.name]).copied == [db.name]
                times.append(time.perf_counter() - start)
            line = {
                "figure": "optuna_upload",
                "trials": trials,
                "epochs": epochs,
                "kib": round(db.stat().st_size / 1024),
                "median_ms": round(statistics.median(times) * 1000),
                "spread": round((max(times) - min(times)) / statistics.median(times), 2),
            }
            print(json.dumps(line), flush=True)
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real services for the cluster tests, started by the tests and stopped by their own PIDs.

- `postgres_server()`: Debian's PostgreSQL (`initdb`, then `postgres` in the foreground as the
  `postgres` user) on 127.0.0.1 and a free port; yields a SQLAlchemy URL. Skips, saying why,
  where PostgreSQL is not installed (`.ci/run` installs it).
- `s3_server()`: moto's S3 server (`python -m moto.server`) on 127.0.0.1; yields its endpoint,
  a bucket made for the test and the credentials a client needs.
- `ray_cluster()`: two Ray nodes on this host (`ray start --head` and a second `ray start
  --address`, both with `--block`, so each `ray start` process owns its node's processes), with
  token authentication and a private token file; yields the address and a driver's environment.

Each is a context manager: a test module wraps the ones it needs in a fixture. On exit every
process the service started is signalled by PID and awaited; `leftovers` says whether any
survived, and the smoke tests in `test_services.py` assert that none did. Nothing here touches
the user's `~/.ray` or any process it did not start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, what: str, log: Path) -> None:
    """Poll `ready()` until true; fail with the service's log if it exits or times out first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not start (exit status {proc.poll()}):\n{tail}")


def process_tree(proc: subprocess.Popen) -> list[psutil.Process]:
    """A started process and all its descendants, as they are now."""
    try:
        root = psutil.Process(proc.pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_tree(
    proc: subprocess.Popen,
    sig: int = signal.SIGTERM,
    timeout: float = 30.0,
    target: Callable[[list[psutil.Process]], psutil.Process] = lambda tree: tree[0],
) -> list[psutil.Process]:
    """Signal a started process (or the one of its tree that `target` picks), wait for it and
    all its descendants (as found before the signal), SIGKILL any still alive after `timeout`.
    Returns what the graceful stop left behind (killed since): a clean stop returns []."""
    tree = process_tree(proc)
    with contextlib.suppress(psutil.NoSuchProcess, IndexError):
        target(tree).send_signal(sig)
    _, left = psutil.wait_procs(tree, timeout=timeout)
    for p in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(left, timeout=10)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    return left


# ---------------------------------------------------------------------------------------------
# PostgreSQL


@dataclasses.dataclass
class Postgres:
    url: str  # SQLAlchemy URL of the `postgres` database, trust auth on 127.0.0.1
    port: int
    data_dir: Path
    proc: subprocess.Popen
    leftovers: list[psutil.Process] = dataclasses.field(default_factory=list)


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: p.split("/")[4])
    return Path(found[-1]).parent if found else None


def _as_postgres(*cmd: str) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def _postmaster(tree: list[psutil.Process]) -> psutil.Process:
    """The postmaster of a started tree: the first `postgres` process (runuser's child)."""
    return next((p for p in tree if p.name() == "postgres"), tree[0])


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster in a temp dir, listening on 127.0.0.1:<free port>."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    import psycopg2  # the driver of the yielded URL

    root = Path(tempfile.mkdtemp(prefix="mtl-pg-", dir="/tmp"))  # /tmp: postgres can enter it
    data, log = root / "data", root / "postgres.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    proc = None
    try:
        subprocess.run(
            _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"),
            check=True,
            capture_output=True,
        )
        port = free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                _as_postgres(str(bin_dir / "postgres"), "-D", str(data), "-p", str(port))
                + ["-h", HOST, "-k", str(root)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"postgresql+psycopg2://postgres@{HOST}:{port}/postgres"
        wait_until(
            lambda: psycopg2.connect(host=HOST, port=port, user="postgres").close() is None,
            proc,
            "PostgreSQL",
            log,
        )
        service = Postgres(url=url, port=port, data_dir=data, proc=proc)
        yield service
    finally:
        if proc is not None:
            # SIGINT to the postmaster (runuser's child): PostgreSQL's "fast" shutdown
            alive = stop_tree(proc, signal.SIGINT, target=_postmaster)
            if "service" in locals():
                service.leftovers = alive
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# S3 (moto's server)

S3_CREDENTIALS = {  # moto accepts any; exported so pyarrow and boto3 find them as on AWS
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no probing of a cloud metadata service
}


@dataclasses.dataclass
class S3Store:
    endpoint: str  # http://127.0.0.1:<port>
    bucket: str
    env: dict[str, str]  # the credentials a client needs (set them in os.environ or a child's)
    proc: subprocess.Popen
    leftovers: list[psutil.Process] = dataclasses.field(default_factory=list)

    def uri(self, prefix: str = "") -> str:
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )


@contextlib.contextmanager
def s3_server(bucket: str = "studies") -> Iterator[S3Store]:
    """moto's S3 server on 127.0.0.1:<free port>, in memory, with one empty bucket."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="mtl-s3-")) / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **S3_CREDENTIALS},
        )
    endpoint = f"http://{HOST}:{port}"
    store = S3Store(endpoint=endpoint, bucket=bucket, env=dict(S3_CREDENTIALS), proc=proc)
    try:
        wait_until(lambda: urllib.request.urlopen(endpoint, timeout=2), proc, "moto", log)
        store.client().create_bucket(Bucket=bucket)
        yield store
    finally:
        store.leftovers = stop_tree(proc)
        shutil.rmtree(log.parent, ignore_errors=True)


@contextlib.contextmanager
def s3_server_in_env(bucket: str = "studies") -> Iterator[S3Store]:
    """`s3_server` with its credentials in this process's environment (pyarrow and boto3 read
    them there), restored afterwards."""
    with s3_server(bucket) as store, environ(store.env):
        yield store


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """These variables set in this process's environment (children inherit them), then the
    previous values restored."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---------------------------------------------------------------------------------------------
# Ray: two nodes on this host


@dataclasses.dataclass
class RayCluster:
    address: str  # the head's GCS, 127.0.0.1:<port>
    env: dict[str, str]  # a driver's environment: token mode and the cluster's token file
    token_path: Path
    procs: list[subprocess.Popen]  # the two `ray start --block` processes, head first
    leftovers: list[psutil.Process] = dataclasses.field(default_factory=list)


def _ray_start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    ports = ("--dashboard-agent-listen-port", "--metrics-export-port")
    free = [x for flag in ports for x in (flag, str(free_port()))]
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["ray", "start", "--block", "--num-cpus", "1", "--disable-usage-stats", *free, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _listens(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=1):
        return True


def _started(log: Path) -> bool:
    """`ray start` prints this once its node has registered with the head (GCS)."""
    return "Ray runtime started" in log.read_text(errors="replace")


@contextlib.contextmanager
def ray_cluster() -> Iterator[RayCluster]:
    """A head node and a second node (resource `node2`), 1 CPU each, token authentication with a
    0600 token file of their own (never ~/.ray/auth_token), no dashboard, no usage stats."""
    root = Path(tempfile.mkdtemp(prefix="mtlray", dir="/tmp"))  # short: Ray's socket paths
    token = root / "auth_token"
    token.touch(mode=0o600)
    token.write_text(os.urandom(32).hex())
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_TOKEN", None)
    address = f"{HOST}:{free_port()}"
    procs: list[subprocess.Popen] = []
    cluster = RayCluster(address=address, env=env, token_path=token, procs=procs)
    try:
        head = ["--head", "--node-ip-address", HOST, "--port", address.split(":")[1]]
        head += ["--include-dashboard", "false", "--temp-dir", str(root / "head")]
        procs.append(_ray_start(head, env, root / "head.log"))
        # the second node may start as soon as the head's GCS listens (it retries until then)
        wait_until(lambda: _listens(address), procs[0], "Ray head", root / "head.log")
        second = ["--address", address, "--node-ip-address", HOST, "--resources", '{"node2": 1}']
        procs.append(_ray_start(second, env, root / "node2.log"))
        for proc, log in zip(procs, ("head.log", "node2.log")):
            wait_until(lambda log=log: _started(root / log), proc, f"Ray ({log})", root / log)
        yield cluster
    finally:
        for proc in reversed(procs):  # the second node first, then the head
            cluster.leftovers += stop_tree(proc)
        shutil.rmtree(root, ignore_errors=True)

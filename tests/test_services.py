"""Smoke tests of tests/services.py: each real service starts, serves, and stops by its own
PIDs with no process left behind. Start-up times are printed (pytest -s shows them)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest
from services import postgres_server, process_tree, ray_cluster, s3_server


def _gone(pids: list[int]) -> list[int]:
    """The PIDs of `pids` still running (a reused PID would be a different, newer process)."""
    return [pid for pid in pids if psutil.pid_exists(pid)]


def test_postgres_starts_serves_and_stops() -> None:
    import sqlalchemy

    start = time.monotonic()
    with postgres_server() as pg:
        print(f"PostgreSQL up in {time.monotonic() - start:.1f} s")
        pids = [p.pid for p in process_tree(pg.proc)]
        assert len(pids) >= 3  # runuser, the postmaster and its helpers
        engine = sqlalchemy.create_engine(pg.url)
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select 41 + 1")).scalar() == 42
        engine.dispose()
    assert pg.leftovers == [] and _gone(pids) == []


def test_s3_starts_serves_and_stops() -> None:
    start = time.monotonic()
    with s3_server(bucket="smoke") as s3:
        print(f"moto S3 up in {time.monotonic() - start:.1f} s")
        pids = [p.pid for p in process_tree(s3.proc)]
        client = s3.client()
        client.put_object(Bucket="smoke", Key="a/b.txt", Body=b"hello")
        assert client.get_object(Bucket="smoke", Key="a/b.txt")["Body"].read() == b"hello"
    assert s3.leftovers == [] and _gone(pids) == []


# a driver that joins the cluster and runs one task on each node
DRIVER = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
node = ray.remote(lambda: ray.get_runtime_context().get_node_id())
ids = ray.get([node.options(num_cpus=1).remote(), node.options(resources={"node2": 1}).remote()])
alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
print(len(alive), len(set(ids)), set(ids) <= set(alive))
"""


@pytest.mark.slow
def test_ray_cluster_has_two_nodes_and_stops_by_pid() -> None:
    start = time.monotonic()
    with ray_cluster() as cluster:
        print(f"2-node Ray cluster up in {time.monotonic() - start:.1f} s")
        pids = [p.pid for proc in cluster.procs for p in process_tree(proc)]
        assert (cluster.token_path.stat().st_mode & 0o777) == 0o600
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, cluster.address],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split()[-3:] == ["2", "2", "True"]  # 2 nodes, a task on each
        start = time.monotonic()
    print(f"stopped in {time.monotonic() - start:.1f} s")
    assert cluster.leftovers == [] and _gone(pids) == []

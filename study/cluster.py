"""Joining a Ray cluster safely: the auth token's file mode and an up-front `--address` check.

Ray 2.60 protects a cluster with a token (token mode: `RAY_AUTH_MODE=token`). A process finds
the token, in this order, in `RAY_AUTH_TOKEN` (the token itself), in the file that
`RAY_AUTH_TOKEN_PATH` names, or in `~/.ray/auth_token` (see Ray's `authentication` module; the
C++ loader reads the same three). Ray writes that default file with the umask's mode, 0644 on
most systems: every local user could read the token and run code on the cluster.
`private_token` makes the file in use 0600 (or, when the user cannot chmod it, points
`RAY_AUTH_TOKEN_PATH` at a 0600 copy), and before a local `ray.init` creates it 0600 itself.

A driver that joins a cluster through an explicit address never turns token mode on by itself,
so without `RAY_AUTH_MODE=token` Ray refuses it with a long ConnectionError. `check_address`
asks the cluster's GCS first, in a child process (Ray's client may abort a process whose token
file is missing), and turns every refusal into one line that says how to pass the token.
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

from errors import UserError
from study.internals import gcs_probe_code

AUTH_MODE = "RAY_AUTH_MODE"
AUTH_TOKEN = "RAY_AUTH_TOKEN"
AUTH_TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
PROBE_TIMEOUT_S = 30.0
TOKEN_HELP = (
    "export RAY_AUTH_MODE=token and give this driver the cluster's token: copy the head node's "
    "~/.ray/auth_token (mode 0600) here, or set RAY_AUTH_TOKEN_PATH to a file holding it"
)


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


def token_file(env: MutableMapping[str, str] | None = None) -> Path | None:
    """The token file Ray would read in this environment; None when the token is given in
    RAY_AUTH_TOKEN itself."""
    env = os.environ if env is None else env
    if env.get(AUTH_TOKEN):
        return None
    if env.get(AUTH_TOKEN_PATH):
        return Path(env[AUTH_TOKEN_PATH]).expanduser()
    return default_token_path()


def private_token(env: MutableMapping[str, str] | None = None, create: bool = False) -> Path | None:
    """Make the token file Ray will read readable by its owner only (0600) and return it.

    With `create` (before a local `ray.init`) a missing default file is created 0600 with a new
    256-bit token, so Ray never writes one with a looser mode. A file the user may not chmod is
    copied to a 0600 file of its own and `RAY_AUTH_TOKEN_PATH` in `env` points there."""
    env = os.environ if env is None else env
    path = token_file(env)
    if path is None:
        return None
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))  # Ray's own format: 256 bits, hex
        return path
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        try:
            path.chmod(0o600)
        except PermissionError:
            return _private_copy(path, env)
    return path


def _private_copy(path: Path, env: MutableMapping[str, str]) -> Path:
    fd, name = tempfile.mkstemp(prefix="ray-auth-token-")  # mkstemp: mode 0600
    with os.fdopen(fd, "w") as f:
        f.write(path.read_text())
    env[AUTH_TOKEN_PATH] = name
    return Path(name)


def _probe_command(address: str) -> list[str]:
    return [sys.executable, "-c", gcs_probe_code(PROBE_TIMEOUT_S / 2), address]


def _token_missing(env: MutableMapping[str, str]) -> str | None:
    """Token mode is on but no token can be read: where it was looked for (Ray's client would
    abort the process), else None."""
    if env.get(AUTH_MODE, "").lower() != "token" or env.get(AUTH_TOKEN):
        return None
    path = token_file(env)
    try:
        return None if path is not None and path.read_text().strip() else f"{path} is empty"
    except OSError:
        return f"no token in {AUTH_TOKEN}, and {path} cannot be read"


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r} is malformed; expected host:port of the head node")
    return host, int(port)


def check_address(address: str, env: MutableMapping[str, str] | None = None) -> None:
    """Before `ray.init(address=...)`: the cluster answers and accepts this driver's token;
    else one-line UserError (unreachable, or how to pass the token). `auto` is left to Ray."""
    env = os.environ if env is None else env
    if address == "auto":
        return
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise UserError(
            f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "expected the head node's host:port as `ray start --head` prints it"
        ) from None
    missing = _token_missing(env)
    if missing:
        raise UserError(f"--address {address}: RAY_AUTH_MODE=token but {missing}; {TOKEN_HELP}")
    try:
        probe = subprocess.run(
            _probe_command(address),
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"--address {address}: the Ray cluster did not answer in time") from None
    if probe.returncode == 0:
        return
    said = probe.stdout + probe.stderr
    if "InvalidAuthToken" in said or "AuthenticationError" in said:
        mode = env.get(AUTH_MODE, "").lower() == "token"
        why = "its token differs from this driver's" if mode else "it requires an auth token"
        raise UserError(
            f"--address {address}: the cluster refused this driver ({why}); {TOKEN_HELP}"
        )
    last = [line for line in said.strip().splitlines() if line.strip()][-1:] or ["no output"]
    raise UserError(f"--address {address}: not a Ray cluster that answers ({last[0][:200]})")

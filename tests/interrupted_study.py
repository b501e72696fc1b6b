"""One study interrupted with Ctrl-C at a terminal and resumed, made once per pytest session;
test_progress checks what its user saw, test_study what it left on disk.

A pytest plugin (as `real_study`): the modules that use `interrupted_study` name it in
`pytest_plugins = ["interrupted_study"]`, so the study (real Ray, three runs of the CLI under a
pseudo-terminal, a few minutes) is made once, however many modules use it.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy
from helpers import REPORT_TRIAL_ROWS, ROOT, SMALL_STUDY, cli_env, experiment_rows, kill_tree

from names import OPTUNA_DB

SPACE = "multi"
TRIALS = 3  # two at once: the third starts as the first ends
EPOCHS = int(SMALL_STUDY[SMALL_STUDY.index("--max-epochs") + 1])  # each trial's, 3
# epochs of a few seconds: Ray's graceful stop must land before a trial caught mid-way ends
LIMIT_TRAIN = 480
STUDY_ARGS = (
    *SMALL_STUDY,
    *("--limit-train", str(LIMIT_TRAIN), "--space", SPACE, "--num-samples", str(TRIALS)),
)


class Terminal:
    """`python -m study.run ...` under a pseudo-terminal: Ctrl-C reaches its foreground process
    group as a user's would. The output is read continuously (a full terminal would block)."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        import pexpect

        self.out = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "study.run", *args],
            cwd=str(ROOT),
            env=env,
            encoding="utf-8",
            dimensions=(40, 160),
        )
        self.child.logfile_read = self.out

    def pump(self, seconds: float = 0.3) -> None:
        import pexpect

        try:
            self.child.expect(pexpect.EOF, timeout=seconds)
        except pexpect.TIMEOUT:
            pass

    def wait_until(self, ready, timeout: float = 600) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and self.child.isalive():
            if ready():
                return
            self.pump()
        raise AssertionError(f"not reached before the study ended:\n{self.text()[-3000:]}")

    def finish(self, timeout: float = 300) -> int:
        """Read to the end; the exit status."""
        import pexpect

        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus

    def text(self) -> str:
        """What the terminal showed, without colour codes (colorama resets them at exit)."""
        return re.sub(r"\x1b\[[0-9;]*m", "", self.out.getvalue()).replace("\r\n", "\n")


class Watcher:
    """`python -m analysis.report --watch` beside the study (here, to share its Ray run): the
    report is rewritten as trials appear, reloads itself while the study runs, and the watcher
    ends by itself with a final page once the study's lock is released."""

    def __init__(self, folder: Path, out: Path) -> None:
        self.out = out
        self.pages: list[int] = []  # the trial rows of each page seen while the study ran
        self.torn: list[str] = []  # pages seen half-written or not reloading themselves
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "analysis.report", str(folder), "--watch", "--interval", "1"]
            + ["--no-figure-files", "--out", str(out)],
            cwd=str(ROOT),
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def sample(self) -> None:
        """Record the trial rows of the current page."""
        if self.out.exists():
            page = self.out.read_text(encoding="utf-8")
            # never half a file (temp file + rename); the study runs: the page reloads itself
            if not page.endswith("</html>\n") or "location.reload" not in page:
                self.torn.append(page[-500:])
            else:
                self.pages.append(int(REPORT_TRIAL_ROWS.search(page).group(1)))

    def finish(self) -> dict:
        """Wait for the watcher to end by itself; what it printed and its final page."""
        log, _ = self.proc.communicate(timeout=120)
        final = self.out.read_text(encoding="utf-8") if self.out.exists() else ""
        return {
            "status": self.proc.returncode,
            "log": log,
            "pages": self.pages,
            "torn": self.torn,
            "final": final,
        }


def driver_view(folder: Path) -> list[tuple[bool, int]]:
    """Each trial of the study's `SPACE` as the driver has taken it in so far: (ended, epochs),
    from the Optuna study it writes as each result and each end arrives. Ray copies result.json
    into the study folder only at its syncs, and a trial's checkpoint folder appears before the
    driver has the result: too late and too early to catch a moment."""
    import optuna

    read_only = f"sqlite:///file:{folder / OPTUNA_DB}?mode=ro&uri=true"  # never a write of ours
    try:
        study = optuna.load_study(study_name=SPACE, storage=read_only)
        trials = study.get_trials(deepcopy=False)
    except (KeyError, sqlalchemy.exc.OperationalError):  # not made yet, or locked by a write
        return []
    return [(t.state.is_finished(), len(t.intermediate_values)) for t in trials]


def moment_to_interrupt(folder: Path, watcher: Watcher) -> bool:
    """A trial has ended, another is mid-way (1 to `EPOCHS` - 1 epochs taken in), and the watcher
    has redrawn its page as trials appeared."""
    watcher.sample()
    trials = driver_view(folder)
    return (
        len(set(watcher.pages)) >= 2
        and any(ended for ended, _ in trials)
        and any(not ended and 1 <= epochs < EPOCHS for ended, epochs in trials)
    )


def _interrupt(folder: Path, report: Path, env: dict[str, str]) -> dict:
    """The first run, watched by `analysis.report --watch`: Ctrl-C once a trial has finished
    and another is mid-way."""
    first = Terminal(*STUDY_ARGS, "--storage", str(folder.parent), "--name", folder.name, env=env)
    watcher = None
    try:
        first.wait_until(lambda: f"Study {folder}" in first.text())  # it holds the lock now
        watcher = Watcher(folder, report)
        first.wait_until(lambda: moment_to_interrupt(folder, watcher))
        first.child.sendintr()
        status = first.finish()
        watched = watcher.finish()
    finally:
        if watcher is not None:
            kill_tree(watcher.proc)
    return {"first_status": status, "first_out": first.text(), "watched": watched}


def _resume(folder: Path, first_out: str, env: dict[str, str]) -> dict:
    """Resumed, then two Ctrl-C at once (it exits at once); then resumed to completion with the
    command the first run printed."""
    command = re.search(r"^Resume it with: (python -m study.run --resume \S+)$", first_out, re.M)
    args = command.group(1).split()[3:] if command else ["--resume", str(folder)]
    again = Terminal(*args, env=env)
    again.wait_until(lambda: "Resuming " in again.text())
    again.child.sendintr()
    again.pump(0.5)
    again.child.sendintr()
    started = time.time()
    again_status = again.finish(timeout=30)
    again_seconds = time.time() - started
    last = Terminal(*args, env=env)
    last_status = last.finish(timeout=600)
    return {
        "resume_command": command.group(1) if command else None,
        "again_status": again_status,
        "again_seconds": again_seconds,
        "again_out": again.text(),
        "status": last_status,
        "out": last.text(),
    }


@pytest.fixture(scope="session")
def interrupted_study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A `multi` study of 3 trials (`TRIALS`) x 3 epochs (synthetic, FIFO, 2 at once) run at a
    terminal beside `analysis.report --watch`, interrupted with Ctrl-C once a trial had finished and
    another was mid-way; resumed and interrupted twice at once; then resumed to completion.
    Returns the study folder, each run's output and exit status, the watcher's record, and the
    trials' epochs when interrupted (`before`) and at the end (`after`)."""
    root = tmp_path_factory.mktemp("interrupted")
    folder = root / "s"
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths; private
    env = cli_env(RAY_TMPDIR=ray_tmp, XDG_CACHE_HOME=str(root / "xdg"))
    try:
        record = _interrupt(folder, root / "report.html", env)
        (root / "first.log").write_text(record["first_out"])  # kept by pytest for a look
        record["before"] = experiment_rows(folder / SPACE)
        record.update(_resume(folder, record["first_out"], env))
        (root / "resumed.log").write_text(record["out"])
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return {
        **record,
        "dir": folder,
        "limit_train": LIMIT_TRAIN,
        "trials": TRIALS,
        "after": experiment_rows(folder / SPACE),
    }

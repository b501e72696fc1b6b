"""Before an experiment is restored: the last result row that a lost driver never saved.

A trial's checkpoint reaches the study's storage from the node that trains it; its result row
reaches `result.json` from the driver, which syncs the trial folders up every few seconds. A driver
lost in between (kill -9 of the head, with the study in object storage) can leave a trial whose
experiment state and checkpoint have reached epoch n while its result file stops at n - 1. Ray
restores that trial after epoch n and never reports n again, so the study would record it one
epoch short, as if it had stopped early. The experiment state keeps each trial's last result:
`lost_last_rows` finds the trials whose result file lacks exactly that row, and `restore_rows`
appends it (to the study's storage, and to the local copy it was read from), before Ray
downloads the result files to restore the experiment.

The same loss can cut a trial's log short mid-line: the driver writes `result.json` and
`progress.csv` in its own staging folder and copies them to the study's storage, and a copy cut
short ends with part of a row. Ray restores the file as it finds it and appends the next row to
that fragment, which leaves a line no reader can parse (pandas refuses the whole `progress.csv`).
`restore_rows` therefore cuts such a fragment first (`whole_lines`); the row it was a copy of is
the lost last row above, or is reported again by the trial. Nothing else is ever rewritten.

This module is the one reader of Ray's trial records: a trial's `result.json`
(`read_result_rows`, for the analysis too) and the experiment state (`trial_entries`): the trials it
restores (`saved_trial_ids`) and those that ended (`ended_trials`, whose outcome the runner
makes sure Optuna has heard: see study.search.close_ended_trials).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from names import PROGRESS_FILE, RESULT_FILE, TRIAL_PREFIX
from studyfiles import storage

ITERATION = "training_iteration"  # Ray's epoch counter in every result
ENDED = ("TERMINATED", "ERROR")  # Ray's statuses of a trial that will not run again
ERRORED = "ERROR"
TRIAL_LOGS = (RESULT_FILE, PROGRESS_FILE)  # appended by the driver, a line per epoch


def trial_entries(folder: Path) -> list | None:
    """The trial entries of the newest experiment state at `folder` (Ray's `trial_data`: per
    trial, its JSON metadata and runtime state); None when there is none or it is unreadable."""
    states = sorted(folder.glob("experiment_state-*.json"))
    try:
        return json.loads(states[-1].read_text())["trial_data"] if states else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _parsed(folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each trial entry of the newest experiment state as (metadata with `trial_id` and
    `status`, runtime state with `last_result`); an entry that does not parse is left out."""
    parsed = []
    for entry in trial_entries(folder) or []:
        try:
            meta, runtime = json.loads(entry[0]), json.loads(entry[1])
            if isinstance(meta, dict) and isinstance(runtime, dict) and "trial_id" in meta:
                parsed.append((meta, runtime))
        except (ValueError, TypeError, IndexError):
            continue
    return parsed


def saved_trial_ids(folder: Path) -> frozenset[str]:
    """The trials Ray will restore from the experiment state at `folder`."""
    return frozenset(meta["trial_id"] for meta, _ in _parsed(folder))


def ended_trials(folder: Path) -> dict[str, tuple[dict[str, Any] | None, bool]]:
    """{Ray trial id: (its last result, None before its first; whether it errored)} for each
    trial the newest experiment state at `folder` records as ended; empty when there is none
    or it is unreadable (an entry that does not parse is left out)."""
    return {
        meta["trial_id"]: (runtime.get("last_result") or None, meta.get("status") == ERRORED)
        for meta, runtime in _parsed(folder)
        if meta.get("status") in ENDED
    }


def lost_last_rows(folder: Path) -> dict[str, dict[str, Any]]:
    """{trial folder: its last result} for each trial of the experiment at `folder` (a local
    copy) whose result file ends one epoch before the last result of its experiment state."""
    lost = {}
    for meta, runtime in _parsed(folder):
        last = runtime.get("last_result") or {}
        name = f"{TRIAL_PREFIX}{meta['trial_id']}"
        rows = _iterations(folder / name / RESULT_FILE)
        if rows is not None and last.get(ITERATION) == max(rows, default=0) + 1:
            lost[name] = last
    return lost


def _iterations(path: Path) -> list[int] | None:
    """The epochs a result file records; None when there is no file to compare with."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    found = []
    for line in lines:
        try:
            found.append(int(json.loads(line)[ITERATION]))
        except (ValueError, KeyError, TypeError):
            continue  # a fragment: restore_rows cuts it
    return found


def read_result_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a `result.json`, one per line, and how many lines were skipped.

    A truncated or garbled line (a study killed mid-write, or still writing) is skipped, not
    fatal; a missing file reads as no rows.
    """
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return [], 0
    rows: list[dict[str, Any]] = []
    skipped = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            skipped += 1
    return rows, skipped


def whole_lines(text: str, name: str) -> str:
    """`text` of a trial log `name` without a last line that a copy cut short: a last line
    without its newline is kept (the newline added) only when it is a whole row of
    `result.json` (a JSON object); any other is a fragment and is cut."""
    head, _, tail = text.rpartition("\n")
    if not tail:
        return text
    if name == RESULT_FILE and isinstance(_json_or_none(tail), dict):
        return text + "\n"
    return head + "\n" if head else ""


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def restore_rows(folder: Path, loc: storage.Location) -> list[str]:
    """Mend each trial's logs in the experiment's storage `loc` and in the local copy `folder`:
    cut a fragment at their end (`whole_lines`), then append each lost last row (see
    `lost_last_rows`) to its result file. Returns the trials whose row was appended."""
    lost = lost_last_rows(folder)
    for trial in sorted(folder.glob(f"{TRIAL_PREFIX}*")):
        for name in TRIAL_LOGS:
            try:
                text = (trial / name).read_text()
            except OSError:
                continue
            mended = whole_lines(text, name)
            if name == RESULT_FILE and trial.name in lost:
                mended += json.dumps(lost[trial.name]) + "\n"
            if mended != text:
                storage.write_text(loc.child(trial.name, name), mended)
                if not loc.is_local:
                    (trial / name).write_text(mended)
    return sorted(lost)

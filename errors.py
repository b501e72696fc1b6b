"""Errors a user can cause (bad paths, names, numbers, layouts, storage, addresses).

Dependency-free, so that every layer (`trainables`, `study`, and `analysis` when it reads a study
from object storage) raises the same class. They are raised deep inside the library but caught at
the CLI, which prints their one-line message and exits with status 2 instead of a traceback.
`AnalysisError` is the analysis's (a folder that is not a study, an empty one, a missing run):
a `ValueError`, not a `UserError`, as it always was, so code that catches one never catches the
other; the analysis's CLIs print it as one line and exit 2. Anything else is an internal error
and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: the message names it and says what was expected."""


class AnalysisError(ValueError):
    """Input that cannot be analysed; the message is one line that says why."""

"""Errors a user can cause: `UserError` (defined in the dependency-free top-level `errors`
module, so that `analysis` can catch the storage layer's errors without importing trainables)."""

from __future__ import annotations

from errors import UserError

__all__ = ["UserError"]

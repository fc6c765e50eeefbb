"""User-facing errors: one clear message that says what was wrong and how to fix it.

Entry points catch :class:`UserError` (also when Hydra's ``instantiate`` wraps it) and print its
message instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """An error caused by the user's input (configuration, paths, data), not by a bug."""


class ConfigError(UserError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataNotFoundError(UserError, FileNotFoundError):
    """A dataset is missing and could not be downloaded."""


class CheckpointError(UserError):
    """A checkpoint path does not exist or is not a stn_fovea checkpoint."""


def find_user_error(error: BaseException) -> UserError | None:
    """The :class:`UserError` behind ``error``, following the ``__cause__``/``__context__`` chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def user_errors_exit(exit_code: int = 2) -> Iterator[None]:
    """Turn a :class:`UserError` into a message on stderr and an exit code.

    The error may arrive wrapped (Hydra's ``instantiate``, an OmegaConf resolver, a Lightning hook):
    the exception chain is searched; anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except Exception as error:
        cause = find_user_error(error)
        if cause is None:
            raise
        print(f"stn_fovea: error: {cause}", file=sys.stderr)
        sys.exit(exit_code)


def short_reason(error: BaseException) -> str:
    """The informative line of an error message (Hydra's instantiate wraps the cause in several lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("full_key:", "Error in call to target"))]
    return lines[-1] if lines else type(error).__name__

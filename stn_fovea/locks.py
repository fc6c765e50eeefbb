"""An advisory file lock for work that parallel processes must do one at a time (the first to come
does it, the others then find it done): writing the zoo's manifest, downloading MNIST."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), waiting for another holder; where the
    system has no POSIX locks (Windows), no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield

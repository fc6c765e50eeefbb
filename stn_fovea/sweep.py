"""One failing job must not stop a sweep: jobs record their failure, the sweep lists them at the end.

Inside a multirun, ``train`` catches a job's error (a bad value, a crash, a diverged loss), writes its
one-line message to ``<job dir>/FAILED`` and returns no value (None) to the sweeper, so the other jobs
run to their end. :class:`FailureSummary`, a Hydra callback (``conf/hydra/default.yaml``), reads those
files when the sweep ends, prints one line per failed job and exits non-zero. Files, not memory,
because the joblib and submitit launchers run jobs in other processes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from stn_fovea.errors import find_user_error

FAILURE_FILE = "FAILED"


def in_multirun() -> bool:
    """True inside a job of a Hydra multirun (``-m``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def one_line(error: BaseException) -> str:
    """The message a user needs: a user error's own text, else the exception's type and first line."""
    cause = find_user_error(error)
    if cause is not None:
        return str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def record_failure(job_dir: Path, message: str, details: str = "") -> None:
    """Write the job's one-line error, then the details (its traceback), to ``<job dir>/FAILED``."""
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / FAILURE_FILE).write_text(f"{message}\n{details}")


def failed_jobs(sweep_dir: Path) -> list[tuple[str, str]]:
    """(job directory name, one-line message) of every failed job under a sweep directory."""
    return [
        (path.parent.name, path.read_text().splitlines()[0])
        for path in sorted(Path(sweep_dir).rglob(FAILURE_FILE))
    ]


class FailureSummary(Callback):
    """At the end of a multirun: one line per failed job, then exit status 1 if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        failures = failed_jobs(Path(config.hydra.sweep.dir))
        if not failures:
            return
        print(f"stn_fovea: {len(failures)} job(s) of the sweep failed:", file=sys.stderr)
        for job, message in failures:
            print(f"  {job}: {message}", file=sys.stderr)
        sys.exit(1)

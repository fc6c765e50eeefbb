"""Third-party notices that a user of stn_fovea cannot act on, silenced at start-up by their exact text
(never a whole category of warnings): anything else still prints."""

from __future__ import annotations

import logging
import warnings

# Lightning 2.6's own use of torch's pytree API, deprecated in torch 2.15: nothing in our code or config
IGNORED_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)
# Lightning's advertisements for its cloud services, printed at every run
IGNORED_INFO = ("💡 Tip: For seamless cloud logging", "💡 Tip: For seamless cloud uploads")
LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class DropNotices(logging.Filter):
    """Drops the log records that start with one of ``IGNORED_INFO``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(IGNORED_INFO)


def silence_notices() -> None:
    """Silence the notices above for this process (idempotent)."""
    for pattern in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(existing, DropNotices) for existing in logger.filters):
        logger.addFilter(DropNotices())

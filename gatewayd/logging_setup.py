"""Log format for every entry point: plain lines for the journal, timestamps elsewhere."""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["setup_logging"]


def setup_logging(level: str = "info") -> None:
    # Under systemd the journal adds time and unit; elsewhere show the time ourselves.
    under_journal = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s" if under_journal else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=getattr(logging, level.upper()), format=fmt, stream=sys.stderr, force=True)
    logging.getLogger("asyncio").setLevel(logging.WARNING)

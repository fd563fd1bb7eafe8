"""Giving back the memory that start-up used and freed.

Start-up frees about 9 MB in the middle of the C heap, nearly all of it what biip leaves
when it is imported and decodes its GS1 prefix tables (the decompressed JSON text and the
parser's work); the rest is the config parse and, without ``.pyc`` files, the compiler's
work on every module. The C library keeps such free memory for later ``malloc`` calls
rather than giving it back, so it stays counted in the process's RSS for as long as the
daemon runs, although nothing uses it. :func:`release_freed_memory` asks glibc's
``malloc_trim`` to give the free pages back; memory in use is untouched, and pages are
taken again as needed. Elsewhere (musl, another C library) it does nothing.
"""

from __future__ import annotations

import ctypes
import logging

__all__ = ["release_freed_memory"]

log = logging.getLogger("gatewayd")


def release_freed_memory() -> bool:
    """Return the C heap's free pages to the system; False where ``malloc_trim`` is missing."""
    try:
        # The running interpreter has the C library loaded already: look the symbol up there.
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    released = bool(trim(0))
    log.debug("memory freed during start-up %s to the system", "returned" if released else "was already returned")
    return True

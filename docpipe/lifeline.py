"""Worker processes that die with their parent, a memory ceiling per worker, and SIGTERM treated as Ctrl-C.

A parent killed with ``kill -9`` runs no cleanup, so its pool workers (and, through them, multiprocessing's
resource tracker, which exits when the last holder of its pipe does) would live on under PID 1. Each worker
therefore asks the kernel for SIGKILL when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``) and also runs a
watchdog thread on its parent's pid (other systems; and the moment before prctl took effect).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

PR_SET_PDEATHSIG = 1
#: Environment variable with the ceiling, in MB, on the memory one worker process may take (0: none).
MEMORY_ENV = "DOCPIPE_WORKER_MEMORY_MB"
DEFAULT_WORKER_MEMORY_MB = 1536


def tie_to_parent(parent_pid: int, kernel: bool = True) -> None:
    """End this process when ``parent_pid`` (its parent) ends, however it ends. ``kernel=False`` for a pool
    started from a short-lived thread: Linux sends the parent-death signal when that *thread* ends."""
    if kernel and sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="docpipe-parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


def worker_memory_mb() -> int:
    """The per-worker ceiling in MB from DOCPIPE_WORKER_MEMORY_MB (default 1536; 0 turns it off)."""
    try:
        return max(0, int(os.environ.get(MEMORY_ENV, DEFAULT_WORKER_MEMORY_MB)))
    except ValueError:
        return DEFAULT_WORKER_MEMORY_MB


def limit_memory(mb: int) -> None:
    """Cap this process's heap (RLIMIT_DATA): past it an allocation fails, Python raises MemoryError (MuPDF and
    Pillow report theirs), and the document in hand is marked too_large while the worker goes on."""
    if mb <= 0:
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = mb << 20
        resource.setrlimit(resource.RLIMIT_DATA, (min(limit, hard) if hard != resource.RLIM_INFINITY else limit,
                                                  hard))
    except (ImportError, ValueError, OSError):
        pass


def init_worker(parent_pid: int, memory_mb: int) -> None:
    """Pool initializer: die with the parent, leave Ctrl-C to the parent, keep under the memory ceiling."""
    tie_to_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(memory_mb)


def pool_initargs() -> tuple[Any, ...]:
    """(parent pid, memory ceiling) for ``init_worker``, read in the parent."""
    return os.getpid(), worker_memory_mb()


_terminated = False


def exit_code_for_interrupt() -> int:
    """128 + the signal that stopped the run: 143 after SIGTERM, 130 after Ctrl-C."""
    return 128 + (signal.SIGTERM if _terminated else signal.SIGINT)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, systemd): handled like Ctrl-C, so the run flushes and stops."""


def terminate_like_interrupt() -> None:
    """Install a SIGTERM handler that raises Terminated once (a second SIGTERM during the flush is ignored)."""

    def handler(signum: int, frame: Any) -> None:
        global _terminated
        _terminated = True
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)

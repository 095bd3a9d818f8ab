"""How a run stops: signals ask the loop to stop at the next step boundary (a checkpoint is written first); a second
Ctrl-C stops at once; a sweep worker whose launcher died stops as if it had been sent SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from bnrepro import EXIT_INTERRUPTED

log = logging.getLogger("bnrepro")
# Set by the sweep's launcher (preflight.Preflight.on_multirun_start) for the workers it starts.
LAUNCHER_ENV = "BNREPRO_LAUNCHER_PID"


class Stop:
    """Set by a signal handler; the loop stops at the next step boundary (a checkpoint is written first). `chain`:
    the handler the signal had before the run (submitit's, which requeues the job), called once the run has written
    everything. `abort`: what a second Ctrl-C does before the process exits (the run marks itself interrupted)."""

    signal: str | None = None
    signum: int | None = None
    chain = None
    abort: Callable[[], None] | None = None


_running = threading.Event()  # a run is between its first and its last write


@contextmanager
def signals_stop(stop: Stop):
    """Ctrl-C, SIGTERM (a scheduler), SIGUSR1 or SIGUSR2 (SLURM before preemption or the time limit; submitit's
    default is USR2) ask the loop to stop after the current step. A second Ctrl-C stops at once, with one line: the
    last checkpoint is what the same command resumes from (every file is written atomically, so none is half
    written)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.signal is not None and signum == signal.SIGINT:
            try:
                if stop.abort is not None:
                    stop.abort()
            finally:
                print("bnrepro: second Ctrl-C: stopped at once; the same command resumes from the last checkpoint",
                      file=sys.stderr, flush=True)
                os._exit(EXIT_INTERRUPTED)
        stop.signal, stop.signum = signal.Signals(signum).name, signum
        chain = previous.get(signum)
        foreign = callable(chain) and chain is not signal.default_int_handler
        stop.chain = chain if foreign else None

    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
    previous = {s: signal.signal(s, handler) for s in wanted}
    _running.set()
    try:
        yield
    finally:
        _running.clear()
        for s, h in previous.items():
            signal.signal(s, h)


_watching = False


def end_with_launcher(poll_s: float = 0.5, grace_s: float = 300.0) -> bool:
    """In a sweep worker (a process the launcher started, which LAUNCHER_ENV names): a watchdog thread that, once the
    worker's parent is gone (killed with SIGKILL, say), stops the run under way as SIGTERM would (checkpoint, run.json
    `interrupted`) and ends the process; an idle worker ends at once. Returns whether it watches. Once per process."""
    global _watching
    launcher = os.environ.get(LAUNCHER_ENV, "")
    if _watching or not launcher.isdigit() or int(launcher) == os.getpid():
        return _watching
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        if _running.is_set():
            log.warning("the sweep's launcher (pid %d) is gone: stopping this run at its next step", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while _running.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the run's last lines (its log) reach the file
        os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="bnrepro-launcher-watchdog", daemon=True).start()
    _watching = True
    return True

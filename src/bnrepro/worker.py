"""Evaluation and probes beside training, on a copy of the weights taken at the step they are due.

The MLP's steps are too small to gain from a second intra-op thread, while one 10k-image evaluation costs as
much as ~30 steps. So where a job has a core to spare, the loop copies its weights and buffers into a shadow model
(~20 small copies) and goes on training while the worker measures the shadow. The shadow holds exactly the state
the model had at that step, and the kernels are the same, so the numbers are the same as measuring in line
(tests/test_eval_worker.py); only when they arrive differs, and the loop records them under their own step.

Two kinds of worker:
- "process" (Linux): a child forked once, before W&B starts; the shadows live in shared memory and a pipe carries
  (step, what to measure) one way and the results the other. It shares no GIL with training. A thread does, and
  the GIL changes hands at every torch call: on this VM the probe's ~30 small torch calls at 25% duty slowed
  training by 13-21% from a thread and by 2-10% from a process (`python experiments/bench.py --only contention`).
- "thread": the same in a thread, where fork is not safe (macOS, Windows) or on a GPU (no fork after CUDA starts).
"""

from __future__ import annotations

import copy
import multiprocessing
import signal
import sys
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, NoReturn

import torch
from torch import nn

KINDS = ("process", "thread")
CAN_FORK = sys.platform.startswith("linux")  # fork is not safe with torch on macOS; Windows has none


class WorkerError(RuntimeError):
    """The worker process ended, or a measurement raised in it (its type, message and traceback are in the text)."""


class EventWorker:
    """Measurements run in order, one at a time, each on its own snapshot. `submit(*args)` copies the model into a
    free shadow and runs `measure(shadow, shadow_probe, *args)` in the worker; `ready()` returns what has finished.
    Two shadows let a second measurement be queued while the first runs (an evaluation and a probe take ~30 ms, a
    probe is due every ~40 ms of training), so training seldom waits."""

    def __init__(self, model: nn.Module, make_probe: Callable[[nn.Module], Any], measure: Callable[..., Any],
                 kind: str = "process", threads: int = 1, shadows: int = 2):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self._src = [*model.parameters(), *model.buffers()]
        self.shadows = [copy.deepcopy(model).requires_grad_(False) for _ in range(shadows)]
        if kind == "process":
            for shadow in self.shadows:
                shadow.share_memory()  # the parent writes each snapshot, the child reads it
        self._dst = [[*shadow.parameters(), *shadow.buffers()] for shadow in self.shadows]
        self.probes = [make_probe(shadow) for shadow in self.shadows]
        for probe in self.probes[1:]:  # one probe as far as its state goes (the moments deltas() compares with)
            if probe is not None:
                probe.last_moments = self.probes[0].last_moments
        run = lambda i, *args: measure(self.shadows[i], self.probes[i], *args)  # noqa: E731
        self._executor = _ForkExecutor(run, threads) if kind == "process" else _ThreadExecutor(run, threads)
        self._inflight: deque = deque()
        self._submitted = 0
        self.wait_s = 0.0  # time the training thread spent waiting for results or copying weights

    def submit(self, *args) -> list:
        """Queue a measurement of the model as it is now; returns the measurements that had to finish first to
        free a shadow."""
        done = []
        while len(self._inflight) >= len(self.shadows):
            done += self._pop()
        t = time.perf_counter()
        i = self._submitted % len(self.shadows)  # in-order execution: this shadow's previous job has finished
        with torch.no_grad():
            torch._foreach_copy_(self._dst[i], self._src)
        self._inflight.append(self._executor.submit(i, args))
        self._submitted += 1
        self.wait_s += time.perf_counter() - t
        return done

    def ready(self, wait: bool = False) -> list:
        """The finished measurements, oldest first; with wait=True, all of them. One that raised re-raises here."""
        done = []
        while self._inflight and (wait or self._executor.done(self._inflight[0])):
            done += self._pop()
        return done

    def _pop(self) -> list:
        t = time.perf_counter()
        handle = self._inflight.popleft()
        try:
            return [self._executor.result(handle)]
        finally:
            self.wait_s += time.perf_counter() - t

    def close(self) -> None:
        self._inflight.clear()
        self._executor.close()


class _ThreadExecutor:
    def __init__(self, run: Callable[..., Any], threads: int):
        # Intra-op threads are per thread (OpenMP): the worker sets its own.
        self._run = run
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bnrepro-events", initializer=torch.set_num_threads,
                                        initargs=(threads,))

    def submit(self, i: int, args: tuple):
        return self._pool.submit(self._run, i, *args)

    def done(self, future) -> bool:
        return future.done()

    def result(self, future):
        return future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _ForkExecutor:
    """One forked child that runs the jobs in the order they were sent; handles are sequence numbers."""

    def __init__(self, run: Callable[..., Any], threads: int):
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self._conn, run, threads), name="bnrepro-events",
                                 daemon=True)
        self._proc.start()
        child.close()
        self._sent = self._received = 0
        self._results: dict[int, tuple[bool, Any]] = {}

    def submit(self, i: int, args: tuple) -> int:
        try:
            self._conn.send((i, args))
        except OSError:  # a broken pipe: the child is gone
            self._ended()
        self._sent += 1
        return self._sent - 1

    def done(self, handle: int) -> bool:
        while self._received <= handle and self._conn.poll():
            self._take()
        return self._received > handle

    def result(self, handle: int):
        while self._received <= handle:
            self._take()
        ok, value = self._results.pop(handle)
        if not ok:
            raise WorkerError(value)
        return value

    def _take(self) -> None:
        try:
            message = self._conn.recv()
        except (EOFError, OSError):
            self._ended()
        self._results[self._received] = message
        self._received += 1

    def _ended(self) -> NoReturn:
        self._proc.join(timeout=1)
        raise WorkerError(f"the evaluation worker process ended (exit code {self._proc.exitcode})") from None

    def close(self) -> None:
        try:
            self._conn.send(None)
        except OSError:
            pass  # already gone
        self._conn.close()
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def _serve(conn, parent_end, run: Callable[..., Any], threads: int) -> None:
    # The parent decides when this ends: Ctrl-C or a scheduler's SIGTERM reaches the whole process group, and the
    # parent then records what is in flight and closes the pipe (a parent killed outright closes it too).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent_end.close()  # else the pipe would never read as closed here
    torch.set_num_threads(threads)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        i, args = message
        try:
            reply = (True, run(i, *args))
        except Exception as e:  # the parent raises it, with this traceback
            reply = (False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        conn.send(reply)

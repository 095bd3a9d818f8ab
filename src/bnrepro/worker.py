"""Evaluation and probes in a second thread, on a copy of the weights taken at the step they are due.

The MLP's steps are too small to gain from a second intra-op thread, while one 10k-image evaluation costs as
much as ~30 steps. So where a job has a core to spare, the loop copies its weights and buffers into a shadow model
(~20 small copies) and goes on training while this thread measures the shadow. The shadow holds exactly the state
the model had at that step, and the kernels are the same, so the numbers are the same as measuring in line
(tests/test_eval_thread.py); only when they arrive differs, and the loop records them under their own step.
PyTorch releases the GIL inside its kernels, so the two threads overlap.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import torch
from torch import nn


class EventWorker:
    """Measurements run in order, one at a time, each on its own snapshot. `submit(job)` copies the model into a
    free shadow and runs `job(shadow, shadow_probe)` in the thread; `ready()` returns what has finished. Two shadows
    let a second measurement be queued while the first runs (an evaluation and a probe take ~30 ms, a probe is due
    every ~40 ms of training), so the training thread seldom waits."""

    def __init__(self, model: nn.Module, make_probe: Callable[[nn.Module], Any], threads: int = 1, shadows: int = 2):
        self._src = [*model.parameters(), *model.buffers()]
        self.shadows = [copy.deepcopy(model).requires_grad_(False) for _ in range(shadows)]
        self._dst = [[*shadow.parameters(), *shadow.buffers()] for shadow in self.shadows]
        self.probes = [make_probe(shadow) for shadow in self.shadows]
        for probe in self.probes[1:]:  # one probe as far as its state goes (the moments deltas() compares with)
            if probe is not None:
                probe.last_moments = self.probes[0].last_moments
        # Intra-op threads are per thread (OpenMP): the worker sets its own.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bnrepro-events", initializer=torch.set_num_threads,
                                        initargs=(threads,))
        self._inflight: deque[Future] = deque()
        self._submitted = 0
        self.wait_s = 0.0  # time the training thread spent waiting for results or copying weights

    def submit(self, job: Callable[[nn.Module, Any], Any]) -> list:
        """Queue `job` on a snapshot of the model as it is now; returns the measurements that had to finish first
        to free a shadow."""
        done = []
        while len(self._inflight) >= len(self.shadows):
            done += self._pop()
        t = time.perf_counter()
        i = self._submitted % len(self.shadows)  # in-order execution: this shadow's previous job has finished
        with torch.no_grad():
            torch._foreach_copy_(self._dst[i], self._src)
        self._inflight.append(self._pool.submit(job, self.shadows[i], self.probes[i]))
        self._submitted += 1
        self.wait_s += time.perf_counter() - t
        return done

    def ready(self, wait: bool = False) -> list:
        """The finished measurements, oldest first; with wait=True, all of them. One that raised re-raises here."""
        done = []
        while self._inflight and (wait or self._inflight[0].done()):
            done += self._pop()
        return done

    def _pop(self) -> list:
        t = time.perf_counter()
        future = self._inflight.popleft()
        try:
            return [future.result()]
        finally:
            self.wait_s += time.perf_counter() - t

    def close(self) -> None:
        for future in self._inflight:
            future.cancel()
        self._inflight.clear()
        self._pool.shutdown(wait=True)

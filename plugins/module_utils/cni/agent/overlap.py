# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The agent's IPAM helper threads (invoke.background_runner).

A bridge ADD spends ~2.6 ms in the kernel creating the veth pair and a DEL
~20 ms deleting it; the worker thread waits in a syscall and holds no GIL.
Its IPAM delegate (host-local in-process: flock, lease file, last_reserved;
~1 ms) runs meanwhile on a helper (invoke.PendingDelegate).

A fixed set of helpers (one per worker), all started by the agent's main
thread, which never leaves the agent's network namespace, and a helper
never enters another: a delegate runs where the caller is, as in an exec'd
plugin (an exec'd IPAM plugin inherits the helper's namespace). Each still
checks before every job; one that is elsewhere runs nothing (the worker
then runs the job itself) and retires. No helper free: the worker runs the
delegate itself, in Go's order. Helpers are daemon threads: on SIGTERM the
workers wait for the jobs of their in-flight calls, and nothing else runs.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, List, Optional, Tuple

THREAD_NETNS = "/proc/thread-self/ns/net"


def _ns_id() -> Tuple[int, int]:
    st = os.stat(THREAD_NETNS)
    return st.st_dev, st.st_ino


class _Job:
    """One job on a helper; result() waits for it (or runs it, if the helper could not)."""

    def __init__(self, pool: "Helpers", helper: "_Helper", fn: Callable[[], object]) -> None:
        self.pool, self.helper, self.fn = pool, helper, fn
        self.ran = False
        self.value: object = None
        self.error: Optional[BaseException] = None
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting worker
            self.error = e
        finally:
            self.ran = True

    def result(self) -> object:
        self.done.acquire()  # released by the helper once the job ran (or was refused)
        helper, self.helper = self.helper, None
        if helper is not None:
            self.pool._give_back(helper)
        if not self.ran:
            return self.fn()  # the helper was not in the agent's namespace: here, in order
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.value


class _Helper:
    def __init__(self, pool: "Helpers") -> None:
        self.pool = pool
        self.job: Optional[_Job] = None
        self.go = threading.Lock()
        self.go.acquire()
        self.retired = False
        self.thread = threading.Thread(target=self._loop, name="nodenet-agent-ipam", daemon=True)

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            job, self.job = self.job, None
            if job is None:
                return  # stop()
            try:
                if not self.retired and self._at_home():
                    job.run()
                else:
                    self.retired = True  # never again: the job runs on its worker
            finally:
                job.done.release()
            if self.retired:
                return

    def _at_home(self) -> bool:
        try:
            return _ns_id() == self.pool.home
        except OSError:
            return False


class Helpers:
    """`size` helper threads; start(fn) -> a job handle, or None when none is free."""

    def __init__(self, size: int) -> None:
        self.home = _ns_id()
        self.lock = threading.Lock()
        self.idle: List[_Helper] = []
        self.all: List[_Helper] = []
        self.retired = 0
        for _i in range(max(0, size)):
            helper = _Helper(self)
            self.all.append(helper)
            self.idle.append(helper)
        for helper in self.all:
            helper.thread.start()

    def start(self, fn: Callable[[], object]) -> Optional[_Job]:
        with self.lock:
            if not self.idle:
                return None
            helper = self.idle.pop()
        job = _Job(self, helper, fn)
        helper.job = job
        helper.go.release()
        return job

    def _give_back(self, helper: _Helper) -> None:
        with self.lock:
            if helper.retired:
                self.retired += 1
            else:
                self.idle.append(helper)

    def counts(self) -> Tuple[int, int]:
        """(helpers not retired, of them idle)."""
        with self.lock:
            return len(self.all) - self.retired, len(self.idle)

    def stop(self) -> None:
        """End the idle helpers (tests and a clean exit; busy ones end with the process)."""
        with self.lock:
            idle, self.idle = self.idle, []
        for helper in idle:
            helper.job = None
            helper.go.release()
        for helper in idle:
            helper.thread.join(timeout=5)

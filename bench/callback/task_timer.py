# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-task wall time of a playbook run, for bench/bench_rollout.py (what
ansible.posix.profile_tasks prints, as JSON, without that collection), and
the CPU time each task cost."""

from __future__ import annotations

DOCUMENTATION = r"""
name: task_timer
type: aggregate
short_description: Per-task wall and CPU time as JSON (bench only)
description:
  - Records the wall time of every task (from its start to the next task's start, as profile_tasks does) and writes
    them with the run's total to the file named by E(NODENET_TASK_TIMER_JSON) when the playbook ends.
  - Also the CPU seconds of each task, split into the controller's main process (templating, includes, results)
    and its workers with everything they waited for (the connection's commands, the modules on a lab node).
    A worker's CPU is counted once it is reaped; the next task's start reaps the workers of the one before (with
    the linear strategy they have all sent their results by then).
"""

import json
import multiprocessing
import os
import resource
import time

from ansible.plugins.callback import CallbackBase

JOIN_SECONDS = 2.0  # at most, per task, for the workers that sent their result to exit


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.start = time.monotonic()
        self.tasks = []  # [name, role, started, ended, main cpu, workers cpu]
        self.current = None

    def _close(self) -> None:
        if self.current is None:
            return
        deadline = time.monotonic() + JOIN_SECONDS
        for child in multiprocessing.active_children():  # (reaps the exited ones)
            child.join(max(0.0, deadline - time.monotonic()))
        self.current[3] = time.monotonic()
        self.current[4] = _cpu(resource.RUSAGE_SELF) - self.current[4]
        self.current[5] = _cpu(resource.RUSAGE_CHILDREN) - self.current[5]
        self.tasks.append(self.current)
        self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        # get_name() has the role prefix
        self.current = [task.get_name(), "", time.monotonic(), None, _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)]

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("NODENET_TASK_TIMER_JSON")
        if not path:
            return
        out = {
            "total": time.monotonic() - self.start,
            "tasks": [
                {"name": name, "role": role, "seconds": ended - started, "main_cpu": main, "workers_cpu": workers}
                for name, role, started, ended, main, workers in self.tasks
            ],
        }
        with open(path, "w") as f:
            json.dump(out, f, indent=1)

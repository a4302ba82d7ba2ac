# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-task wall time of a playbook run, for bench/bench_rollout.py (what
ansible.posix.profile_tasks prints, as JSON, without that collection)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: task_timer
type: aggregate
short_description: Per-task wall time as JSON (bench only)
description:
  - Records the wall time of every task (from its start to the next task's start, as profile_tasks does) and writes
    them with the run's total to the file named by E(NODENET_TASK_TIMER_JSON) when the playbook ends.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.start = time.monotonic()
        self.tasks = []  # [name, role, started, ended]
        self.current = None

    def _close(self) -> None:
        if self.current is not None:
            self.current[3] = time.monotonic()
            self.tasks.append(self.current)
            self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = [task.get_name(), "", time.monotonic(), None]  # get_name() has the role prefix

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("NODENET_TASK_TIMER_JSON")
        if not path:
            return
        out = {
            "total": time.monotonic() - self.start,
            "tasks": [{"name": name, "role": role, "seconds": ended - started} for name, role, started, ended in self.tasks],
        }
        with open(path, "w") as f:
            json.dump(out, f, indent=1)

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The test tree itself: pytest imports test modules by basename (tests/ has no
packages), so two modules of one name in tests/unit and tests/integration make
the whole run stop at collection ("import file mismatch"); each suite run alone
would not show it."""

from __future__ import annotations

import collections
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_no_two_test_modules_share_a_basename():
    seen = collections.defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(TESTS):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "output")]
        for name in filenames:
            if name.endswith(".py") and name != "conftest.py":
                seen[name].append(os.path.relpath(os.path.join(dirpath, name), TESTS))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mount points of this process's mount namespace, for the lab's modules
(lab_node, lab_ssh), which decide what to mount or unmount from them."""

from __future__ import annotations

import re
from typing import Dict


def unescape_mountinfo(field: str) -> str:
    """mountinfo writes blanks, tabs, newlines and backslashes in paths as octal escapes (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mountinfo() -> Dict[str, Dict[str, object]]:
    """Mount points of our mount namespace: {path: {"fstype", "shared"}}; the last mount on a path wins."""
    mounts: Dict[str, Dict[str, object]] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            point = unescape_mountinfo(fields[4])
            mounts[point] = {"fstype": fields[sep + 1], "shared": any(o.startswith("shared:") for o in fields[6:sep])}
    return mounts

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Atomic file replacement: the one way this package writes a file that others read.

A temp file in the same directory (a dotfile with no config extension, so a
runtime scanning the directory never picks it up), fsync'd, chmod'ed, then
renamed over the target: a reader sees the old file or the new one, never half.
"""

from __future__ import annotations

import os
import tempfile


def atomic_write(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".nodenet-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

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

import errno
import os
import tempfile

# The one naming rule for our in-flight files: atomic_write makes them, and
# every reader that lists a directory we write into skips them (is_temp_name).
TEMP_PREFIX = ".nodenet-"
TEMP_SUFFIX = ".tmp"
# names an older version used for the same purpose
_LEGACY_TEMP_PREFIXES = (".tmp-",)


def is_temp_name(name: str) -> bool:
    """A file atomic_write is (or was, before a crash) writing: never content."""
    return (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)) or name.startswith(_LEGACY_TEMP_PREFIXES)


def atomic_write(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=directory)
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


def open_dir_nofollow(path: str) -> int:
    """An O_RDONLY fd of the directory `path`, refusing a symlink in its place.

    Root writes into directories others may have prepared (dataDirs, cache
    dirs): following a symlink there would let whoever made it choose which
    directory root chmods or writes into. OSError(ELOOP) names the path.
    """
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise OSError(errno.ELOOP, "%s is a symbolic link; refusing to follow it (make it a real directory)" % path) from None
        raise

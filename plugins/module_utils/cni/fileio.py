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
import fcntl
import os
import time
from typing import Optional

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
    import tempfile  # only here: an exec'd plugin that writes no file skips its imports

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


# Freeing an inode can wait on the disk: ext4 without a journal and mounted
# with `discard` (this project's development VM) frees a file's blocks with a
# synchronous discard inside the rename(2) or unlink(2) that drops the last
# name. A thread serving a call (the agent's worker) can hold such a file
# open across that call: the name goes at once, exactly as before, and the
# kernel frees the inode when the worker closes it, after its answer is out.
# Keyed by thread; only between hold_freed_inodes() and free_held_inodes().
_HELD: "dict[int, list[int]]" = {}
MAX_HELD = 32  # per call (a GC releasing thousands of leases frees the rest at once)


def hold_freed_inodes() -> None:
    """From now on this thread keeps the files it replaces or removes open (see _HELD)."""
    import _thread  # builtin: costs an exec'd plugin nothing

    _HELD.setdefault(_thread.get_ident(), [])


def free_held_inodes() -> None:
    """Close what this thread held (the kernel frees the inodes now) and stop holding."""
    import _thread

    for fd in _HELD.pop(_thread.get_ident(), ()):
        try:
            os.close(fd)
        except OSError:
            pass


def hold_before_drop(name: str, dir_fd: Optional[int] = None) -> None:
    """Before the rename or unlink that drops `name`'s last link: hold the file open
    when this thread holds freed inodes; otherwise nothing. Never fails (a file
    that cannot be opened is simply freed by the drop, as without this)."""
    if not _HELD:
        return
    import _thread

    held = _HELD.get(_thread.get_ident())
    if held is None or len(held) >= MAX_HELD:
        return
    try:
        # O_NONBLOCK: a FIFO planted in its place must not block the open
        held.append(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dir_fd))
    except OSError:
        pass


def read_bytes(path: str) -> bytes:
    """A small file's whole content through os.open/os.read (a buffered file
    object costs more than the read; a call reads a few sysctls and lease
    files). Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return data
            data += chunk
    finally:
        os.close(fd)


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


class _LockWaitExpired(Exception):
    pass


def flock_bounded(fd: int, timeout: float) -> bool:
    """flock(fd, LOCK_EX), waiting at most `timeout` seconds; False when it expired.

    In the main thread (an exec'd plugin) this is a *blocking* flock cut short
    by a SIGALRM timer: the waiter sleeps in the kernel's queue like Go's
    blocking waiters, instead of polling with LOCK_NB and losing every race to
    them. Other threads (the agent) cannot use signals and poll.
    """
    import threading

    if threading.current_thread() is not threading.main_thread() or timeout <= 0:
        return _flock_poll(fd, timeout)
    # a free lock (the usual case) is taken at once: no timer to arm, and no
    # `signal` import in an exec'd plugin; a held one is waited for below
    if _try_flock(fd):
        return True
    import signal

    def expire(signum, frame):
        raise _LockWaitExpired()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    except _LockWaitExpired:
        # the timer may have fired just after flock returned: if we hold the
        # lock, taking it again on the same fd succeeds at once
        return _flock_poll(fd, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# LOCK_NB polling (agent worker threads): first retries soon, then at most
# every 2 ms. The lock is held for about a millisecond per ADD; a longer
# sleep leaves it idle while threads of a burst sleep on.
POLL_FIRST = 0.0002
POLL_MAX = 0.002


def _try_flock(fd: int) -> bool:
    """One LOCK_NB try: True when taken, False when someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
            raise
        return False


def _flock_poll(fd: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = POLL_FIRST
    while True:
        if _try_flock(fd):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, POLL_MAX)

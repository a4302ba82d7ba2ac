# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Entering a network namespace by path (CNI_NETNS), like Go's pkg/ns.

os.setns exists only from Python 3.12; nodes run 3.9+, so this calls
libc's setns(2) through ctypes. A namespace switch affects the calling
thread only: the agent's workers each enter pods' namespaces on their own
thread, so "where am I" is always /proc/thread-self/ns/net (/proc/self
names the main thread's namespace, whatever this thread entered).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from typing import Iterator, Optional

from ..spec import ERR_INTERNAL, CNIError

CLONE_NEWNET = 0x40000000
THREAD_NETNS = "/proc/thread-self/ns/net"
_libc: Optional[ctypes.CDLL] = None


def _setns(fd: int) -> None:
    global _libc
    if hasattr(os, "setns"):
        os.setns(fd, CLONE_NEWNET)  # type: ignore[attr-defined]
        return
    if _libc is None:
        _libc = _load_libc()
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _load_libc() -> ctypes.CDLL:
    """libc as the interpreter already has it (dlopen(NULL)); ctypes.util's
    search (shutil, tempfile, ...) only if that has no setns."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.setns  # noqa: B018 - the lookup is the check
        return libc
    except (OSError, AttributeError):
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c") or "libc.so.6", use_errno=True)


class NetnsGone(CNIError):
    """The path names no network namespace (any more): missing, or a file
    left where one was. Go's ns.NSPathNotExistErr / NSPathNotNSErr: a DEL
    decides by this type that there is nothing left to remove in it."""


def netns_exists(path: str) -> bool:
    return bool(path) and os.path.exists(path)


def netns_alive(path: str) -> bool:
    """The path is a live network namespace: a bind mount (or /proc link) on nsfs.

    A plain file left where a namespace was (deleted, or its bind mount lost
    with a private mount namespace) exists but is not one.
    """
    if not path:
        return False
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def open_netns(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        error = NetnsGone if e.errno == errno.ENOENT else CNIError
        raise error(ERR_INTERNAL, "failed to open netns %r: %s" % (path, e.strerror))


@contextlib.contextmanager
def entered(path: str) -> Iterator[None]:
    """Run the body inside the netns at `path`, then return to ours."""
    target = open_netns(path)
    origin = os.open(THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _setns(target)
        except OSError as e:
            if e.errno == errno.EINVAL:  # the fd is not a network namespace
                raise NetnsGone(ERR_INTERNAL, "failed to enter netns %r: not a network namespace" % path)
            raise CNIError(ERR_INTERNAL, "failed to enter netns %r: %s" % (path, e.strerror))
        try:
            yield
        finally:
            # If this fails the thread stays in the pod's netns: the error
            # propagates, and the agent retires the thread (agent/server.py).
            _setns(origin)
    finally:
        os.close(target)
        os.close(origin)


def current_netns_fd() -> int:
    """An fd for our own netns (to move a veth peer back to the host side)."""
    return os.open(THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Network sysctls through /proc/sys/net.

/proc/sys/net shows the network namespace of the process that *opens* the
file, so a caller that wants a container's sysctl opens it while inside
`netns.entered(...)`; everything here acts on the caller's current netns.
Names use the slash form ("net/ipv4/ip_forward") because interface names
may contain dots (cni0.100).
"""

from __future__ import annotations

import os
from typing import Optional

from ..fileio import read_bytes
from ..spec import ERR_INTERNAL, CNIError

PROC_SYS = "/proc/sys"


def sysctl_path(name: str) -> str:
    name = name.strip("/")
    if ".." in name.split("/"):
        raise CNIError(ERR_INTERNAL, "invalid sysctl name %r" % name)
    return os.path.join(PROC_SYS, name)


def read_sysctl(name: str) -> Optional[str]:
    """The value, stripped; None when the key does not exist (e.g. no IPv6)."""
    try:
        return read_bytes(sysctl_path(name)).decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CNIError(ERR_INTERNAL, "failed to read sysctl %s: %s" % (name, e.strerror))


def write_sysctl(name: str, value: str) -> None:
    try:
        # what open(path, "w").write(value) does, without the file object: the same flags and mode
        fd = os.open(sysctl_path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            data = value.encode("utf-8")
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
    except OSError as e:
        raise CNIError(ERR_INTERNAL, "failed to set sysctl %s=%s: %s" % (name, value, e.strerror))


def try_write_sysctl(name: str, value: str) -> bool:
    """Best effort, for the sysctls the reference sets and ignores failures of."""
    try:
        write_sysctl(name, value)
        return True
    except CNIError:
        return False


def ensure_sysctl(name: str, value: str) -> bool:
    """Write only when different (a write to some keys has side effects); True if changed."""
    if read_sysctl(name) == value:
        return False
    write_sysctl(name, value)
    return True


def enable_ip_forward(family: int) -> bool:
    """Turn on forwarding for the family in the current netns (pkg/ip/ipforward_linux.go)."""
    if family == 4:
        return ensure_sysctl("net/ipv4/ip_forward", "1")
    return ensure_sysctl("net/ipv6/conf/all/forwarding", "1")

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host-local lease store, byte-compatible with Go's disk backend.

Go (plugins/ipam/host-local/backend/disk) and these plugins can share one
dataDir at the same time, so the layout and the lock are Go's exactly:

    <dataDir>/<network>/            0755
        lock                        empty; opened O_CREAT|O_RDONLY 0750; flock(2) LOCK_EX per operation
        <ip>                        one lease per address, named by Go's net.IP.String() spelling;
                                    content "<containerID>\\r\\n<ifname>", no trailing newline
        last_reserved_ip.<N>        the last address reserved in range set N, no newline

Differences that keep the format: leases are written to a temp file and
hard-linked into place (link(2) fails with EEXIST atomically, so the
exclusive-create semantics stay while no reader ever sees a half-written
lease), mode 0600 (Go >= 1.4.0; Go 1.1.1 writes 0644), and scans ignore
`lock`, `last_reserved_ip.*` and names that are not addresses (Go would
delete last_reserved_ip.N if a container ID happened to equal its content).

Standard library only: tooling (leak detection, GC) reads the store
without the allocator. Methods other than `locked()` assume the caller holds
the lock, as Go's allocator does (Get/Release/FindByID each lock once).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Tuple

from ..fileio import flock_bounded, open_dir_nofollow
from ..spec import ERR_INTERNAL, ERR_TRY_AGAIN, CNIError

LOCK_FILE = "lock"
LAST_IP_PREFIX = "last_reserved_ip."
LINE_BREAK = "\r\n"
LEASE_MODE = 0o600
DIR_MODE = 0o755
LOCK_MODE = 0o750  # go-filemutex opens the lock with its "mkdir" permission
# Our own transient files; never an address, so Go's scans ignore their names.
TEMP_PREFIX = ".nodenet-tmp-"
# Go blocks forever on the lock; we give up with "try again later" (code 11).
LOCK_TIMEOUT = 120.0


@dataclass(frozen=True)
class Lease:
    """One lease file. `ifname` is "" for a legacy file holding only the ID."""

    ip: str
    container_id: str
    ifname: str
    path: str

    @property
    def legacy(self) -> bool:
        return self.ifname == ""

    @property
    def key(self) -> str:
        """The trimmed file content, which is what Go compares."""
        return self.container_id + LINE_BREAK + self.ifname if self.ifname else self.container_id


def lease_content(container_id: str, ifname: str) -> str:
    # Go's disk backend writes and compares strings.TrimSpace(id). skel
    # refuses an ID with surrounding whitespace (Go's whole-string rule), so
    # "c2\n" never gets here to be confused with "c2"; we trim to read Go's files.
    return container_id.strip() + LINE_BREAK + ifname


def parse_lease_content(text: str) -> Tuple[str, str]:
    """(container ID, ifname) from a lease file, whitespace-trimmed like Go."""
    text = text.strip()
    container_id, sep, ifname = text.partition(LINE_BREAK)
    return (container_id, ifname) if sep else (text, "")


def is_lease_name(name: str) -> bool:
    """File names that are leases: textual IP addresses (not lock, last_reserved_ip.N, temps)."""
    if name == LOCK_FILE or name.startswith(LAST_IP_PREFIX) or name.startswith("."):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None  # gone meanwhile or unreadable: Go skips it too


class Store:
    """One network's lease directory and its lock."""

    def __init__(self, data_dir: str, network: str, create: bool = True, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.dir = os.path.join(data_dir, network)
        self.lock_timeout = lock_timeout
        self._lock_fd: Optional[int] = None
        self._held = False
        try:
            if create:
                os.makedirs(self.dir, mode=DIR_MODE, exist_ok=True)
            # Root writes leases here: a symlink in place of the network dir
            # (or of `lock`) would choose where they go. Refused, not followed.
            dir_fd = open_dir_nofollow(self.dir)
            try:
                self._lock_fd = os.open(LOCK_FILE, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, LOCK_MODE, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise CNIError(ERR_INTERNAL, "lease store %s: %s is a symbolic link; refusing to follow it" % (self.dir, e.filename or self.dir))
            raise CNIError(ERR_INTERNAL, "failed to open lease store %s: %s" % (self.dir, e.strerror or e))

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # also drops a lock still held
            self._lock_fd = None
            self._held = False

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def locked(self) -> Iterator["Store"]:
        """flock(LOCK_EX) on `lock` for one operation, as Go's FileLock does.

        Go calls a blocking flock; so do we (fileio.flock_bounded: blocking,
        cut short by a timer), so a Python waiter queues with the Go waiters
        instead of polling and losing to them. Both sides take the same kind
        of lock on the same file, so Go and Python exclude each other.
        """
        if self._lock_fd is None:  # a programming error: locked() after close()
            raise CNIError(ERR_INTERNAL, "lease store %s is closed" % self.dir)
        if self._held:  # re-entrant within one Store
            yield self
            return
        try:
            acquired = flock_bounded(self._lock_fd, self.lock_timeout)
        except OSError as e:
            raise CNIError(ERR_INTERNAL, "failed to lock %s: %s" % (self.dir, e.strerror))
        if not acquired:
            raise CNIError(ERR_TRY_AGAIN, "timed out after %gs waiting for the lock on %s" % (self.lock_timeout, self.dir))
        self._held = True
        try:
            yield self
        finally:
            self._held = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- reading ---------------------------------------------------------
    def leases(self) -> List[Lease]:
        return _read_leases(self.dir)

    def last_reserved_ip(self, range_id: int) -> Optional[str]:
        text = _read_text(os.path.join(self.dir, LAST_IP_PREFIX + str(range_id)))
        return text.strip() if text else None

    def get_by_id(self, container_id: str, ifname: str) -> List[Lease]:
        """Leases of (id, ifname) plus legacy id-only leases (Go's GetByID)."""
        keys = (lease_content(container_id, ifname), container_id.strip())
        return [le for le in self.leases() if le.key in keys]

    def find_by_id(self, container_id: str, ifname: str) -> List[Lease]:
        """Go's FindByID/ReleaseByID match: the (id, ifname) leases, else the legacy id-only ones.

        Go scans the directory twice (exact, then legacy); under the lock one
        read of the directory gives the same answer at half the cost.
        """
        leases = self.leases()
        key = lease_content(container_id, ifname)
        exact = [le for le in leases if le.key == key]
        if exact:
            return exact
        old = container_id.strip()
        return [le for le in leases if le.key == old]

    # -- writing ---------------------------------------------------------
    def _write_temp(self, data: str) -> str:
        for _attempt in range(8):  # a name collision is astronomically unlikely; stay bounded anyway
            # os.urandom, not secrets: secrets imports hashlib+hmac (~4 ms per exec)
            tmp = os.path.join(self.dir, "%s%d-%s" % (TEMP_PREFIX, os.getpid(), os.urandom(6).hex()))
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LEASE_MODE)
            except FileExistsError:
                continue
            try:
                os.fchmod(fd, LEASE_MODE)  # independent of the runtime's umask
                os.write(fd, data.encode("utf-8", "surrogateescape"))
            except OSError:
                os.close(fd)
                os.unlink(tmp)
                raise
            os.close(fd)
            return tmp
        raise CNIError(ERR_INTERNAL, "cannot create a temporary file in %s" % self.dir)

    def reserve_first(self, container_id: str, ifname: str, candidates: Iterable[str], range_id: int) -> Optional[str]:
        """Lease the first free address of `candidates`; record it as last_reserved_ip.N.

        One temp file is written, then hard-linked to each candidate until a
        link succeeds: EEXIST means taken (Go's O_EXCL create failing).
        """
        try:
            tmp = self._write_temp(lease_content(container_id, ifname))
        except OSError as e:
            raise CNIError(ERR_INTERNAL, "failed to write lease in %s: %s" % (self.dir, e.strerror or e))
        reserved: Optional[str] = None
        try:
            for ip in candidates:
                path = os.path.join(self.dir, ip)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    continue
                except OSError as e:
                    if e.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                        # a filesystem without hard links: Go's plain exclusive create
                        if not self._create_exclusive(path, lease_content(container_id, ifname)):
                            continue
                    else:
                        raise CNIError(ERR_INTERNAL, "failed to reserve %s: %s" % (ip, e.strerror))
                reserved = ip
                break
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if reserved is not None:
            self._write_last_reserved(reserved, range_id)
        return reserved

    def reserve(self, container_id: str, ifname: str, ip: str, range_id: int) -> bool:
        """Lease exactly `ip` (Go's Reserve): False when it is taken."""
        return self.reserve_first(container_id, ifname, [ip], range_id) is not None

    def _create_exclusive(self, path: str, data: str) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LEASE_MODE)
        except FileExistsError:
            return False
        try:
            os.write(fd, data.encode("utf-8", "surrogateescape"))
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        return True

    def _write_last_reserved(self, ip: str, range_id: int) -> None:
        path = os.path.join(self.dir, LAST_IP_PREFIX + str(range_id))
        try:
            tmp = self._write_temp(ip)
            os.replace(tmp, path)
        except OSError as e:
            # Go reports this failure; the lease itself is already on disk.
            raise CNIError(ERR_INTERNAL, "failed to write %s: %s" % (path, e.strerror or e))

    def release(self, lease: Lease) -> bool:
        try:
            os.unlink(lease.path)
        except FileNotFoundError:
            return False
        return True

    def release_by_id(self, container_id: str, ifname: str) -> List[str]:
        """Go's ReleaseByID: every (id, ifname) lease; if none, every legacy id-only lease."""
        return [le.ip for le in self.find_by_id(container_id, ifname) if self.release(le)]

    def remove_stale_temp_files(self) -> int:
        """Temp files seen while holding the lock belong to a writer that died."""
        removed = 0
        try:
            names = os.listdir(self.dir)
        except OSError:
            return 0
        for name in names:
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.dir, name))
                    removed += 1
        return removed


def network_dir(data_dir: str, network: str) -> str:
    return os.path.join(data_dir, network)


def list_leases(data_dir: str, network: str, lock: bool = False) -> List[Lease]:
    """Every lease of a network, sorted by file name; [] if the network has no directory.

    Read-only. With lock=True the snapshot is taken under the store lock
    (consistent with concurrent Go/Python writers; creates `lock` if missing).
    """
    directory = network_dir(data_dir, network)
    if not os.path.isdir(directory):
        return []
    if not lock:
        return _read_leases(directory)
    with Store(data_dir, network, create=False) as store, store.locked():
        return store.leases()


def _read_leases(directory: str) -> List[Lease]:
    out: List[Lease] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        if not is_lease_name(name):
            continue
        path = os.path.join(directory, name)
        text = _read_text(path)
        if text is None:
            continue
        container_id, ifname = parse_lease_content(text)
        out.append(Lease(ip=name, container_id=container_id, ifname=ifname, path=path))
    return out

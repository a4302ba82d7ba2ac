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

**The in-memory index.** Go reads every lease file on every ADD (GetByID)
and DEL (ReleaseByID), so an operation costs O(leases). A process that
serves many calls (the agent) keeps, per network directory, an index of the
directory's leases (file name -> content, content -> file names) and checks
under the lock that nobody else changed the directory since its last look:

- After every hold of the lock in which this process changed the directory
  (or rescanned it), the directory's mtime is set to a random sentinel
  (utimensat, the seconds kept, random nanoseconds) and the directory's
  (dev, inode, mtime, ctime) recorded.
- Every other writer's create, link, unlink or rename of a lease sets the
  directory's mtime to the kernel's clock, which does not equal the sentinel.
  So at the next lock, an unchanged stamp proves the index current; any other
  stamp means a full rescan (what Go does every time). The sentinel is what
  makes this safe against the coarse clock: a foreign write in the same clock
  tick as ours would otherwise leave the mtime unchanged.
- Lease files are never rewritten in place (Go creates them O_EXCL and writes
  once, under the lock), and last_reserved_ip.N, which Go rewrites in place,
  is read every time, not indexed.
- A filesystem that drops the nanoseconds (the sentinel does not read back)
  gets no index: every lock rescans, as before.

So the files, their contents and the lock stay exactly Go's; an exec'd
plugin builds the index once per process (its single scan) and the agent
reads the directory only after someone else wrote to it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple, Union

from ..fileio import flock_bounded, hold_before_drop, open_dir_nofollow, read_bytes
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
        # inet_pton's IPv4 rules are ipaddress's (four decimal octets, no
        # leading zeros) at a tenth of the cost; a scan checks every name
        socket.inet_pton(socket.AF_INET, name)
        return True
    except (OSError, ValueError):
        pass
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _read_text(path: str) -> Optional[str]:
    try:
        data = read_bytes(path)  # no file object: an ADD reads last_reserved_ip.N every time
    except OSError:
        return None  # gone meanwhile or unreadable: Go skips it too
    return data.decode("utf-8", "surrogateescape")


def lease_key(text: str) -> str:
    """The trimmed content of a lease file, which is what Go compares."""
    container_id, ifname = parse_lease_content(text)
    return container_id + LINE_BREAK + ifname if ifname else container_id


def _scan(dir_fd: int) -> Dict[str, str]:
    """lease file name -> key, for every lease of the directory open as dir_fd."""
    out: Dict[str, str] = {}
    for name in os.listdir(dir_fd):
        if not is_lease_name(name):
            continue
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            continue  # gone meanwhile or unreadable: Go skips it too
        try:
            data = os.read(fd, 4096)  # a lease is an ID and an ifname: one read, except for junk
            while len(data) % 4096 == 0 and data:
                more = os.read(fd, 65536)
                if not more:
                    break
                data += more
        except OSError:
            continue
        finally:
            os.close(fd)
        out[name] = lease_key(data.decode("utf-8", "surrogateescape"))
    return out


class LeaseIndex:
    """One network directory's leases in memory; valid while `stamp` matches the directory.

    `names` maps a key to its one file name (the usual case: one lease per
    container interface and range set) or to a set of them; a set per key
    would cost ~200 bytes more per lease, which is most of the index.
    """

    def __init__(self) -> None:
        self.stamp: Optional[Tuple[int, int, int, int]] = None
        self.keys: Dict[str, str] = {}  # file name -> key
        self.names: Dict[str, Union[str, Set[str]]] = {}  # key -> file name(s)
        self.scans = 0  # full reads of the directory (tests read it)

    def load(self, dir_fd: int) -> None:
        self.stamp = None
        self.keys = {}
        self.names = {}
        for name, key in _scan(dir_fd).items():
            self.add(name, key)
        self.scans += 1

    def add(self, name: str, key: str) -> None:
        self.discard(name)
        self.keys[name] = key
        held = self.names.get(key)
        if held is None:
            self.names[key] = name
        elif isinstance(held, str):
            self.names[key] = {held, name}
        else:
            held.add(name)

    def discard(self, name: str) -> None:
        key = self.keys.pop(name, None)
        if key is None:
            return
        held = self.names.get(key)
        if isinstance(held, str):
            if held == name:
                del self.names[key]
        elif held is not None:
            held.discard(name)
            if len(held) == 1:
                self.names[key] = next(iter(held))
            elif not held:
                del self.names[key]

    def with_key(self, key: str) -> List[str]:
        held = self.names.get(key)
        if held is None:
            return []
        return [held] if isinstance(held, str) else sorted(held)


# network directory path -> its index, the most recently used last; a node
# has a few networks, a test run or a lab many short-lived dataDirs
_INDEXES: "OrderedDict[str, LeaseIndex]" = OrderedDict()
_INDEXES_LOCK = threading.Lock()
MAX_INDEXES = 32


def index_for(directory: str) -> LeaseIndex:
    with _INDEXES_LOCK:
        index = _INDEXES.get(directory)
        if index is None:
            # forget directories that are gone (a test's or a benchmark's dataDir)
            for gone in [d for d in _INDEXES if not os.path.isdir(d)]:
                del _INDEXES[gone]
            index = _INDEXES[directory] = LeaseIndex()
            while len(_INDEXES) > MAX_INDEXES:  # forgotten, not wrong: its next Store rescans
                _INDEXES.popitem(last=False)
        else:
            _INDEXES.move_to_end(directory)
        return index


def _stamp(st: os.stat_result) -> Tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


class Store:
    """One network's lease directory and its lock."""

    def __init__(self, data_dir: str, network: str, create: bool = True, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.dir = os.path.join(data_dir, network)
        self.lock_timeout = lock_timeout
        self._lock_fd: Optional[int] = None
        self._dir_fd: Optional[int] = None
        self._held = False
        self._index = index_for(self.dir)
        self._changed = False  # this hold of the lock changed the directory or rescanned it
        self._stale = False  # the directory holds a lease the index does not know
        try:
            if create and not os.path.isdir(self.dir):  # one stat when it exists (makedirs: stat, mkdir, stat)
                os.makedirs(self.dir, mode=DIR_MODE, exist_ok=True)
            # Root writes leases here: a symlink in place of the network dir
            # (or of `lock`) would choose where they go. Refused, not followed.
            self._dir_fd = open_dir_nofollow(self.dir)
            self._lock_fd = os.open(LOCK_FILE, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, LOCK_MODE, dir_fd=self._dir_fd)
        except OSError as e:
            self.close()
            if e.errno == errno.ELOOP:
                raise CNIError(ERR_INTERNAL, "lease store %s: %s is a symbolic link; refusing to follow it" % (self.dir, e.filename or self.dir))
            raise CNIError(ERR_INTERNAL, "failed to open lease store %s: %s" % (self.dir, e.strerror or e))

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # also drops a lock still held
            self._lock_fd = None
            self._held = False
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

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
        Under the lock the index is checked (rescanned if someone else wrote)
        and, before the lock is released, stamped (see the module's doc).
        """
        if self._lock_fd is None or self._dir_fd is None:  # a programming error: locked() after close()
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
            self._refresh()
            yield self
        except CNIError:
            # an answer (taken, exhausted, ...): what the index holds is what was done
            if self._changed:
                self._seal()
            raise
        except BaseException:
            self._index.stamp = None  # an unexpected failure: trust nothing next time
            raise
        else:
            if self._changed:
                self._seal()
        finally:
            self._changed = self._stale = False
            self._held = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _refresh(self) -> None:
        try:
            stamp = _stamp(os.fstat(self._dir_fd))
        except OSError as e:
            raise CNIError(ERR_INTERNAL, "failed to stat %s: %s" % (self.dir, e.strerror))
        if self._index.stamp == stamp:
            return
        try:
            self._index.load(self._dir_fd)
        except OSError as e:
            raise CNIError(ERR_INTERNAL, "failed to read %s: %s" % (self.dir, e.strerror))
        self._changed = True

    def _seal(self) -> None:
        """Set the directory's mtime to a sentinel and record the stamp (under the lock)."""
        index = self._index
        index.stamp = None
        try:
            if self._stale:
                index.load(self._dir_fd)
            st = os.fstat(self._dir_fd)
            sentinel = st.st_mtime_ns - st.st_mtime_ns % 1000000000 + int.from_bytes(os.urandom(4), "little") % 1000000000
            os.utime(self._dir_fd, ns=(st.st_atime_ns, sentinel))
            st = os.fstat(self._dir_fd)
        except OSError:
            return  # no stamp: the next lock rescans
        if st.st_mtime_ns == sentinel:  # a filesystem that drops nanoseconds gets no index
            index.stamp = _stamp(st)

    # -- reading ---------------------------------------------------------
    def _lease(self, name: str, key: str) -> Lease:
        container_id, ifname = parse_lease_content(key)
        return Lease(ip=name, container_id=container_id, ifname=ifname, path=os.path.join(self.dir, name))

    def _keys(self) -> Dict[str, str]:
        if not self._held:  # outside the lock: a plain read, as list_leases(lock=False)
            return {le.ip: le.key for le in _read_leases(self.dir)}
        return self._index.keys

    def leases(self) -> List[Lease]:
        keys = self._keys()
        return [self._lease(name, keys[name]) for name in sorted(keys)]

    def lease_at(self, ip: str) -> Optional[Lease]:
        """The lease file named `ip`, if there is one."""
        key = self._keys().get(ip)
        return None if key is None else self._lease(ip, key)

    def is_leased(self, ip: str) -> bool:
        return ip in self._keys()

    def last_reserved_ip(self, range_id: int) -> Optional[str]:
        text = _read_text(os.path.join(self.dir, LAST_IP_PREFIX + str(range_id)))
        return text.strip() if text else None

    def _with_key(self, key: str) -> List[Lease]:
        if not self._held:
            return [le for le in self.leases() if le.key == key]
        return [self._lease(name, key) for name in self._index.with_key(key)]

    def get_by_id(self, container_id: str, ifname: str) -> List[Lease]:
        """Leases of (id, ifname) plus legacy id-only leases (Go's GetByID)."""
        exact, legacy = lease_content(container_id, ifname), container_id.strip()
        return sorted(self._with_key(exact) + (self._with_key(legacy) if legacy != exact else []), key=lambda le: le.ip)

    def find_by_id(self, container_id: str, ifname: str) -> List[Lease]:
        """Go's FindByID/ReleaseByID match: the (id, ifname) leases, else the legacy id-only ones.

        Go scans the directory twice (exact, then legacy); the index answers both at once.
        """
        exact = self._with_key(lease_content(container_id, ifname))
        return exact if exact else self._with_key(container_id.strip())

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
                    if self._held and ip not in self._index.keys:
                        self._stale = True  # someone wrote behind the lock: reread before sealing
                    continue
                except OSError as e:
                    if e.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                        # a filesystem without hard links: Go's plain exclusive create
                        if not self._create_exclusive(path, lease_content(container_id, ifname)):
                            continue
                    else:
                        raise CNIError(ERR_INTERNAL, "failed to reserve %s: %s" % (ip, e.strerror))
                reserved = ip
                self._note_added(ip, lease_content(container_id, ifname))
                break
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self._changed = True  # the temp file came and went
        if reserved is not None:
            self._write_last_reserved(reserved, range_id)
        return reserved

    def _note_added(self, ip: str, content: str) -> None:
        if self._held:
            self._index.add(ip, lease_key(content))
            self._changed = True

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
        name = LAST_IP_PREFIX + str(range_id)
        path = os.path.join(self.dir, name)
        try:
            tmp = self._write_temp(ip)
            hold_before_drop(name, self._dir_fd)  # the replaced file is freed after the answer (agent)
            os.replace(tmp, path)
        except OSError as e:
            # Go reports this failure; the lease itself is already on disk.
            raise CNIError(ERR_INTERNAL, "failed to write %s: %s" % (path, e.strerror or e))

    def release(self, lease: Lease) -> bool:
        hold_before_drop(lease.path)  # the lease's inode is freed after the answer (agent)
        try:
            os.unlink(lease.path)
        except FileNotFoundError:
            return False
        finally:
            if self._held:
                self._index.discard(lease.ip)
                self._changed = True
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
                    self._changed = True
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

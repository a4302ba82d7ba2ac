# SPDX-License-Identifier: GPL-3.0-or-later
"""Files a call replaces or removes are freed after its answer (fileio.hold_freed_inodes).

The agent's worker holds, across one call, the lease-store files the call
drops (last_reserved_ip.N replaced by rename, a lease unlinked on DEL), so
the kernel frees them after the answer. The names must change exactly as
without holding; outside a hold nothing is kept open. Real files in a temp dir.
"""

import os
import stat
import threading

from ansible_collections.nodenet.cni.plugins.module_utils.cni import fileio
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.host_local import load_ipam_config
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import parse_netconf
from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam import allocator
from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import Store

NET = "holdnet"


def conf_for(data_dir):
    ipam = {"type": "host-local", "dataDir": data_dir, "ranges": [[{"subnet": "10.9.0.0/24"}]]}
    raw = {"cniVersion": "1.0.0", "name": NET, "type": "host-local", "ipam": ipam}
    return load_ipam_config(parse_netconf(raw), "")


def add(data_dir, cid):
    with Store(data_dir, NET) as store:
        return [a.text for a in allocator.allocate_all(store, conf_for(data_dir), cid, "eth0")]


def delete(data_dir, cid):
    with Store(data_dir, NET) as store:
        return allocator.release_all(store, conf_for(data_dir), cid, "eth0")


def held_files():
    """(inode, link count) of every file this process holds in _HELD."""
    return [(os.fstat(fd).st_ino, os.fstat(fd).st_nlink) for fds in fileio._HELD.values() for fd in fds]


def test_a_call_holds_what_it_replaces_and_removes_until_freed(tmp_path):
    data_dir = str(tmp_path)
    net = os.path.join(data_dir, NET)
    assert add(data_dir, "c1") == ["10.9.0.2"]
    first_last = os.stat(os.path.join(net, "last_reserved_ip.0")).st_ino
    lease = os.stat(os.path.join(net, "10.9.0.2")).st_ino

    fileio.hold_freed_inodes()
    try:
        assert add(data_dir, "c2") == ["10.9.0.3"]
        delete(data_dir, "c1")
        # the names changed exactly as without holding
        with open(os.path.join(net, "last_reserved_ip.0"), "rb") as f:
            assert f.read() == b"10.9.0.3"
        assert sorted(os.listdir(net)) == ["10.9.0.3", "last_reserved_ip.0", "lock"]
        # ... and the dropped files are still open here, with no name left
        assert sorted(held_files()) == sorted([(first_last, 0), (lease, 0)])
    finally:
        fileio.free_held_inodes()
    assert fileio._HELD == {}


def test_without_a_hold_nothing_is_kept_open(tmp_path):
    data_dir = str(tmp_path)
    add(data_dir, "c1")
    add(data_dir, "c2")
    delete(data_dir, "c1")
    assert fileio._HELD == {} and held_files() == []


def test_a_hold_is_per_thread(tmp_path):
    data_dir = str(tmp_path)
    add(data_dir, "c1")
    fileio.hold_freed_inodes()
    try:
        worker = threading.Thread(target=add, args=(data_dir, "c2"))  # another thread, not holding
        worker.start()
        worker.join()
        assert held_files() == []
        add(data_dir, "c3")
        assert len(held_files()) == 1
    finally:
        fileio.free_held_inodes()


def test_a_fifo_or_symlink_in_place_is_not_opened_and_a_hold_is_bounded(tmp_path):
    fifo, link, target = str(tmp_path / "fifo"), str(tmp_path / "link"), str(tmp_path / "target")
    os.mkfifo(fifo)
    with open(target, "w") as f:
        f.write("x")
    os.symlink(target, link)
    fileio.hold_freed_inodes()
    try:
        fileio.hold_before_drop(fifo)  # O_NONBLOCK: does not wait for a writer
        fileio.hold_before_drop(link)  # O_NOFOLLOW: the symlink is refused, its target never held
        fileio.hold_before_drop(str(tmp_path / "missing"))
        kinds = [stat.S_IFMT(os.fstat(fd).st_mode) for fds in fileio._HELD.values() for fd in fds]
        assert kinds == [stat.S_IFIFO]
        for _n in range(fileio.MAX_HELD + 5):
            fileio.hold_before_drop(target)
        assert len(held_files()) == fileio.MAX_HELD
    finally:
        fileio.free_held_inodes()

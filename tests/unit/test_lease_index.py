# SPDX-License-Identifier: GPL-3.0-or-later
"""The store's in-memory lease index: it must see every write it did not make.

Real files in a temp dir. "Another process" is a second Store reached through
a different path to the same directory (its own index, as a second process
or a Go plugin has), or plain file operations done the way Go's disk backend
does them (O_EXCL create + write under the flock, unlink).
"""

import fcntl
import os

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.host_local import load_ipam_config
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import parse_netconf
from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam import allocator
from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import Store, index_for
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

NET = "idxnet"


def conf_for(data_dir, subnet="10.9.0.0/24"):
    raw = {"cniVersion": "1.0.0", "name": NET, "type": "host-local", "ipam": {"type": "host-local", "dataDir": data_dir, "ranges": [[{"subnet": subnet}]]}}
    return load_ipam_config(parse_netconf(raw), "")


def add(data_dir, cid, ifname="eth0"):
    with Store(data_dir, NET) as store:
        return [a.text for a in allocator.allocate_all(store, conf_for(data_dir), cid, ifname)]


def delete(data_dir, cid, ifname="eth0"):
    with Store(data_dir, NET) as store:
        return allocator.release_all(store, conf_for(data_dir), cid, ifname)


def check(data_dir, cid, ifname="eth0"):
    with Store(data_dir, NET) as store:
        return [le.ip for le in allocator.find_allocation(store, cid, ifname)]


def go_write(data_dir, ip, content):
    """What Go's disk backend does for Reserve: flock, O_EXCL create, write."""
    d = os.path.join(data_dir, NET)
    lock = os.open(os.path.join(d, "lock"), os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd = os.open(os.path.join(d, ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, content.encode())
        os.close(fd)
    finally:
        os.close(lock)


def go_unlink(data_dir, ip):
    d = os.path.join(data_dir, NET)
    lock = os.open(os.path.join(d, "lock"), os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.unlink(os.path.join(d, ip))
    finally:
        os.close(lock)


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path)


def test_only_our_own_writes_need_no_rescan(data_dir):
    assert add(data_dir, "c1") == ["10.9.0.2"]
    index = index_for(os.path.join(data_dir, NET))
    scans = index.scans
    assert add(data_dir, "c2") == ["10.9.0.3"]
    assert check(data_dir, "c1") == ["10.9.0.2"]
    assert delete(data_dir, "c1") == ["10.9.0.2"]
    assert add(data_dir, "c3") == ["10.9.0.4"]
    assert index.scans == scans  # every answer came from the index
    assert sorted(n for n in os.listdir(os.path.join(data_dir, NET)) if n[0].isdigit()) == ["10.9.0.3", "10.9.0.4"]


def test_a_lease_written_right_after_ours_is_seen(data_dir):
    # Go writes in the same clock tick as our last write: the directory's
    # mtime would not move; the sentinel makes the difference.
    assert add(data_dir, "c1") == ["10.9.0.2"]
    go_write(data_dir, "10.9.0.3", "goctr\r\neth0")
    assert check(data_dir, "goctr") == ["10.9.0.3"]
    with pytest.raises(CNIError, match="duplicate allocation"):
        add(data_dir, "goctr")
    assert add(data_dir, "c2") == ["10.9.0.4"]
    assert delete(data_dir, "goctr") == ["10.9.0.3"]
    assert not os.path.exists(os.path.join(data_dir, NET, "10.9.0.3"))


def test_a_lease_removed_behind_the_index_is_gone(data_dir):
    assert add(data_dir, "c1") == ["10.9.0.2"]
    go_unlink(data_dir, "10.9.0.2")
    assert check(data_dir, "c1") == []
    assert delete(data_dir, "c1") == []


def test_a_lease_replaced_under_the_same_name_is_reread(data_dir):
    # Go's DEL then another container's ADD of the same address
    assert add(data_dir, "c1") == ["10.9.0.2"]
    go_unlink(data_dir, "10.9.0.2")
    go_write(data_dir, "10.9.0.2", "other\r\neth0")
    assert delete(data_dir, "c1") == []
    assert check(data_dir, "other") == ["10.9.0.2"]


def test_two_indexes_on_one_directory_stay_consistent(tmp_path):
    # a second path to the same dataDir: a second index, like a second process
    a = str(tmp_path / "a")
    os.mkdir(a)
    b = str(tmp_path / "b")
    os.symlink(a, b)
    got = []
    for i in range(12):
        got += add(a if i % 2 == 0 else b, "c%d" % i)
    assert len(set(got)) == 12
    for i in range(12):  # each released through the other index
        assert delete(b if i % 2 == 0 else a, "c%d" % i) == [got[i]]
    assert check(a, "c0") == check(b, "c1") == []
    assert sorted(os.listdir(os.path.join(a, NET))) == ["last_reserved_ip.0", "lock"]


def test_a_recreated_directory_is_rescanned(data_dir):
    assert add(data_dir, "c1") == ["10.9.0.2"]
    d = os.path.join(data_dir, NET)
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)
    assert check(data_dir, "c1") == []
    assert add(data_dir, "c2") == ["10.9.0.2"]


def test_an_address_taken_behind_the_lock_is_skipped_and_learned(data_dir):
    # a writer that ignores the lock: link() says EEXIST, the index learns it
    assert add(data_dir, "c1") == ["10.9.0.2"]
    index = index_for(os.path.join(data_dir, NET))
    with Store(data_dir, NET) as store, store.locked():
        fd = os.open(os.path.join(data_dir, NET, "10.9.0.3"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"rogue\r\neth0")
        os.close(fd)
        assert store.reserve_first("c2", "eth0", ["10.9.0.3", "10.9.0.4"], 0) == "10.9.0.4"
    assert index.keys.get("10.9.0.3") == "rogue\r\neth0"
    assert check(data_dir, "rogue") == ["10.9.0.3"]


def test_many_directories_keep_a_bounded_number_of_indexes(tmp_path):
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam import store as store_mod

    dirs = [str(tmp_path / ("d%d" % i)) for i in range(store_mod.MAX_INDEXES + 5)]
    for d in dirs:
        os.mkdir(d)
        assert add(d, "c") == ["10.9.0.2"]
    assert len(store_mod._INDEXES) <= store_mod.MAX_INDEXES
    # a forgotten directory is simply read again, with the same answers
    assert check(dirs[0], "c") == ["10.9.0.2"]
    assert add(dirs[0], "c2") == ["10.9.0.3"]


def test_one_container_with_several_leases_and_a_removed_directory_forgotten(tmp_path):
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam import store as store_mod

    d = str(tmp_path / "multi")
    os.mkdir(d)
    raw = {"cniVersion": "1.0.0", "name": NET, "type": "host-local",
           "ipam": {"type": "host-local", "dataDir": d, "ranges": [[{"subnet": "10.9.0.0/24"}], [{"subnet": "10.10.0.0/24"}]]}}
    conf = load_ipam_config(parse_netconf(raw), "")
    with Store(d, NET) as store:
        got = [a.text for a in allocator.allocate_all(store, conf, "c1", "eth0")]
        assert got == ["10.9.0.2", "10.10.0.2"]
        with store.locked():
            assert [le.ip for le in store.find_by_id("c1", "eth0")] == ["10.10.0.2", "10.9.0.2"]
        assert sorted(allocator.release_all(store, conf, "c1", "eth0")) == ["10.10.0.2", "10.9.0.2"]
        with store.locked():
            assert store.find_by_id("c1", "eth0") == [] and store.leases() == []
    path = os.path.join(d, NET)
    assert path in store_mod._INDEXES
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.rmdir(path)
    other = str(tmp_path / "other")
    os.mkdir(other)
    add(other, "c")
    assert path not in store_mod._INDEXES


@pytest.mark.parametrize("name", ["10.0.0.1", "010.0.0.1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04", "fd00::1", "::ffff:1.2.3.4",
                                  " 1.2.3.4", "1.2.3.4\n", "0x1.1.1.1", "+1.2.3.4", "\u0661.2.3.4", "1..2.3", "abc"])
def test_lease_names_are_what_ipaddress_accepts(name):
    import ipaddress

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import is_lease_name

    try:
        ipaddress.ip_address(name)
        expected = True
    except ValueError:
        expected = False
    assert is_lease_name(name) is expected


def test_a_junk_file_larger_than_one_read_is_read_whole(data_dir):
    assert add(data_dir, "c1") == ["10.9.0.2"]
    long_id = "x" * 5000
    go_write(data_dir, "10.9.0.3", long_id + "\r\neth0")
    assert check(data_dir, long_id) == ["10.9.0.3"]

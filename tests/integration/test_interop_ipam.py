# SPDX-License-Identifier: GPL-3.0-or-later
"""Go host-local and ours sharing one dataDir at the same time.

Both take flock(2) on <dataDir>/<network>/lock around every range-set
operation, so concurrent processes of either implementation must never
hand out one address twice, and either must release what the other leased.
"""

import fcntl
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cnitest import exec_plugin

NET = "interop"
NETNS = "/var/run/netns/nodenet-none"
WORKERS = 16


@pytest.fixture
def impls(cni_bin, go_bin):
    return {"go": os.path.join(go_bin, "host-local"), "py": os.path.join(cni_bin, "nodenet-host-local")}


def make_conf(data_dir, ranges):
    return {"cniVersion": "1.0.0", "name": NET, "type": "bridge", "ipam": {"type": "host-local", "dataDir": data_dir, "ranges": ranges}}


def call(plugin, command, conf, cid):
    return exec_plugin(plugin, command, conf, netns=NETNS, container_id=cid, ifname="eth0", timeout=120)


def leases(data_dir):
    d = os.path.join(data_dir, NET)
    out = {}
    for name in os.listdir(d):
        if name == "lock" or name.startswith("last_reserved_ip."):
            continue
        with open(os.path.join(d, name), "rb") as f:
            out[name] = f.read()
    return out


@pytest.mark.parametrize("stack", ["v4", "dual"])
def test_parallel_adds_from_go_and_python_never_share_an_address(stack, impls, data_dir):
    ranges = [[{"subnet": "10.60.0.0/24"}]]
    if stack == "dual":
        ranges.append([{"subnet": "fd60::/64"}])
    conf = make_conf(data_dir, ranges)
    n = 64
    ids = ["ctr%02d" % i for i in range(n)]
    impl_of = {cid: ("go" if i % 2 == 0 else "py") for i, cid in enumerate(ids)}

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = dict(zip(ids, pool.map(lambda cid: call(impls[impl_of[cid]], "ADD", conf, cid), ids)))
    for cid, res in results.items():
        assert res.rc == 0, "%s (%s): %s %s" % (cid, impl_of[cid], res.stdout, res.stderr)

    addresses = [ip["address"].split("/")[0] for res in results.values() for ip in res.json["ips"]]
    assert len(addresses) == len(set(addresses)) == n * len(ranges)
    on_disk = leases(data_dir)
    assert sorted(on_disk) == sorted(addresses)
    for cid, res in results.items():
        for ip in res.json["ips"]:
            assert on_disk[ip["address"].split("/")[0]] == (cid + "\r\neth0").encode()

    # DEL everything, each container by the *other* implementation, concurrently
    other = {"go": "py", "py": "go"}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        dels = list(pool.map(lambda cid: call(impls[other[impl_of[cid]]], "DEL", conf, cid), ids))
    assert all(res.rc == 0 for res in dels), [res.stdout for res in dels if res.rc]
    assert leases(data_dir) == {}
    assert "lock" in os.listdir(os.path.join(data_dir, NET))


def test_parallel_adds_past_exhaustion_hand_out_each_address_once(impls, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "10.61.0.0/27"}]])  # .2-.30: 29 addresses
    ids = ["x%02d" % i for i in range(40)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        runs = list(pool.map(lambda i: call(impls["go" if i % 2 else "py"], "ADD", conf, ids[i]), range(len(ids))))
    ok = [r for r in runs if r.rc == 0]
    failed = [r for r in runs if r.rc != 0]
    addresses = [r.json["ips"][0]["address"] for r in ok]
    assert len(ok) == 29 and len(set(addresses)) == 29
    assert all("no IP addresses available in range set: 10.61.0.1-10.61.0.30" in r.json["msg"] for r in failed)
    assert len(leases(data_dir)) == 29


def test_leases_cross_release_and_share_the_round_robin_cursor(impls, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "10.62.0.0/24"}]])
    got = []
    for i, impl in enumerate(["go", "py", "go", "py"]):
        got.append(call(impls[impl], "ADD", conf, "c%d" % i).ok().json["ips"][0]["address"])
    # one last_reserved_ip.0 read and written by both
    assert got == ["10.62.0.2/24", "10.62.0.3/24", "10.62.0.4/24", "10.62.0.5/24"]

    call(impls["py"], "DEL", conf, "c0").ok()  # Go wrote it
    call(impls["go"], "DEL", conf, "c1").ok()  # we wrote it
    assert sorted(leases(data_dir)) == ["10.62.0.4", "10.62.0.5"]

    # CHECK each other's leases
    call(impls["py"], "CHECK", conf, "c2").ok()
    call(impls["go"], "CHECK", conf, "c3").ok()

    # duplicate detection sees the other implementation's lease
    res = call(impls["py"], "ADD", conf, "c2")
    assert res.rc != 0 and "10.62.0.4 has been allocated to c2" in res.json["msg"]
    res = call(impls["go"], "ADD", conf, "c3")
    assert res.rc != 0 and "10.62.0.5 has been allocated to c3" in res.json["msg"]

    # the cursor keeps moving whichever implementation allocates
    assert call(impls["py"], "ADD", conf, "c4").ok().json["ips"][0]["address"] == "10.62.0.6/24"
    assert call(impls["go"], "ADD", conf, "c5").ok().json["ips"][0]["address"] == "10.62.0.7/24"
    for cid, impl in [("c2", "go"), ("c3", "py"), ("c4", "go"), ("c5", "py")]:
        call(impls[impl], "DEL", conf, cid).ok()
    assert leases(data_dir) == {}


def test_go_writes_between_our_calls_are_seen(impls, data_dir):
    """Every Go write lands between two of ours (with an agent: behind its lease index)."""
    conf = make_conf(data_dir, [[{"subnet": "10.64.0.0/29"}]])  # .2-.6: the cursor wraps
    held = {}
    for i in range(8):
        held["p%d" % i] = call(impls["py"], "ADD", conf, "p%d" % i).ok().json["ips"][0]["address"].split("/")[0]
        held["g%d" % i] = call(impls["go"], "ADD", conf, "g%d" % i).ok().json["ips"][0]["address"].split("/")[0]
        assert held["p%d" % i] != held["g%d" % i]
        call(impls["py"], "CHECK", conf, "g%d" % i).ok()  # our side finds Go's new lease
        res = call(impls["py"], "ADD", conf, "g%d" % i)
        assert res.rc != 0 and "%s has been allocated to g%d" % (held["g%d" % i], i) in res.json["msg"]
        call(impls["py"], "DEL", conf, "g%d" % i).ok()  # and releases it
        assert held["g%d" % i] not in leases(data_dir)
        call(impls["go"], "DEL", conf, "p%d" % i).ok()  # Go releases ours behind our back
        assert leases(data_dir) == {}
        res = call(impls["py"], "CHECK", conf, "p%d" % i)
        assert res.rc != 0 and "Failed to find address added by container p%d" % i in res.json["msg"]
    # the round-robin cursor moved through both: every address of the range was used
    assert sorted(set(held.values())) == ["10.64.0.%d" % n for n in range(2, 7)]


@pytest.mark.parametrize("impl", ["go", "py"])
def test_an_add_waits_while_the_lock_file_is_flocked(impl, impls, data_dir):
    """Our Store takes flock(LOCK_EX) on <net>/lock exactly where Go does: each waits for the other."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import Store

    conf = make_conf(data_dir, [[{"subnet": "10.63.0.0/24"}]])
    with Store(data_dir, NET) as store, store.locked():
        env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "waiter", "CNI_NETNS": NETNS, "CNI_IFNAME": "eth0",
               "CNI_PATH": os.path.dirname(impls[impl]), "PATH": "/usr/bin:/bin"}
        proc = subprocess.Popen([impls[impl]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        proc.stdin.write(json.dumps(conf).encode())
        proc.stdin.close()
        time.sleep(1.5)
        assert proc.poll() is None, "ADD finished while the lock was held"
        assert leases(data_dir) == {}
        lock_fd = os.open(os.path.join(data_dir, NET, "lock"), os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a plain flock sees it too
        finally:
            os.close(lock_fd)
    out = proc.stdout.read()
    assert proc.wait(timeout=60) == 0, out
    assert leases(data_dir) == {"10.63.0.2": b"waiter\r\neth0"}

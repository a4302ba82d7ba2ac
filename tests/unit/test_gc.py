# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_gc's decisions on a temp node (conf dir, cache, dataDir): which leases
go and why, the grace period, check mode changing nothing, the lock held
while deciding. No root: no attachment here needs a DEL exec."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import Store
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.cache import CacheEntry, write_entry
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.gc import Collector, GCRequest
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

LIVE = "/live/netns"


def alive(path: str) -> bool:
    return path == LIVE


@pytest.fixture
def node(tmp_path):
    conf_dir, cache_dir, data_dir = tmp_path / "net.d", tmp_path / "cache", tmp_path / "ipam"
    conf_dir.mkdir()
    (data_dir / "mynet").mkdir(parents=True)
    conf = {"cniVersion": "1.0.0", "name": "mynet", "plugins": [
        {"type": "bridge", "ipam": {"type": "host-local", "dataDir": str(data_dir), "ranges": [[{"subnet": "10.0.0.0/24"}]]}}]}
    (conf_dir / "10-mynet.conflist").write_text(json.dumps(conf))
    req = GCRequest(conf_dir=str(conf_dir), bin_dirs=[str(tmp_path / "bin")], cache_dir=str(cache_dir), grace_seconds=60)
    return req, str(data_dir / "mynet")


def lease(directory: str, ip: str, cid: str, age: float = 3600) -> None:
    path = os.path.join(directory, ip)
    with open(path, "w") as f:
        f.write("%s\r\neth0" % cid)
    then = time.time() - age
    os.utime(path, (then, then))


def cache(req: GCRequest, cid: str, netns: str = LIVE) -> None:
    write_entry(req.cache_dir, CacheEntry(container_id=cid, network_name="mynet", ifname="eth0", netns=netns,
                                          result={"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.9/24"}]}))


def ips(directory: str):
    return sorted(f for f in os.listdir(directory) if f[0].isdigit())


def test_frees_leases_nobody_caches_and_keeps_held_and_young_ones(node):
    req, leases = node
    lease(leases, "10.0.0.2", "held")
    cache(req, "held")
    lease(leases, "10.0.0.3", "orphan")
    lease(leases, "10.0.0.4", "inflight", age=1)
    cache(req, "nolease")  # a cache entry whose lease is gone: nothing to free

    planned = Collector(req, check_mode=True, alive=alive).run()
    assert [(f["ip"], f["reason"]) for f in planned.freed] == [("10.0.0.3", "no cached attachment of (mynet, orphan, eth0)")]
    assert [k["ip"] for k in planned.kept] == ["10.0.0.4"] and "grace 60s" in planned.kept[0]["reason"]
    assert planned.deleted_attachments == [] and planned.changed
    assert ips(leases) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"], "check mode changes nothing"
    assert planned.after["mynet"] == ["10.0.0.2 held eth0", "10.0.0.4 inflight eth0"]

    done = Collector(req, alive=alive).run()
    assert [f["ip"] for f in done.freed] == ["10.0.0.3"] and ips(leases) == ["10.0.0.2", "10.0.0.4"]
    assert done.before["mynet"] == ["10.0.0.2 held eth0", "10.0.0.3 orphan eth0", "10.0.0.4 inflight eth0"]
    assert done.after["mynet"] == planned.after["mynet"]
    assert not Collector(req, alive=alive).run().changed


def test_grace_zero_frees_a_fresh_unheld_lease(node):
    req, leases = node
    lease(leases, "10.0.0.5", "fresh", age=0)
    req.grace_seconds = 0
    assert [f["ip"] for f in Collector(req, alive=alive).run().freed] == ["10.0.0.5"]


def test_an_unknown_network_is_an_error_naming_it(node):
    req, _leases = node
    req.networks = ["nope"]
    with pytest.raises(CNIError, match="'nope'"):
        Collector(req, alive=alive).run()


def _hold_lock(data_dir: str, ready, release) -> None:
    with Store(data_dir, "mynet") as store, store.locked():
        ready.set()
        release.wait(10)


def test_deciding_waits_for_the_datadir_lock(node):
    """GC reads the cache and the leases only once nobody else (an ADD, a DEL)
    holds the network's lock: what the holder did meanwhile is seen."""
    req, leases = node
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(os.path.dirname(leases), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        lease(leases, "10.0.0.6", "added-under-lock", age=3600)  # written while the lock is held

        def cache_then_release():
            time.sleep(0.3)
            cache(req, "added-under-lock")  # the ADD caches its result, then lets go
            release.set()

        writer = ctx.Process(target=cache_then_release)
        writer.start()
        out = Collector(req, alive=alive).run()
        writer.join(10)
        assert out.freed == [] and ips(leases) == ["10.0.0.6"]
    finally:
        release.set()
        holder.join(10)

# SPDX-License-Identifier: GPL-3.0-or-later
"""The runtime layer end to end, cnitool-style: conf dir -> ADD -> CHECK -> DEL -> GC.

Runs real plugin chains -- the Go reference plugins from /usr/lib/cni, and
ours (nodenet-*) -- inside a test "host" namespace. The runtime itself stays
in the test process and runs each plugin under `ip netns exec <host>`
(Runtime's exec_prefix); on a real node cni_attach runs without a prefix.

The chain is bridge(+host-local) followed by loopback where a node would
have portmap: two real plugins, so prevResult flow and DEL order are seen.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import stat
from dataclasses import dataclass

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import (
    ChainError,
    Runtime,
    RuntimeConf,
    find_active,
    list_attachments,
    plugin_versions,
    read_entry,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBNET = "10.77.0.0/24"
GATEWAY = "10.77.0.1"
NET = "rtnet"


@dataclass
class Impl:
    name: str
    bin_dir: str
    bridge: str
    ipam: str
    loopback: str
    version: str  # the newest version the whole set speaks


@pytest.fixture(params=["go", "py"])
def impl(request) -> Impl:
    if request.param == "go":
        return Impl("go", request.getfixturevalue("go_bin"), "bridge", "host-local", "loopback", "1.0.0")
    return Impl("py", request.getfixturevalue("cni_bin"), "nodenet-bridge", "nodenet-host-local", "nodenet-loopback", "1.1.0")


def chain_conf(impl: Impl, data_dir: str, version: str = "", name: str = NET, range_: dict = None) -> dict:
    ipam = {"type": impl.ipam, "dataDir": data_dir, "ranges": [[range_ or {"subnet": SUBNET}]]}
    return {
        "cniVersion": version or impl.version,
        "name": name,
        "plugins": [
            {"type": impl.bridge, "bridge": "rtbr0", "isGateway": True, "ipam": ipam},
            {"type": impl.loopback},
        ],
    }


def write_conf_dir(tmp_path, conf: dict, filename: str = "10-rtnet.conflist") -> str:
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / filename).write_text(json.dumps(conf, indent=2))
    return str(conf_dir)


def runtime_in(impl: Impl, host_ns) -> Runtime:
    return Runtime([impl.bin_dir], exec_prefix=["ip", "netns", "exec", host_ns.name], timeout=60)


def container_id() -> str:
    return "rt-" + secrets.token_hex(6)


def addresses(ns, ifname: str):
    run = ns.run(["ip", "-j", "addr", "show", "dev", ifname], check=False)
    if run.returncode != 0:
        return None
    # global addresses only: the kernel adds an fe80:: one by itself
    return ["%s/%s" % (a["local"], a["prefixlen"]) for link in json.loads(run.stdout) for a in link.get("addr_info", []) if a.get("scope") == "global"]


def lo_is_up(ns) -> bool:
    [link] = json.loads(ns.run(["ip", "-j", "link", "show", "dev", "lo"]).stdout)
    return "UP" in link["flags"]


def leases(data_dir: str, network: str = NET):
    d = os.path.join(data_dir, network)
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f != "lock" and not f.startswith("last_reserved_ip"))


def assert_complete(rec, command: str, plugin_type: str):
    assert os.path.basename(rec.path) == plugin_type and rec.command == command
    assert rec.argv[:3] == ["ip", "netns", "exec"] and rec.argv[-1] == rec.path
    assert set(rec.env) >= {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_ARGS", "CNI_IFNAME", "CNI_PATH"}
    assert rec.env["CNI_COMMAND"] == command
    assert json.loads(rec.stdin)["type"] == plugin_type
    assert rec.duration_ms > 0 and isinstance(rec.stderr, str)


# ---------------------------------------------------------------------------


def test_add_check_del_round_trip(impl, host_ns, container_ns, data_dir, tmp_path):
    conf = chain_conf(impl, data_dir)
    conf_dir = write_conf_dir(tmp_path, conf)
    write_conf_dir(tmp_path, {"cniVersion": "0.3.1", "name": "later", "type": impl.loopback}, "20-later.conf")
    active = find_active(conf_dir)
    assert os.path.basename(active.path) == "10-rtnet.conflist" and "first" in active.reason
    net = active.conf
    runtime = runtime_in(impl, host_ns)
    assert runtime.validate_list(net).ok

    cache_dir = str(tmp_path / "cache")
    cid = container_id()
    rt = RuntimeConf(cid, container_ns.path, "eth0", cache_dir=cache_dir)
    container_ns.run(["ip", "link", "set", "lo", "down"])

    # ADD: bridge, then loopback fed with bridge's result
    added = runtime.add_list(net, rt)
    assert [os.path.basename(r.path) for r in added.trace] == [impl.bridge, impl.loopback]
    for rec in added.trace:
        assert_complete(rec, "ADD", os.path.basename(rec.path))
        assert rec.exit_code == 0 and rec.error == ""
        assert rec.env["CNI_CONTAINERID"] == cid and rec.env["CNI_NETNS"] == container_ns.path
    bridge_rec, lo_rec = added.trace
    bridge_result = json.loads(bridge_rec.stdout)
    assert "prevResult" not in json.loads(bridge_rec.stdin)
    assert json.loads(lo_rec.stdin)["prevResult"] == bridge_result
    assert added.result == json.loads(lo_rec.stdout)
    assert added.result["cniVersion"] == net.cni_version
    [ip] = [i["address"] for i in added.result["ips"]]
    assert ipaddress.ip_interface(ip).ip in ipaddress.ip_network(SUBNET)
    assert addresses(container_ns, "eth0") == [ip]
    assert lo_is_up(container_ns)
    assert container_ns.ping(GATEWAY)
    assert leases(data_dir) == [ip.split("/")[0]]

    # the cache is libcni's cniCacheV1, readable by a Go runtime
    assert stat.S_IMODE(os.stat(added.cache_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(added.cache_file)).st_mode) == 0o700
    with open(added.cache_file) as f:
        cached = json.load(f)
    assert cached == {
        "kind": "cniCacheV1",
        "containerId": cid,
        "config": base64.b64encode(open(active.path, "rb").read()).decode(),
        "ifName": "eth0",
        "networkName": NET,
        "netns": container_ns.path,
        "result": added.result,
    }
    assert [a.container_id for a in list_attachments(cache_dir)] == [cid]

    # CHECK: forward, both plugins get the cached result
    checked = runtime.check_list(net, rt)
    assert [os.path.basename(r.path) for r in checked.trace] == [impl.bridge, impl.loopback]
    for rec in checked.trace:
        assert_complete(rec, "CHECK", os.path.basename(rec.path))
        assert json.loads(rec.stdin)["prevResult"] == added.result

    # DEL: reverse order, cached prevResult, everything released
    deleted = runtime.del_list(net, rt)
    assert [os.path.basename(r.path) for r in deleted.trace] == [impl.loopback, impl.bridge]
    for rec in deleted.trace:
        assert_complete(rec, "DEL", os.path.basename(rec.path))
        assert json.loads(rec.stdin)["prevResult"] == added.result
    assert addresses(container_ns, "eth0") is None
    assert not lo_is_up(container_ns)
    assert leases(data_dir) == []
    assert read_entry(cache_dir, NET, cid, "eth0") is None

    # a repeated DEL is fine (no cache, so no prevResult)
    again = runtime.del_list(net, rt)
    assert all("prevResult" not in json.loads(r.stdin) for r in again.trace)

    # CHECK after DEL: no cache, so no prevResult, and bridge says what it misses
    with pytest.raises(ChainError) as e:
        runtime.check_list(net, rt)
    assert str(e.value).startswith('plugin type="%s" name="%s" failed (check): ' % (impl.bridge, NET))


def test_gc_deletes_cached_attachments_not_in_the_valid_set(impl, host_ns, netns_factory, data_dir, tmp_path):
    net = find_active(write_conf_dir(tmp_path, chain_conf(impl, data_dir))).conf
    runtime = runtime_in(impl, host_ns)
    cache_dir = str(tmp_path / "cache")
    keep_ns, stale_ns = netns_factory("keep"), netns_factory("stale")
    keep = RuntimeConf(container_id(), keep_ns.path, "eth0", cache_dir=cache_dir)
    stale = RuntimeConf(container_id(), stale_ns.path, "eth0", args=[("IgnoreUnknown", "1")], cache_dir=cache_dir)
    kept_ip = runtime.add_list(net, keep).result["ips"][0]["address"].split("/")[0]
    runtime.add_list(net, stale)
    assert len(leases(data_dir)) == 2
    # the pod's sandbox went away without a DEL
    stale_ns.delete()

    out = runtime.gc_list(net, [(keep.container_id, "eth0")], cache_dir=cache_dir)
    dels = [r for r in out.trace if r.command == "DEL"]
    assert [os.path.basename(r.path) for r in dels] == [impl.loopback, impl.bridge]
    assert all(r.env["CNI_CONTAINERID"] == stale.container_id for r in dels)
    # replayed from the cache: netns and CNI_ARGS of the stale attachment
    assert dels[0].env["CNI_NETNS"] == stale.netns and dels[0].env["CNI_ARGS"] == "IgnoreUnknown=1"
    assert [a.container_id for a in list_attachments(cache_dir)] == [keep.container_id]
    assert leases(data_dir) == [kept_ip]
    assert addresses(keep_ns, "eth0")

    gcs = [r for r in out.trace if r.command == "GC"]
    if net.cni_version == "1.1.0":
        assert [os.path.basename(r.path) for r in gcs] == [impl.bridge, impl.loopback]
        for rec in gcs:
            stdin = json.loads(rec.stdin)
            assert stdin["cni.dev/valid-attachments"] == [{"containerID": keep.container_id, "ifname": "eth0"}]
            assert stdin["cni.dev/attachments"] == stdin["cni.dev/valid-attachments"]
            assert rec.env["CNI_CONTAINERID"] == "" and rec.env["CNI_PATH"] == impl.bin_dir
    else:
        assert gcs == [] and any("< 1.1.0" in n for n in out.notes)

    runtime.del_list(net, keep)
    assert leases(data_dir) == []


def test_plugin_gc_releases_a_lease_the_cache_forgot(impl, host_ns, netns_factory, data_dir, tmp_path):
    """Phase 2 of GC: the plugins themselves clean up what no cache entry names."""
    if impl.version != "1.1.0":
        pytest.skip("the Go reference plugins here speak up to 1.0.0: no GC")
    net = find_active(write_conf_dir(tmp_path, chain_conf(impl, data_dir, version="1.1.0"))).conf
    runtime = runtime_in(impl, host_ns)
    cache_dir = str(tmp_path / "cache")
    keep_ns, lost_ns = netns_factory("keep"), netns_factory("lost")
    keep = RuntimeConf(container_id(), keep_ns.path, "eth0", cache_dir=cache_dir)
    lost = RuntimeConf(container_id(), lost_ns.path, "eth0", cache_dir=cache_dir)
    kept_ip = runtime.add_list(net, keep).result["ips"][0]["address"].split("/")[0]
    os.unlink(runtime.add_list(net, lost).cache_file)
    lost_ns.delete()
    assert len(leases(data_dir)) == 2

    out = runtime.gc_list(net, [(keep.container_id, "eth0")], cache_dir=cache_dir)
    assert [r.command for r in out.trace] == ["GC", "GC"]
    assert leases(data_dir) == [kept_ip]
    runtime.del_list(net, keep)


def test_status_and_version_of_the_chain(impl, host_ns, data_dir, tmp_path):
    net = find_active(write_conf_dir(tmp_path, chain_conf(impl, data_dir))).conf
    runtime = runtime_in(impl, host_ns)
    out = runtime.status_list(net)
    if net.cni_version == "1.1.0":
        assert [r.command for r in out.trace] == ["STATUS", "STATUS"]
    else:
        assert out.trace == []
    info = plugin_versions(os.path.join(impl.bin_dir, impl.bridge))
    assert info.answers and net.cni_version in info.supported_versions
    assert info.record.env["CNI_NETNS"] == "dummy"
    report = runtime.validate_list(net)
    assert report.ok and [p.type for p in report.plugins] == [impl.bridge, impl.loopback]


def test_failing_plugin_shows_in_the_trace_and_del_cleans_up(impl, host_ns, netns_factory, data_dir, tmp_path):
    # a one-address range: the second ADD fails inside bridge's IPAM delegation
    one = {"subnet": SUBNET, "rangeStart": "10.77.0.10", "rangeEnd": "10.77.0.10"}
    net = find_active(write_conf_dir(tmp_path, chain_conf(impl, data_dir, range_=one))).conf
    runtime = runtime_in(impl, host_ns)
    cache_dir = str(tmp_path / "cache")
    first_ns, second_ns = netns_factory("first"), netns_factory("second")
    first = RuntimeConf(container_id(), first_ns.path, "eth0", cache_dir=cache_dir)
    second = RuntimeConf(container_id(), second_ns.path, "eth0", cache_dir=cache_dir)
    runtime.add_list(net, first)

    with pytest.raises(ChainError) as e:
        runtime.add_list(net, second)
    err = e.value
    assert str(err).startswith('plugin type="%s" name="%s" failed (add): ' % (impl.bridge, NET))
    assert err.plugin_type == impl.bridge and err.verb == "ADD" and err.code != 0
    [rec] = err.trace  # loopback never ran
    assert_complete(rec, "ADD", impl.bridge)
    assert rec.exit_code != 0 and rec.error
    reply = json.loads(rec.stdout)
    assert reply["code"] == err.code and reply["msg"] in str(err)
    assert read_entry(cache_dir, NET, second.container_id, "eth0") is None
    json.dumps(err.as_dict())

    # what cni_attach does after a failed ADD: DEL, which removes the veth bridge left behind
    runtime.del_list(net, second)
    assert addresses(second_ns, "eth0") is None
    runtime.del_list(net, first)
    assert leases(data_dir) == []


def test_loopback_list_like_containerd(impl, host_ns, container_ns, tmp_path):
    """containerd's built-in cni-loopback list: 0.3.1, ifname lo; CHECK is refused below 0.4.0."""
    conf_dir = write_conf_dir(tmp_path, {"cniVersion": "0.3.1", "name": "cni-loopback", "plugins": [{"type": impl.loopback}]}, "99-loopback.conflist")
    net = find_active(conf_dir, "cni-loopback").conf
    runtime = runtime_in(impl, host_ns)
    cache_dir = str(tmp_path / "cache")
    rt = RuntimeConf(container_id(), container_ns.path, "lo", cache_dir=cache_dir)
    container_ns.run(["ip", "link", "set", "lo", "down"])
    added = runtime.add_list(net, rt)
    assert lo_is_up(container_ns) and added.result["cniVersion"] == "0.3.1"
    with pytest.raises(ChainError, match='configuration version "0.3.1" does not support the CHECK command'):
        runtime.check_list(net, rt)
    deleted = runtime.del_list(net, rt)
    assert "prevResult" not in json.loads(deleted.trace[0].stdin)  # < 0.4.0
    assert not lo_is_up(container_ns) and list_attachments(cache_dir) == []

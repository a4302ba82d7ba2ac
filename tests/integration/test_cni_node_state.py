# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_node_state through `ansible`, on a "node" that is a test network namespace:
the netconf file, the bridge, the owned routes and the boot files in one run,
files only under the test's temp dir."""

import json
import os

import pytest
from ansiblerun import run_module

M = "nodenet.cni.cni_node_state"
OWNED = 77


def bridge_addresses(ns, name="cni0"):
    with ns.ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            return None
        return sorted("%s/%d" % (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx[0]) if a["scope"] == 0)


def owned_routes(ns):
    with ns.ipr() as ipr:
        return sorted("%s/%d via %s" % (r.get_attr("RTA_DST"), r["dst_len"], r.get_attr("RTA_GATEWAY")) for r in ipr.get_routes(family=2, proto=OWNED))


@pytest.fixture
def node(netns_factory, cni_bin, tmp_path):
    ns = netns_factory("ns")
    ns.runtime = cni_bin
    # a node network for the next hops, inside the test namespace only
    ns.run(["ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p"])
    ns.run(["ip", "link", "set", "eth9p", "up"])
    ns.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "eth9"])
    ns.run(["ip", "link", "set", "eth9", "up"])
    ns.tmp = tmp_path
    (tmp_path / "net.d").mkdir()
    return ns


def parts(ns, mtu=1400, peers=(("10.244.2.0/24", "192.168.77.12"),)):
    t = ns.tmp
    routes = [{"subnet": s, "via": v} for s, v in peers]
    return {
        "netconf": {
            "name": "podnet", "conf_dir": str(t / "net.d"),
            "plugins": [{"type": "nodenet-bridge", "bridge": "cni0", "isGateway": True,
                         "ipam": {"type": "nodenet-host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]], "dataDir": str(t / "data")}}],
        },
        "bridge": {"name": "cni0", "addresses": ["10.244.1.1/24"], "mtu": mtu, "force_address": True},
        "routes": {"routes": routes},
        "boot": {
            "sysctls": {"net.ipv4.ip_forward": 1}, "sysctl_file": str(t / "sysctl.d" / "90-nodenet-cni.conf"),
            "restore": {"bridge": {"name": "cni0", "addresses": ["10.244.1.1/24"], "mtu": mtu},
                        "routes": {"protocol": OWNED, "table": 254, "routes": routes}},
            "restore_file": str(t / "nodenet" / "boot.json"), "systemd_dir": str(t / "systemd"),
            "command": ["/usr/bin/python3", "/opt/cni/bin/.nodenet-cni/boot.py", str(t / "nodenet" / "boot.json")],
        },
    }


def files(ns):
    return sorted(os.path.relpath(os.path.join(d, f), ns.tmp) for d, _dirs, fs in os.walk(ns.tmp) for f in fs)


def test_converges_all_parts_with_check_diff_and_idempotence(node):
    args = parts(node)
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime, check=True, diff=True)
    assert res["changed"] and not res.get("failed"), res
    assert res["changed_parts"] == ["netconf", "bridge", "routes", "boot"]
    assert bridge_addresses(node) is None and owned_routes(node) == [] and files(node) == [], "check mode must touch nothing"
    # diff mode: one entry per part (the netconf file, the bridge, the routes, each boot file)
    out = res["_stdout"]
    for header in ("10-podnet.conflist", "bridge cni0", "owned routes (proto 77, table 254)", "boot.json", "90-nodenet-cni.conf",
                   "nodenet-cni-boot.service"):
        assert header in out, header

    res = run_module(M, args, netns=node.name, bin_dir=node.runtime, diff=True)
    assert res["changed"] and res["changed_parts"] == ["netconf", "bridge", "routes", "boot"], res
    assert bridge_addresses(node) == ["10.244.1.1/24"] and res["bridge"]["bridge"]["mtu"] == 1400
    assert owned_routes(node) == ["10.244.2.0/24 via 192.168.77.12"] and res["routes"]["added"] == ["10.244.2.0/24 via 192.168.77.12"]
    with open(node.tmp / "net.d" / "10-podnet.conflist") as f:
        assert json.load(f)["plugins"][0]["type"] == "nodenet-bridge"
    assert "nodenet/boot.json" in files(node) and "systemd/nodenet-cni-boot.service" in files(node)
    assert res["netconf"]["path"].endswith("10-podnet.conflist") and {f["action"] for f in res["boot"]["files"]} == {"created"}

    res = run_module(M, args, netns=node.name, bin_dir=node.runtime, diff=True)
    assert not res["changed"] and res["changed_parts"] == [], res
    assert all(not res[p]["changed"] for p in ("netconf", "bridge", "routes", "boot"))
    assert not run_module(M, args, netns=node.name, bin_dir=node.runtime, check=True)["changed"]

    # one part drifts: only it changes (check mode predicts it, then it is fixed)
    args2 = parts(node, peers=(("10.244.2.0/24", "192.168.77.12"), ("10.244.3.0/24", "192.168.77.13")))
    args2["boot"] = args["boot"]
    res = run_module(M, args2, netns=node.name, bin_dir=node.runtime, check=True)
    assert res["changed_parts"] == ["routes"] and len(owned_routes(node)) == 1
    res = run_module(M, args2, netns=node.name, bin_dir=node.runtime)
    assert res["changed_parts"] == ["routes"] and len(owned_routes(node)) == 2


def test_check_mode_on_a_node_without_the_plugin_runtime_predicts_instead_of_failing(node):
    """`site.yml --check` on a new node: cni_plugin's check mode installs nothing, so the node's python3
    (stock: no pyroute2, no netaddr) has neither. The parts that need them are reported as changing,
    unobserved and with a warning; the others are observed as usual; nothing is touched. A real run
    there still fails naming what to install."""
    args = parts(node)
    empty_bin = node.tmp / "bin-without-runtime"
    empty_bin.mkdir()
    res = run_module(M, args, netns=node.name, bin_dir=str(empty_bin), check=True, diff=True)
    assert not res.get("failed") and res["changed"], res
    assert res["changed_parts"] == ["netconf", "bridge", "routes", "boot"], res
    assert all(res[p] == {"changed": True, "predicted": True} for p in ("netconf", "bridge", "routes")), res
    assert res["boot"]["changed"] and "predicted" not in res["boot"], res
    assert "netconf, bridge, routes not inspected" in res["_stdout"] + res.get("_stderr", ""), res
    assert bridge_addresses(node) is None and files(node) == [], "check mode must touch nothing"
    res = run_module(M, args, netns=node.name, bin_dir=str(empty_bin))
    assert res.get("failed") and res["missing_libraries"] == ["pyroute2", "netaddr"], res
    assert bridge_addresses(node) is None


def test_parts_are_optional(node):
    only_boot = {"boot": parts(node)["boot"]}
    res = run_module(M, only_boot, netns=node.name, bin_dir=node.runtime)
    assert res["changed_parts"] == ["boot"] and "bridge" not in res and bridge_addresses(node) is None
    res = run_module(M, {}, netns=node.name, bin_dir=node.runtime)
    assert not res["changed"] and res["changed_parts"] == [], res


@pytest.mark.parametrize(
    "part, change, words",
    [
        ("bridge", {"mtu": 10}, "bridge.mtu"),
        ("bridge", {"mtu": "big"}, "bridge: argument 'mtu'"),
        ("bridge", {"addresses": ["10.244.1.1"]}, "bridge.addresses[0]"),
        ("bridge", {"colour": "red"}, "bridge: unsupported options: colour"),
        ("routes", {"routes": [{"subnet": "10.244.2.5/24", "via": "192.168.77.12"}]}, "routes.routes[0].subnet"),
        ("routes", {"protocol": 3}, "routes.protocol"),
        ("netconf", {"cni_version": "9.9.9"}, "netconf.cni_version"),
        ("netconf", {"plugins": None}, "netconf.plugins"),
        ("boot", {"restore": {"bridge": {"name": "cni0", "mtu": 5}}}, "boot.restore.bridge.mtu"),
        ("boot", {"command": ["python3"]}, "boot.command"),
    ],
)
def test_bad_options_fail_naming_them_and_change_nothing(node, part, change, words):
    args = parts(node)
    args[part].update(change)
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime)
    assert res.get("failed"), res
    assert words in res["msg"], res["msg"]
    assert bridge_addresses(node) is None and owned_routes(node) == [] and files(node) == []


def test_a_failing_part_reports_the_parts_before_it(node):
    node.run(["ip", "route", "add", "10.244.2.0/24", "via", "192.168.77.99"])  # a route the module does not own
    res = run_module(M, parts(node), netns=node.name, bin_dir=node.runtime)
    assert res.get("failed") and res["msg"].startswith("routes.routes: ") and "10.244.2.0/24" in res["msg"], res
    assert res["failed_part"] == "routes" and res["changed_parts"] == ["netconf", "bridge"] and res["changed"]
    assert owned_routes(node) == [] and "nodenet/boot.json" not in files(node)


def test_pod_subnets_part_keeps_the_nodes_subnets_in_one_file(node):
    path = node.tmp / "nodenet" / "pod_subnet"
    args = {"pod_subnets": {"path": str(path), "subnets": ["10.244.1.0/24", "fd00:10:244:1::/64"]}}
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime, check=True, diff=True)
    assert res["changed_parts"] == ["pod_subnets"] and not path.exists(), res
    assert "+10.244.1.0/24" in res["_stdout"] and str(path) in res["_stdout"]
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime)
    assert res["changed_parts"] == ["pod_subnets"] and res["pod_subnets"]["reasons"] == ["missing"], res
    assert path.read_text() == "10.244.1.0/24\nfd00:10:244:1::/64\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert not run_module(M, args, netns=node.name, bin_dir=node.runtime)["changed"]
    # a hand edit is put back; the other parts are not looked at
    path.write_text("10.244.9.0/24\n")
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime)
    assert res["pod_subnets"]["reasons"] == ["content"] and path.read_text().startswith("10.244.1.0/24\n")
    assert "bridge" not in res and bridge_addresses(node) is None
    # with the other parts: an unchanged file is not among the changed parts
    res = run_module(M, dict(parts(node), **args), netns=node.name, bin_dir=node.runtime)
    assert res["changed_parts"] == ["netconf", "bridge", "routes", "boot"], res
    res = run_module(M, {"pod_subnets": {"path": str(path), "state": "absent"}}, netns=node.name, bin_dir=node.runtime)
    assert res["changed_parts"] == ["pod_subnets"] and not path.exists()


@pytest.mark.parametrize(
    "change, words",
    [
        ({"subnets": ["10.244.1.5/24"]}, "pod_subnets.subnets[0]: '10.244.1.5/24' is not a subnet"),
        ({"subnets": ["10.244.1.0/24", "10.245.1.0/24"]}, "pod_subnets.subnets[1]: a second IPv4 subnet"),
        ({"subnets": []}, "pod_subnets.subnets: at least one"),
        ({"path": "relative/pod_subnet"}, "pod_subnets.path"),
    ],
)
def test_pod_subnets_bad_input_names_the_option(node, change, words):
    args = {"pod_subnets": dict({"path": str(node.tmp / "pod_subnet"), "subnets": ["10.244.1.0/24"]}, **change)}
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime)
    assert res.get("failed") and words in res["msg"], res
    assert files(node) == []


def test_pod_subnets_refuses_to_replace_a_directory(node):
    where = node.tmp / "pod_subnet"
    where.mkdir()
    res = run_module(M, {"pod_subnets": {"path": str(where), "subnets": ["10.244.1.0/24"]}}, netns=node.name, bin_dir=node.runtime)
    assert res.get("failed") and res["failed_part"] == "pod_subnets" and "is a directory" in res["msg"], res
    assert where.is_dir() and not res["changed"]
    # as the role runs it, with the other parts: subnets that cannot be persisted are not used
    res = run_module(M, dict(parts(node), pod_subnets={"path": str(where), "subnets": ["10.244.1.0/24"]}), netns=node.name, bin_dir=node.runtime)
    assert res.get("failed") and res["failed_part"] == "pod_subnets" and not res["changed"], res
    assert bridge_addresses(node) is None and os.listdir(str(node.tmp / "net.d")) == [] and owned_routes(node) == []


def test_the_subnets_are_persisted_before_a_later_part_fails(node):
    """The role's one converge run: pod_subnets goes first, so a node whose bridge or routes failed
    keeps the subnets its bridge may already carry (the next run finds them, and assigns them again)."""
    node.run(["ip", "route", "add", "10.244.2.0/24", "via", "192.168.77.99"])  # a route the module does not own
    path = node.tmp / "nodenet" / "pod_subnet"
    res = run_module(M, dict(parts(node), pod_subnets={"path": str(path), "subnets": ["10.244.1.0/24"]}), netns=node.name, bin_dir=node.runtime)
    assert res.get("failed") and res["failed_part"] == "routes", res
    assert res["changed_parts"] == ["pod_subnets", "netconf", "bridge"]
    assert path.read_text() == "10.244.1.0/24\n" and bridge_addresses(node) == ["10.244.1.1/24"]

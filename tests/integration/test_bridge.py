# SPDX-License-Identifier: GPL-3.0-or-later
"""bridge, exec'd like a runtime: every spec version, every option, the reference bugs we fix.

The plugin runs inside a test "host" namespace (host_ns); containers are
namespaces from netns_factory. IPAM is Python host-local when it exists,
else Go host-local from /usr/lib/cni (which speaks up to 1.0.0), or a
scripted fake where a test needs to see or steer the delegation.
"""

from __future__ import annotations

import json
import os

import pytest
from bridgetest import (
    VERSIONS,
    Bridge,
    addresses,
    bridge_conf,
    choose_ipam,
    cni_chains,
    default_routes,
    fake_calls,
    get_link,
    host_local,
    iptables_nat,
    leases,
    link_mac,
    link_names,
    link_names_eventually,
    nft_masq_comments,
    nft_ruleset,
    ping_eventually,
    routes,
    shows_result,
    snapshot,
    write_fake_ipam,
)
from cnitest import exec_plugin

IFF_UP = 0x1
IFF_PROMISC = 0x100
V4 = [{"subnet": "10.22.0.0/24"}]
V6 = [{"subnet": "fd00:22::/64"}]


@pytest.fixture(scope="session")
def ipam(cni_bin):
    chosen = choose_ipam(cni_bin)
    if chosen is None:
        pytest.skip("no host-local IPAM plugin available")
    return chosen


@pytest.fixture
def bridge(cni_bin, host_ns, ipam) -> Bridge:
    return Bridge(os.path.join(cni_bin, "nodenet-bridge"), host_ns, ipam.cni_path)


@pytest.fixture
def fake(tmp_path, cni_bin, host_ns):
    """(Bridge whose CNI_PATH finds only `fake-ipam`, call log path)."""
    bin_dir, log = write_fake_ipam(str(tmp_path / "fakebin"))
    return Bridge(os.path.join(cni_bin, "nodenet-bridge"), host_ns, bin_dir), log


def needs(ipam, version):
    if version not in ipam.versions:
        pytest.skip("%s host-local does not speak %s (NODENET_TEST_IPAM=go, or Python host-local missing)" % (ipam.impl, version))


def fake_ipam(result=None, fail=None):
    fake = {}
    if result is not None:
        fake["result"] = result
    if fail is not None:
        fake["fail"] = fail
    return {"type": "fake-ipam", "fake": fake}


# ---------------------------------------------------------------------------
# the whole life cycle, per spec version


@pytest.mark.parametrize("version", VERSIONS)
def test_add_check_del_for_every_version(version, bridge, ipam, host_ns, netns_factory, data_dir):
    needs(ipam, version)
    conf = bridge_conf(version, host_local(ipam.type, data_dir, V4), isDefaultGateway=True)
    c1, c2 = netns_factory("ctr1"), netns_factory("ctr2")
    r1 = bridge.add(conf, c1, container_id="ctr-one")
    r2 = bridge.add(conf, c2, container_id="ctr-two")
    ip1, ip2 = shows_result(version, r1, c1, host_ns), shows_result(version, r2, c2, host_ns)

    assert addresses(c1, "eth0") == [ip1] and addresses(c2, "eth0") == [ip2]
    assert default_routes(c1) == [("0.0.0.0/0", "10.22.0.1")]
    assert addresses(host_ns, "cni0", 4) == ["10.22.0.1/24"]
    assert host_ns.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == b"1"
    assert c1.ping("10.22.0.1") and c1.ping(ip2.split("/")[0])

    if version >= "0.4.0":
        bridge.check(conf, c1, r1, container_id="ctr-one").ok()
        bridge.check(conf, c2, r2, container_id="ctr-two").ok()
    prev = r1 if version >= "0.4.0" else None

    bridge.delete(conf, c1, prev, container_id="ctr-one").ok()
    bridge.delete(conf, c1, prev, container_id="ctr-one").ok()  # again: nothing left, still fine
    assert link_names(c1) == ["lo"]

    gone = c2.path
    c2.delete()
    bridge("DEL", conf, netns=gone, container_id="ctr-two").ok()
    bridge("DEL", conf, netns="", container_id="ctr-two").ok()
    assert leases(data_dir) == []
    assert link_names_eventually(host_ns, ["cni0", "lo"]) == ["cni0", "lo"]  # the bridge stays, ports are gone


def test_seed_config_gets_one_default_route(bridge, ipam, host_ns, container_ns, tmp_path):
    """seed.md: ipam.routes has 0.0.0.0/0 and isDefaultGateway is set. Reference v1.x: `file exists`."""
    data = str(tmp_path / "cni-data")
    conf = {
        "cniVersion": "0.3.1",
        "name": "mynet",
        "type": "bridge",
        "bridge": "cni0",
        "isDefaultGateway": True,
        "forceAddress": False,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {
            "type": ipam.type,
            "ranges": [[{"subnet": "10.13.0.0/22", "rangeStart": "10.13.3.8", "rangeEnd": "10.13.3.253", "gateway": "10.13.3.254"}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": data,
        },
    }
    res = bridge.add(conf, container_ns, container_id="7ac145c133dc63c2")
    assert res["ips"] == [{"version": "4", "interface": 2, "address": "10.13.3.8/22", "gateway": "10.13.3.254"}]
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.13.3.254"}]
    assert default_routes(container_ns) == [("0.0.0.0/0", "10.13.3.254")]
    assert addresses(host_ns, "cni0", 4) == ["10.13.3.254/22"]
    assert any("id: 7ac145c133dc63c2" in c for c in nft_masq_comments(host_ns))
    assert container_ns.ping("10.13.3.254")
    bridge.delete(conf, container_ns, container_id="7ac145c133dc63c2").ok()
    assert nft_masq_comments(host_ns) == [] and leases(data, "mynet") == []


# ---------------------------------------------------------------------------
# ipMasq


def masq_present(host_ns, backend, cid):
    if backend == "nftables":
        return [c for c in nft_masq_comments(host_ns) if c.endswith("id: " + cid)]
    v4, v6 = iptables_nat(host_ns, 4), iptables_nat(host_ns, 6)
    return [line for line in v4 + v6 if ('id: \\"%s\\"' % cid) in line]


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_ipmasq_rules_are_removed_on_every_kind_of_del(backend, bridge, ipam, host_ns, netns_factory, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4, [{"subnet": "fd00:22::/64"}]), isGateway=True, ipMasq=True, ipMasqBackend=backend)
    for how in ("normal", "netns gone", "empty CNI_NETNS"):
        ctr = netns_factory("masq")
        cid = "masq-" + how.split()[0]
        res = bridge.add(conf, ctr, container_id=cid)
        assert [":" in ip["address"] for ip in res["ips"]] == [False, True]
        rules = masq_present(host_ns, backend, cid)
        if backend == "nftables":
            assert len(rules) == 2  # one per address
        else:
            v4, v6 = iptables_nat(host_ns, 4), iptables_nat(host_ns, 6)
            assert len(cni_chains(v4)) == 1 and len(cni_chains(v6)) == 1
            chain = cni_chains(v4)[0]
            assert any(line.startswith("-A POSTROUTING -s %s/32 " % res["ips"][0]["address"].split("/")[0]) and line.endswith("-j " + chain) for line in v4)
            assert any("-j MASQUERADE" in line and line.startswith("-A " + chain) for line in v4)
        bridge.check(conf, ctr, res, container_id=cid).ok()
        if how == "normal":
            bridge.delete(conf, ctr, res, container_id=cid).ok()
        elif how == "netns gone":
            path = ctr.path
            ctr.delete()
            bridge.delete(conf, prev=res, netns=path, container_id=cid).ok()
        else:
            bridge.delete(conf, netns="", container_id=cid).ok()  # no prevResult either
        assert masq_present(host_ns, backend, cid) == [], how
        if backend == "iptables":
            assert cni_chains(iptables_nat(host_ns, 4)) == [] and cni_chains(iptables_nat(host_ns, 6)) == []
    assert leases(data_dir) == []


def test_check_fails_when_ipmasq_rules_are_missing(bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), ipMasq=True, ipMasqBackend="nftables")
    res = bridge.add(conf, container_ns)
    host_ns.run(["nft", "flush", "chain", "inet", "cni_plugins_masquerade", "masq_checks"])
    run = bridge.check(conf, container_ns, res)
    assert run.rc != 0 and "ipMasq" in run.json["msg"]


# ---------------------------------------------------------------------------
# the bridge itself


def test_existing_bridge_with_another_ipv4_address_fails_unless_force_address(bridge, ipam, host_ns, container_ns, data_dir):
    with host_ns.ipr() as ipr:
        ipr.link("add", ifname="cni0", kind="bridge")
        idx = ipr.link_lookup(ifname="cni0")[0]
        ipr.addr("add", index=idx, address="10.99.0.1", prefixlen=24)
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), isGateway=True)
    before = snapshot(host_ns, [container_ns], data_dir)
    run = bridge("ADD", conf, container_ns)
    assert run.rc == 1 and run.json["code"] == 999
    assert '"cni0" already has an IP address different from 10.22.0.1/24' in run.json["msg"].replace("'", '"')
    assert snapshot(host_ns, [container_ns], data_dir) == before  # veth and lease rolled back

    bridge.add(dict(conf, forceAddress=True), container_ns)
    assert addresses(host_ns, "cni0", 4) == ["10.22.0.1/24"]


def test_two_ipv4_range_sets_put_both_gateways_on_the_bridge(bridge, ipam, host_ns, container_ns, data_dir):
    """The reference makes the second gateway conflict with the first (or flap with forceAddress)."""
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4, [{"subnet": "10.23.0.0/24"}]), isGateway=True)
    res = bridge.add(conf, container_ns)
    assert [ip["address"] for ip in res["ips"]] == ["10.22.0.2/24", "10.23.0.2/24"]
    assert sorted(addresses(host_ns, "cni0", 4)) == ["10.22.0.1/24", "10.23.0.1/24"]
    bridge.check(conf, container_ns, res).ok()


def test_ipv6_gateways_conflict_only_when_they_overlap(bridge, ipam, host_ns, netns_factory, data_dir):
    with host_ns.ipr() as ipr:
        ipr.link("add", ifname="cni0", kind="bridge")
        idx = ipr.link_lookup(ifname="cni0")[0]
        ipr.addr("add", index=idx, address="fd00:99::1", prefixlen=64)
        ipr.addr("add", index=idx, address="fd00:22::99", prefixlen=64)
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V6), isGateway=True)
    run = bridge("ADD", conf, netns_factory("v6a"))
    assert run.rc == 1 and "already has an IP address different from fd00:22::1/64" in run.json["msg"]
    with host_ns.ipr() as ipr:
        ipr.addr("del", index=idx, address="fd00:22::99", prefixlen=64)
    bridge.add(conf, netns_factory("v6b"))
    assert sorted(addresses(host_ns, "cni0", 6)) == ["fd00:22::1/64", "fd00:99::1/64"]


def test_a_non_bridge_link_named_like_the_bridge_is_an_error(bridge, ipam, host_ns, container_ns, data_dir):
    with host_ns.ipr() as ipr:
        ipr.link("add", ifname="cni0", kind="veth", peer="cni0peer")  # this kernel has no dummy
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), isGateway=True)
    before = snapshot(host_ns, [container_ns], data_dir)
    run = bridge("ADD", conf, container_ns)
    assert run.rc == 1 and "already exists but is not a bridge" in run.json["msg"]
    assert snapshot(host_ns, [container_ns], data_dir) == before
    assert get_link(host_ns, "cni0").get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "veth"


def test_zero_mac_bridge_gets_a_gateway(bridge, ipam, host_ns, netns_factory, data_dir):
    """An L2 ADD+DEL leaves an unpinned bridge whose MAC can drop to zero; the reference then fails."""
    l2 = bridge_conf("1.0.0", None)
    ctr = netns_factory("l2")
    bridge.add(l2, ctr)
    bridge.delete(l2, ctr).ok()
    assert link_mac(host_ns, "cni0") == "00:00:00:00:00:00"  # the state the reference trips over
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), isGateway=True)
    res = bridge.add(conf, netns_factory("l3"))
    mac = link_mac(host_ns, "cni0")
    assert mac != "00:00:00:00:00:00" and res["interfaces"][0]["mac"] == mac


def test_promisc_mode_sets_the_bridge_promiscuous(bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), promiscMode=True)
    res = bridge.add(conf, container_ns)
    assert get_link(host_ns, "cni0")["flags"] & IFF_PROMISC
    bridge.check(conf, container_ns, res).ok()


def test_mtu_applies_to_a_new_bridge_and_both_veth_ends(bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), mtu=1400)
    res = bridge.add(conf, container_ns)
    assert get_link(host_ns, "cni0").get_attr("IFLA_MTU") == 1400
    assert get_link(host_ns, res["interfaces"][1]["name"]).get_attr("IFLA_MTU") == 1400
    assert get_link(container_ns, "eth0").get_attr("IFLA_MTU") == 1400


# ---------------------------------------------------------------------------
# the port


def port_flags(host_ns, name):
    with host_ns.ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)[0]
        info = ipr.brport("show", index=idx)[0].get_attr("IFLA_PROTINFO")
        return info.get_attr("IFLA_BRPORT_MODE"), info.get_attr("IFLA_BRPORT_ISOLATED")


@pytest.mark.parametrize("hairpin, isolated", [(False, False), (True, True)])
def test_hairpin_and_port_isolation_flags(hairpin, isolated, bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), hairpinMode=hairpin, portIsolation=isolated)
    res = bridge.add(conf, container_ns)
    assert port_flags(host_ns, res["interfaces"][1]["name"]) == (int(hairpin), int(isolated))


def test_isolated_ports_cannot_reach_each_other_but_reach_the_gateway(bridge, ipam, host_ns, netns_factory, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), isGateway=True, portIsolation=True)
    c1, c2 = netns_factory("iso1"), netns_factory("iso2")
    bridge.add(conf, c1, container_id="iso-one")
    r2 = bridge.add(conf, c2, container_id="iso-two")
    assert c1.ping("10.22.0.1")
    assert not c1.ping(r2["ips"][0]["address"].split("/")[0], timeout=1)


def vlan_filtering_supported(host_ns) -> bool:
    from pyroute2.netlink.exceptions import NetlinkError

    with host_ns.ipr() as ipr:
        try:
            ipr.link("add", ifname="vfprobe", kind="bridge", br_vlan_filtering=1)
        except NetlinkError:
            return False
        ipr.link("del", index=ipr.link_lookup(ifname="vfprobe")[0])
        return True


def test_vlan_access_port_or_a_clean_error(bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), vlan=100, vlanTrunk=[{"id": 200}, {"minID": 300, "maxID": 302}])
    if not vlan_filtering_supported(host_ns):
        before = snapshot(host_ns, [container_ns], data_dir)
        run = bridge("ADD", conf, container_ns)
        assert run.rc == 1 and "VLAN filtering is not supported" in run.json["msg"]
        assert snapshot(host_ns, [container_ns], data_dir) == before
        return
    res = bridge.add(conf, container_ns)
    with host_ns.ipr() as ipr:
        idx = ipr.link_lookup(ifname=res["interfaces"][1]["name"])[0]
        vids = {}
        for msg in ipr.get_vlans():
            if msg["index"] == idx:
                for name, value in msg.get_attr("IFLA_AF_SPEC")["attrs"]:
                    if name == "IFLA_BRIDGE_VLAN_INFO":
                        vids[value["vid"]] = value["flags"]
    assert vids[100] & 0x6 == 0x6  # PVID + untagged
    assert set(vids) == {100, 200, 300, 301, 302}


def test_macspoofchk_rules_follow_the_attachment(bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), macspoofchk=True)
    res = bridge.add(conf, container_ns, container_id="spoofy")
    chains = [o["chain"]["name"] for o in nft_ruleset(host_ns) if "chain" in o and o["chain"]["family"] == "bridge"]
    assert {"PREROUTING", "cni-br-iface-spoofy-eth0", "cni-br-iface-spoofy-eth0-mac"} <= set(chains)
    text = host_ns.run(["nft", "list", "table", "bridge", "nat"]).stdout.decode()
    assert 'iifname "%s" jump cni-br-iface-spoofy-eth0' % res["interfaces"][1]["name"] in text
    assert "ether saddr %s return" % res["interfaces"][2]["mac"] in text
    bridge.check(conf, container_ns, res, container_id="spoofy").ok()
    bridge.delete(conf, container_ns, res, container_id="spoofy").ok()
    text = host_ns.run(["nft", "list", "table", "bridge", "nat"]).stdout.decode()
    assert "spoofy" not in text


# ---------------------------------------------------------------------------
# the container end


@pytest.mark.parametrize(
    "cni_args, args_mac, runtime_mac, expected",
    [
        ("MAC=0a:58:0a:00:00:11", None, None, "0a:58:0a:00:00:11"),
        ("MAC=0a:58:0a:00:00:11", "0a:58:0a:00:00:22", None, "0a:58:0a:00:00:22"),
        ("MAC=0a:58:0a:00:00:11", "0a:58:0a:00:00:22", "0A-58-0A-00-00-33", "0a:58:0a:00:00:33"),
        ("", None, "0a:58:0a:00:00:33", "0a:58:0a:00:00:33"),
    ],
)
def test_container_mac_precedence(cni_args, args_mac, runtime_mac, expected, bridge, host_ns, container_ns):
    conf = bridge_conf("1.0.0", None)
    if args_mac:
        conf["args"] = {"cni": {"mac": args_mac}}
    if runtime_mac:
        conf["runtimeConfig"] = {"mac": runtime_mac}
    res = bridge.add(conf, container_ns, cni_args=cni_args)
    assert res["interfaces"][2]["mac"] == expected == link_mac(container_ns, "eth0")


def test_l2_bridge_connects_containers_and_checks(bridge, host_ns, netns_factory):
    conf = bridge_conf("1.0.0", None)
    c1, c2 = netns_factory("l2a"), netns_factory("l2b")
    r1 = bridge.add(conf, c1, container_id="l2-one")
    bridge.add(conf, c2, container_id="l2-two")
    assert set(r1) == {"cniVersion", "interfaces"} and len(r1["interfaces"]) == 3
    assert get_link(c1, "eth0")["flags"] & IFF_UP
    assert addresses(c1, "eth0") == [] and addresses(host_ns, "cni0") == []
    bridge.check(conf, c1, r1, container_id="l2-one").ok()  # reference: "no plugin name provided"
    for ns, address in ((c1, "192.168.77.1"), (c2, "192.168.77.2")):
        with ns.ipr() as ipr:
            ipr.addr("add", index=ipr.link_lookup(ifname="eth0")[0], address=address, prefixlen=24)
    assert c1.ping("192.168.77.2")
    bridge.delete(conf, c1, r1, container_id="l2-one").ok()
    assert link_names(c1) == ["lo"]


def test_disable_container_interface_leaves_it_down(bridge, host_ns, container_ns):
    conf = bridge_conf("1.0.0", None, disableContainerInterface=True)
    res = bridge.add(conf, container_ns)
    assert not get_link(container_ns, "eth0")["flags"] & IFF_UP
    assert res["interfaces"][1]["name"] in link_names(host_ns)


def test_container_ifname_that_exists_on_the_host_is_fine(bridge, ipam, host_ns, container_ns, data_dir):
    with host_ns.ipr() as ipr:
        ipr.link("add", ifname="eth0", kind="veth", peer="eth0peer")
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4))
    bridge.add(conf, container_ns)
    assert get_link(host_ns, "eth0").get_attr("IFLA_MASTER") is None  # untouched, not a port
    assert get_link(container_ns, "eth0").get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "veth"


def test_add_twice_fails_and_leaks_nothing(bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), isDefaultGateway=True, ipMasq=True)
    bridge.add(conf, container_ns)
    before = snapshot(host_ns, [container_ns], data_dir)
    run = bridge("ADD", conf, container_ns)
    assert run.rc == 1 and "already exists" in run.json["msg"]
    assert snapshot(host_ns, [container_ns], data_dir) == before


def test_parallel_adds_on_a_new_bridge(bridge, ipam, host_ns, netns_factory, data_dir):
    """Racing first ADDs: bridge, gateway address and nft table are created by whoever wins, once."""
    from concurrent.futures import ThreadPoolExecutor

    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), isDefaultGateway=True, ipMasq=True, ipMasqBackend="nftables")
    ctrs = [netns_factory("par%d" % i) for i in range(4)]
    with ThreadPoolExecutor(len(ctrs)) as pool:
        runs = list(pool.map(lambda i: bridge("ADD", conf, ctrs[i], container_id="par-%d" % i), range(len(ctrs))))
    results = [run.ok().json for run in runs]
    assert len({r["ips"][0]["address"] for r in results}) == len(ctrs)
    assert addresses(host_ns, "cni0", 4) == ["10.22.0.1/24"]
    assert len(nft_masq_comments(host_ns)) == len(ctrs)
    assert all(c.ping("10.22.0.1") for c in ctrs)


def test_failure_after_ipam_releases_the_lease_and_removes_the_veth(bridge, ipam, host_ns, container_ns, data_dir):
    # a route via a gateway the container cannot reach: the kernel refuses it after IPAM ADD
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4, routes=[{"dst": "10.200.0.0/16", "gw": "192.0.2.1"}]), ipMasq=True)
    before = snapshot(host_ns, [container_ns], data_dir)
    run = bridge("ADD", conf, container_ns)
    assert run.rc == 1 and "10.200.0.0/16" in run.json["msg"]
    after = snapshot(host_ns, [container_ns], data_dir)
    assert after["leases"] == [] and after["ctr_links"] == before["ctr_links"]
    assert [n for n in after["host_links"] if n.startswith("veth")] == []


def test_ipv6_only(bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V6), isDefaultGateway=True)
    res = bridge.add(conf, container_ns)
    assert res["ips"] == [{"interface": 2, "address": "fd00:22::2/64", "gateway": "fd00:22::1"}]
    assert res["routes"] == [{"dst": "::/0", "gw": "fd00:22::1"}]
    assert addresses(container_ns, "eth0", 6) == ["fd00:22::2/64"]
    assert ("::/0", "fd00:22::1") in routes(container_ns, 6)
    assert "fd00:22::1/64" in addresses(host_ns, "cni0", 6)
    assert host_ns.run(["sysctl", "-n", "net.ipv6.conf.all.forwarding"]).stdout.strip() == b"1"
    assert ping_eventually(container_ns, "fd00:22::1")
    bridge.check(conf, container_ns, res).ok()


def test_dual_stack_containers_reach_each_other(bridge, ipam, host_ns, netns_factory, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4, V6), isDefaultGateway=True)
    c1, c2 = netns_factory("ds1"), netns_factory("ds2")
    r1 = bridge.add(conf, c1, container_id="ds-one")
    r2 = bridge.add(conf, c2, container_id="ds-two")
    assert [ip["address"] for ip in r1["ips"]] == ["10.22.0.2/24", "fd00:22::2/64"]
    assert r1["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.22.0.1"}, {"dst": "::/0", "gw": "fd00:22::1"}]
    assert default_routes(c1, 4) == [("0.0.0.0/0", "10.22.0.1")] and default_routes(c1, 6) == [("::/0", "fd00:22::1")]
    assert c1.ping(r2["ips"][0]["address"].split("/")[0])
    assert ping_eventually(c1, r2["ips"][1]["address"].split("/")[0])
    assert ping_eventually(c2, "fd00:22::1")
    bridge.check(conf, c1, r1, container_id="ds-one").ok()
    bridge.delete(conf, c1, r1, container_id="ds-one").ok()
    bridge.delete(conf, c2, r2, container_id="ds-two").ok()
    assert leases(data_dir) == []


def test_dns_in_netconf_replaces_the_ipam_dns(bridge, ipam, host_ns, container_ns, data_dir):
    dns = {"nameservers": ["10.22.0.53"], "search": ["svc.cluster.local"]}
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), dns=dns)
    assert bridge.add(conf, container_ns)["dns"] == dns


def test_check_notices_a_missing_address_and_a_missing_prev_result(bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4))
    res = bridge.add(conf, container_ns)
    run = bridge("CHECK", conf, container_ns)
    assert run.rc == 1 and "prevResult" in run.json["msg"]
    with container_ns.ipr() as ipr:
        ipr.addr("del", index=ipr.link_lookup(ifname="eth0")[0], address="10.22.0.2", prefixlen=24)
    run = bridge.check(conf, container_ns, res)
    assert run.rc == 1 and "10.22.0.2/24" in run.json["msg"]


# ---------------------------------------------------------------------------
# delegation to IPAM: the same stdin, the whole env; GC and STATUS (1.1.0)


def test_ipam_gets_the_identical_stdin_and_env_on_1_1_0(fake, host_ns, container_ns):
    bridge, log = fake
    result = {"ips": [{"address": "10.61.0.5/24", "gateway": "10.61.0.1"}], "routes": [{"dst": "0.0.0.0/0"}]}
    conf = bridge_conf("1.1.0", fake_ipam(result), isGateway=True)
    stdin = json.dumps(conf, indent=1).encode()
    run = bridge("ADD", None, container_ns, stdin=stdin, container_id="same-stdin", cni_args="IgnoreUnknown=1;K8S_POD_NAME=x")
    res = run.ok().json
    assert res["ips"] == [{"interface": 2, "address": "10.61.0.5/24", "gateway": "10.61.0.1"}]
    assert res["routes"] == [{"dst": "0.0.0.0/0"}]  # as IPAM said; installed via the gateway
    assert default_routes(container_ns) == [("0.0.0.0/0", "10.61.0.1")]
    (call,) = fake_calls(log)
    assert call["command"] == "ADD" and call["stdin"].encode() == stdin
    assert call["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=x" and call["env"]["CNI_CONTAINERID"] == "same-stdin"
    assert call["env"]["CNI_NETNS"] == container_ns.path and call["env"]["CNI_IFNAME"] == "eth0"
    bridge.check(conf, container_ns, res, container_id="same-stdin").ok()
    bridge.delete(conf, container_ns, res, container_id="same-stdin").ok()
    assert [c["command"] for c in fake_calls(log)] == ["ADD", "CHECK", "DEL"]


def test_a_failing_ipam_add_leaves_nothing(fake, host_ns, container_ns, data_dir):
    bridge, log = fake
    conf = bridge_conf("1.1.0", fake_ipam(fail={"ADD": {"code": 11, "msg": "range busy, try again"}}))
    run = bridge("ADD", conf, container_ns)
    assert run.rc == 1 and run.json["code"] == 11 and run.json["msg"] == "range busy, try again"
    assert link_names(container_ns) == ["lo"] and [n for n in link_names(host_ns) if n.startswith("veth")] == []


def test_del_gives_ipam_the_identical_stdin_and_env_in_the_runtime_s_netns(fake, host_ns, container_ns):
    """The IPAM DEL gets the runtime's stdin and env and runs in the namespace the runtime
    exec'd bridge in (in the agent: the agent's, never a pod's a worker entered)."""
    bridge, log = fake
    result = {"ips": [{"address": "10.61.0.6/24", "gateway": "10.61.0.1"}]}
    conf = bridge_conf("1.1.0", fake_ipam(result), isGateway=True)
    res = bridge.add(conf, container_ns, container_id="del-env")
    stdin = json.dumps(dict(conf, prevResult=res), indent=2).encode()
    bridge("DEL", None, container_ns, stdin=stdin, container_id="del-env", cni_args="IgnoreUnknown=1;K8S_POD_NAME=y").ok()
    add, delete = fake_calls(log)
    assert delete["command"] == "DEL" and delete["stdin"].encode() == stdin
    assert delete["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=y" and delete["env"]["CNI_CONTAINERID"] == "del-env"
    assert delete["env"]["CNI_NETNS"] == container_ns.path and delete["env"]["CNI_IFNAME"] == "eth0"
    assert add["netns"] == delete["netns"] == "net:[%d]" % os.stat(host_ns.path).st_ino  # never the pod's
    assert link_names(container_ns) == ["lo"] and [n for n in link_names(host_ns) if n.startswith("veth")] == []


def test_a_failing_ipam_del_is_the_error_and_the_veth_is_removed_all_the_same(fake, host_ns, container_ns):
    bridge, log = fake
    result = {"ips": [{"address": "10.61.0.7/24", "gateway": "10.61.0.1"}]}
    conf = bridge_conf("1.1.0", fake_ipam(result, fail={"DEL": {"code": 11, "msg": "store busy, try again"}}), isGateway=True)
    res = bridge.add(conf, container_ns)
    run = bridge.delete(conf, container_ns, res)
    assert run.rc == 1 and run.json["code"] == 11 and run.json["msg"] == "store busy, try again"
    assert link_names(container_ns) == ["lo"] and [n for n in link_names(host_ns) if n.startswith("veth")] == []
    assert [c["command"] for c in fake_calls(log)] == ["ADD", "DEL"]


def test_when_both_the_link_and_the_ipam_del_fail_the_ipam_error_is_reported(fake, host_ns, container_ns):
    """Deleting `lo` fails (the kernel refuses): with IPAM failing too, IPAM's error wins, as before."""
    bridge, log = fake
    conf = bridge_conf("1.1.0", fake_ipam(fail={"DEL": {"code": 11, "msg": "store busy, try again"}}), isGateway=True)
    run = bridge.delete(conf, container_ns, ifname="lo")
    assert run.rc == 1 and run.json["code"] == 11 and run.json["msg"] == "store busy, try again"
    ok = bridge_conf("1.1.0", fake_ipam(), isGateway=True)
    run = bridge.delete(ok, container_ns, ifname="lo")
    assert run.rc == 1 and run.json["code"] != 11 and "lo" in run.json["msg"], run
    assert [c["command"] for c in fake_calls(log)] == ["DEL", "DEL"]
    assert link_names(container_ns) == ["lo"]


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_gc_releases_ipam_and_ipmasq_of_stale_attachments(backend, fake, host_ns, netns_factory):
    bridge, log = fake
    keep, stale = netns_factory("keep"), netns_factory("stale")
    base = bridge_conf("1.1.0", fake_ipam(), ipMasq=True, ipMasqBackend=backend)
    for ctr, cid, ip in ((keep, "keep-me", "10.62.0.2/24"), (stale, "stale-one", "10.62.0.3/24")):
        conf = dict(base, ipam=fake_ipam({"ips": [{"address": ip, "gateway": "10.62.0.1"}]}))
        bridge.add(conf, ctr, container_id=cid)
    assert masq_present(host_ns, backend, "keep-me") and masq_present(host_ns, backend, "stale-one")
    gc = dict(base, **{"cni.dev/valid-attachments": [{"containerID": "keep-me", "ifname": "eth0"}]})
    exec_plugin(bridge.plugin, "GC", gc, host=host_ns, cni_path=bridge.cni_path, env={"CNI_CONTAINERID": None, "CNI_NETNS": None, "CNI_IFNAME": None}).ok()
    assert masq_present(host_ns, backend, "keep-me")
    assert masq_present(host_ns, backend, "stale-one") == []
    assert fake_calls(log)[-1]["command"] == "GC"


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_gc_without_the_valid_attachments_key_keeps_every_ipmasq_rule(backend, fake, host_ns, container_ns):
    """Not told what is valid, GC frees nothing (host-local's rule too); it removed every rule before (issue 10 item 12)."""
    bridge, _log = fake
    base = bridge_conf("1.1.0", fake_ipam(), ipMasq=True, ipMasqBackend=backend)
    conf = dict(base, ipam=fake_ipam({"ips": [{"address": "10.62.0.2/24", "gateway": "10.62.0.1"}]}))
    bridge.add(conf, container_ns, container_id="live-one")
    exec_plugin(bridge.plugin, "GC", base, host=host_ns, cni_path=bridge.cni_path, env={"CNI_CONTAINERID": None, "CNI_NETNS": None, "CNI_IFNAME": None}).ok()
    assert masq_present(host_ns, backend, "live-one")


def test_status_is_the_ipam_status(fake, host_ns):
    bridge, log = fake
    env = {"CNI_CONTAINERID": None, "CNI_NETNS": None, "CNI_IFNAME": None}
    ok = bridge_conf("1.1.0", fake_ipam())
    exec_plugin(bridge.plugin, "STATUS", ok, host=host_ns, cni_path=bridge.cni_path, env=env).ok()
    assert fake_calls(log)[-1]["command"] == "STATUS"
    down = bridge_conf("1.1.0", fake_ipam(fail={"STATUS": {"code": 50, "msg": "no addresses left"}}))
    run = exec_plugin(bridge.plugin, "STATUS", down, host=host_ns, cni_path=bridge.cni_path, env=env)
    assert run.rc == 1 and run.json["code"] == 50
    exec_plugin(bridge.plugin, "STATUS", bridge_conf("1.1.0", None), host=host_ns, cni_path=bridge.cni_path, env=env).ok()


# ---------------------------------------------------------------------------
# bad input: the spec error, and nothing touched


def _set(path, value):
    def apply(conf):
        target = conf
        keys = path.split(".")
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
        return conf

    return apply


BAD_INPUT = [
    # id, change to the netconf, exec overrides, code, words in msg
    ("bool as string", _set("isGateway", "true"), {}, 7, "'isGateway'"),
    ("port isolation as string", _set("portIsolation", "true"), {}, 7, "'portIsolation'"),
    ("mtu as string", _set("mtu", "1500"), {}, 7, "'mtu'"),
    ("mtu too small", _set("mtu", 10), {}, 7, "'mtu'"),
    ("vlan out of range", _set("vlan", 4095), {}, 7, "'vlan'"),
    ("vlan as bool", _set("vlan", True), {}, 7, "'vlan'"),
    ("trunk not a list", _set("vlanTrunk", {"id": 5}), {}, 7, "'vlanTrunk'"),
    ("trunk id 0", _set("vlanTrunk", [{"id": 0}]), {}, 7, "incorrect trunk id"),
    ("trunk maxID missing", _set("vlanTrunk", [{"minID": 10}]), {}, 7, "maxID is missing"),
    ("trunk min > max", _set("vlanTrunk", [{"minID": 20, "maxID": 10}]), {}, 7, "minID is greater than maxID"),
    ("trunk id as string", _set("vlanTrunk", [{"id": "7"}]), {}, 7, "vlanTrunk[0].id"),
    ("hairpin and promisc", lambda c: dict(c, hairpinMode=True, promiscMode=True), {}, 7, "hairpin"),
    ("disabled iface with ipam", _set("disableContainerInterface", True), {}, 7, "disableContainerInterface"),
    ("bridge name too long", _set("bridge", "b" * 16), {}, 7, "'bridge'"),
    ("bridge name not a string", _set("bridge", 5), {}, 7, "'bridge'"),
    ("unknown ipMasqBackend", _set("ipMasqBackend", "pf"), {}, 7, "'ipMasqBackend'"),
    ("bad runtimeConfig mac", _set("runtimeConfig.mac", "zz:zz:zz:zz:zz:zz"), {}, 7, "runtimeConfig.mac"),
    ("multicast args mac", _set("args.cni.mac", "01:00:5e:00:00:01"), {}, 7, "args.cni.mac"),
    ("bad CNI_ARGS MAC", None, {"cni_args": "MAC=nope"}, 4, "CNI_ARGS MAC"),
    ("unknown CNI_ARGS key", None, {"cni_args": "FOO=bar"}, 4, "FOO=bar"),
    ("ipam not an object", _set("ipam", "host-local"), {}, 7, "'ipam'"),
    ("ipam plugin missing", _set("ipam.type", "no-such-ipam"), {}, 999, "no-such-ipam"),
    ("L2 on 0.2.0", lambda c: dict({k: v for k, v in c.items() if k != "ipam"}, cniVersion="0.2.0"), {}, 7, "0.2.0"),
    ("missing CNI_NETNS", None, {"netns": ""}, 4, "CNI_NETNS"),
    ("missing CNI_PATH", None, {"env": {"CNI_PATH": None}}, 4, "CNI_PATH"),
    ("netns path missing", None, {"netns": "/var/run/netns/nnt-no-such-ns"}, 999, "failed to open netns"),
    ("bad ifname", None, {"ifname": "eth/0"}, 4, "CNI_IFNAME"),
    ("ifname too long", None, {"ifname": "e" * 16}, 4, "CNI_IFNAME"),
    ("bad container id", None, {"container_id": "../x"}, 4, "CNI_CONTAINERID"),
    ("bad network name", _set("name", "a b"), {}, 7, "network name"),
    ("bad JSON", None, {"stdin": b'{"cniVersion": "1.0.0",'}, 6, "network config"),
    ("unsupported cniVersion", _set("cniVersion", "0.9.0"), {}, 1, "incompatible CNI versions"),
    ("CHECK on 0.3.1", _set("cniVersion", "0.3.1"), {"command": "CHECK"}, 1, "CHECK"),
]


@pytest.mark.parametrize("change, overrides, code, words", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_a_spec_error_and_touches_nothing(change, overrides, code, words, bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), isDefaultGateway=True, ipMasq=True, macspoofchk=True)
    if change is not None:
        conf = change(json.loads(json.dumps(conf)))
    overrides = dict(overrides)
    command = overrides.pop("command", "ADD")
    overrides.setdefault("netns", container_ns.path)
    before = snapshot(host_ns, [container_ns], data_dir)
    run = bridge(command, conf, **overrides)
    assert run.rc != 0, run.stdout
    err = run.json
    assert err["code"] == code, err
    assert words in err["msg"] + err.get("details", ""), err
    assert snapshot(host_ns, [container_ns], data_dir) == before


# ---------------------------------------------------------------------------
# what real runtimes send (issue 7)


@pytest.mark.parametrize(
    "broken",
    [
        {"prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "garbage"}]}},
        {"prevResult": "garbage"},
        {"runtimeConfig": {"mac": 5}, "args": {"cni": {"mac": ["x"]}}},
        {"runtimeConfig": "garbage"},
    ],
)
def test_del_with_prev_result_or_capability_args_that_do_not_parse_cleans_up_and_succeeds(broken, bridge, ipam, host_ns, container_ns, data_dir):
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4), isGateway=True, ipMasq=True, ipMasqBackend="nftables")
    res = bridge.add(conf, container_ns, container_id="brk")
    assert leases(data_dir) and masq_present(host_ns, "nftables", "brk")
    bridge.delete(dict(conf, **broken), container_ns, container_id="brk", cni_args="MAC=nope").ok()
    assert leases(data_dir) == [] and masq_present(host_ns, "nftables", "brk") == []
    assert link_names(container_ns) == ["lo"] and res["interfaces"][1]["name"] not in link_names(host_ns)


def test_del_succeeds_when_a_plain_file_is_left_where_the_netns_was(bridge, ipam, host_ns, netns_factory, data_dir, tmp_path):
    """A lost bind mount leaves a file that is no netns: DEL knows it by the type NetnsGone."""
    conf = bridge_conf("1.0.0", host_local(ipam.type, data_dir, V4))
    ctr = netns_factory("leftover")
    res = bridge.add(conf, ctr, container_id="leftover")
    ctr.delete()  # the pod's veth goes with it
    leftover = tmp_path / "leftover-netns"
    leftover.write_text("")
    bridge.delete(conf, prev=res, netns=str(leftover), container_id="leftover").ok()
    assert leases(data_dir) == []
    assert link_names_eventually(host_ns, ["cni0", "lo"]) == ["cni0", "lo"]  # the pod's veth went with its netns


def test_options_in_go_spelling_and_nulls(bridge, ipam, host_ns, container_ns, data_dir):
    conf = {"CNIVersion": "1.0.0", "Name": "gonet", "Type": "nodenet-bridge", "Bridge": "gobr0", "IsGateway": True,
            "ipMasq": None, "MTU": 1400, "IPAM": host_local(ipam.type, data_dir, V4)}
    res = bridge.add(conf, container_ns, container_id="gospell")
    assert res["interfaces"][0]["name"] == "gobr0" and get_link(host_ns, "gobr0") is not None
    assert res["ips"][0]["gateway"] == "10.22.0.1"
    bridge.delete(conf, container_ns, container_id="gospell").ok()
    bridge.delete(conf, netns="", container_id="gospell").ok()  # containerd's RemovePodSandbox DEL
    assert leases(data_dir, "gonet") == []

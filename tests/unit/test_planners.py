# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules' pure planners, without root and without a kernel: what
cni_routes, cni_bridge and cni_netconf decide from an observed state, and
portmap's reading of its options (issue 11 item 8)."""

import json
import os

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import parse_netconf
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.portmap import parse_portmap
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import bridge_state, netconf_file
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.owned_routes import PodRoute, check_owner, parse_routes, plan_absent, plan_routes
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import ERR_INVALID_NETCONF, CNIError

# -- cni_routes: plan_routes / plan_absent ---------------------------------------------


def routes(*items):
    return parse_routes([dict(zip(("subnet", "via", "metric"), item)) for item in items])


def describe(rs):
    return [r.describe() for r in rs]


def test_plan_routes_adds_replaces_keeps_and_removes_by_subnet_and_metric():
    current = routes(("10.244.1.0/24", "192.168.0.11"), ("10.244.2.0/24", "192.168.0.12"), ("10.244.3.0/24", "192.168.0.13"))
    desired = routes(("10.244.1.0/24", "192.168.0.11"), ("10.244.2.0/24", "192.168.0.22"), ("10.244.4.0/24", "192.168.0.14"))
    plan = plan_routes(current, desired)
    assert describe(plan.keep) == ["10.244.1.0/24 via 192.168.0.11"]
    assert describe(plan.replace) == ["10.244.2.0/24 via 192.168.0.22"]
    assert describe(plan.add) == ["10.244.4.0/24 via 192.168.0.14"]
    assert describe(plan.remove) == ["10.244.3.0/24 via 192.168.0.13"]
    assert plan.changed
    assert describe(plan.predicted()) == [
        "10.244.1.0/24 via 192.168.0.11",
        "10.244.2.0/24 via 192.168.0.22",
        "10.244.4.0/24 via 192.168.0.14",
    ]


def test_plan_routes_not_exclusive_leaves_unlisted_owned_routes():
    current = routes(("10.244.3.0/24", "192.168.0.13"))
    plan = plan_routes(current, routes(("10.244.1.0/24", "192.168.0.11")), exclusive=False)
    assert plan.remove == [] and describe(plan.add) == ["10.244.1.0/24 via 192.168.0.11"]


def test_plan_routes_same_subnet_other_metric_is_another_route():
    current = routes(("10.244.1.0/24", "192.168.0.11", 10))
    plan = plan_routes(current, routes(("10.244.1.0/24", "192.168.0.11", 20)))
    assert describe(plan.add) == ["10.244.1.0/24 via 192.168.0.11 metric 20"]
    assert describe(plan.remove) == ["10.244.1.0/24 via 192.168.0.11 metric 10"]
    assert plan.replace == []


def test_plan_routes_of_what_is_there_changes_nothing():
    current = routes(("10.244.1.0/24", "192.168.0.11"), ("fd00:10:244:1::/64", "fd00::11"))
    plan = plan_routes(current, list(current))
    assert not plan.changed and plan.predicted() == sorted(current)


def test_plan_absent_removes_listed_subnets_whatever_their_next_hop():
    current = routes(("10.244.1.0/24", "192.168.0.11"), ("10.244.2.0/24", "192.168.0.12"))
    plan = plan_absent(current, routes(("10.244.1.0/24", "192.168.0.99")))
    assert describe(plan.remove) == ["10.244.1.0/24 via 192.168.0.11"]
    assert describe(plan.predicted()) == ["10.244.2.0/24 via 192.168.0.12"]
    assert plan.add == [] and plan.replace == []


def test_plan_absent_without_routes_removes_every_owned_route():
    current = routes(("10.244.1.0/24", "192.168.0.11"), ("10.244.2.0/24", "192.168.0.12"))
    plan = plan_absent(current, [])
    assert plan.remove == current and plan.predicted() == []
    assert not plan_absent([], []).changed


# -- cni_bridge: spec_from_params / desired_state ---------------------------------------


def params(**over):
    p = dict(
        name="cni0", state="present", addresses=[], mtu=None, promisc=False, vlan_filtering=None, force_address=False, ip_forward=True, ipv6_forwarding=None
    )
    p.update(over)
    return p


def observed(**over):
    state = dict(name="cni0", exists=True, kind="bridge", up=True, mtu=1450, mac="aa:bb:cc:dd:ee:ff", promisc=False, vlan_filtering=False)
    state.update(addresses=[], ip_forward=True, ipv6_forwarding=False)
    state.update(over)
    return state


MISSING = dict(name="cni0", exists=False, ip_forward=False, ipv6_forwarding=False)


def test_new_bridge_gets_the_plugins_defaults():
    after = bridge_state.desired_state(MISSING, bridge_state.spec_from_params(params(addresses=["10.244.1.1/24"])))
    assert after == dict(
        name="cni0", exists=True, kind="bridge", up=True, mtu=1500, promisc=False, vlan_filtering=False, mac="",
        addresses=["10.244.1.1/24"], ip_forward=True, ipv6_forwarding=False,
    )


def test_existing_bridge_keeps_what_is_not_asked_for():
    before = observed(mtu=9000, promisc=True, vlan_filtering=True)
    after = bridge_state.desired_state(before, bridge_state.spec_from_params(params(ip_forward=None)))
    assert bridge_state.comparable(after) == bridge_state.comparable(before)


def test_mac_is_never_a_change():
    before = observed(mac="aa:bb:cc:dd:ee:ff")
    after = dict(before, mac="")
    assert bridge_state.comparable(before) == bridge_state.comparable(after)


def test_other_ipv4_address_conflicts_unless_forced():
    before = observed(addresses=["10.244.9.1/24"])
    with pytest.raises(CNIError) as e:
        bridge_state.desired_state(before, bridge_state.spec_from_params(params(addresses=["10.244.1.1/24"])))
    assert "force_address" in e.value.msg and "10.244.9.1/24" in e.value.msg
    after = bridge_state.desired_state(before, bridge_state.spec_from_params(params(addresses=["10.244.1.1/24"], force_address=True)))
    assert after["addresses"] == ["10.244.1.1/24"]


def test_ipv6_addresses_conflict_only_when_they_overlap():
    before = observed(addresses=["fd00:1::1/64"])
    after = bridge_state.desired_state(before, bridge_state.spec_from_params(params(addresses=["fd00:2::1/64"])))
    assert after["addresses"] == ["fd00:1::1/64", "fd00:2::1/64"]
    assert after["ipv6_forwarding"] is True  # an IPv6 gateway turns IPv6 forwarding on unless told otherwise
    with pytest.raises(CNIError):
        bridge_state.desired_state(before, bridge_state.spec_from_params(params(addresses=["fd00:1::2/64"])))


def test_a_link_that_is_not_a_bridge_is_refused():
    with pytest.raises(CNIError) as e:
        bridge_state.desired_state(observed(kind="veth"), bridge_state.spec_from_params(params()))
    assert "not a bridge" in e.value.msg


def test_absent_state_leaves_the_forwarding_sysctls():
    assert bridge_state.absent_state(observed(ip_forward=True, ipv6_forwarding=True)) == dict(
        name="cni0", exists=False, ip_forward=True, ipv6_forwarding=True
    )
    assert bridge_state.absent_state(MISSING) == MISSING


@pytest.mark.parametrize(
    "over,option",
    [
        (dict(name=""), "name"),
        (dict(name="a-very-long-bridge-name"), "name"),
        (dict(name="br/0"), "name"),
        (dict(name="é" * 8), "name"),  # 8 characters, 16 bytes
        (dict(mtu=67), "mtu"),
        (dict(mtu=65536), "mtu"),
        (dict(addresses=["10.244.1.0/24"]), "addresses[0]"),
        (dict(addresses=["10.244.1.1/24", "10.245.1.1/24"]), "addresses"),
    ],
)
def test_bad_bridge_options_name_the_option(over, option):
    with pytest.raises(CNIError) as e:
        bridge_state.spec_from_params(params(**over))
    assert e.value.code == ERR_INVALID_NETCONF and e.value.msg.startswith(option), e.value.msg


# -- cni_netconf: competitors and the plan ----------------------------------------------


def spec(tmp_path, **over):
    values = dict(
        name="podnet", cni_version="1.0.0", plugins=[{"type": "nodenet-bridge"}], conf_dir=str(tmp_path / "net.d"), priority="10",
        format="conflist", disable_check=False, disable_gc=False,
    )
    values.update(over)
    return netconf_file.spec_from_params(values)


def touch(directory, *names):
    os.makedirs(directory, exist_ok=True)
    for name in names:
        with open(os.path.join(directory, name), "w") as f:
            f.write("{}")


def test_competitors_are_the_configs_that_sort_before_ours(tmp_path):
    s = spec(tmp_path)
    touch(s.conf_dir, "05-a.conflist", "09-b.conf", "099.json", "10-podnet.conflist", "20-later.conflist", "00-x.conf.nodenet-disabled", "01-notes.txt")
    os.mkdir(os.path.join(s.conf_dir, "00-dir.conf"))
    assert [os.path.basename(p) for p in netconf_file.competitors(s)] == ["05-a.conflist", "09-b.conf", "099.json"]


def test_no_competitors_in_a_missing_conf_dir(tmp_path):
    assert netconf_file.competitors(spec(tmp_path)) == []


@pytest.mark.parametrize(
    "over,option",
    [(dict(name="-podnet"), "name"), (dict(cni_version="0.5.0"), "cni_version"), (dict(priority="10/.."), "priority")],
)
def test_bad_netconf_options_name_the_option(tmp_path, over, option):
    with pytest.raises(CNIError) as e:
        spec(tmp_path, **over)
    assert e.value.msg.startswith(option), e.value.msg


def test_plan_present_writes_once_then_changes_nothing(tmp_path):
    data_dir = str(tmp_path / "leases")
    plugins = [{"type": "nodenet-bridge", "ipam": {"type": "nodenet-host-local", "dataDir": data_dir, "ranges": [[{"subnet": "10.1.0.0/24"}]]}}]
    s = spec(tmp_path, plugins=plugins)
    touch(s.conf_dir, "05-other.conflist")
    desired, parsed = netconf_file.render_checked(s)
    plan = netconf_file.plan_present(s, None, desired, parsed, exclusive=True, remove_competitors=False)
    assert plan.write and plan.data_dirs == [data_dir] and plan.disable == [os.path.join(s.conf_dir, "05-other.conflist")]
    assert plan.disabled() == ["%s/05-other.conflist -> %s/05-other.conflist.nodenet-disabled" % (s.conf_dir, s.conf_dir)]
    diff = netconf_file.plan_diff(s, plan, None, desired)
    assert [d["before_header"] for d in diff] == [s.path, os.path.join(s.conf_dir, "05-other.conflist"), "dataDir " + data_dir]
    assert json.loads(diff[0]["after"]) == desired

    netconf_file.apply_plan(s, plan, desired)
    assert os.stat(data_dir).st_mode & 0o777 == 0o700
    assert sorted(os.listdir(s.conf_dir)) == ["05-other.conflist.nodenet-disabled", "10-podnet.conflist"]
    again = netconf_file.plan_present(s, netconf_file.read_current(s.path), desired, parsed, exclusive=True, remove_competitors=False)
    assert not again.changed and netconf_file.plan_diff(s, again, desired, desired) == []


def test_formatting_only_differences_are_not_a_change(tmp_path):
    s = spec(tmp_path)
    desired, parsed = netconf_file.render_checked(s)
    os.makedirs(s.conf_dir)
    with open(s.path, "w") as f:
        f.write(json.dumps(desired, separators=(",", ":")))
    assert not netconf_file.plan_present(s, netconf_file.read_current(s.path), desired, parsed, False, False).changed


def test_plan_absent_removes_only_an_existing_file(tmp_path):
    s = spec(tmp_path)
    assert not netconf_file.plan_absent(s, None).changed
    touch(s.conf_dir, s.filename)
    plan = netconf_file.plan_absent(s, netconf_file.read_current(s.path))
    assert plan.remove == [s.path] and plan.disabled() == []
    netconf_file.apply_plan(s, plan, None)
    assert not os.path.exists(s.path)


def test_render_checked_names_the_plugin_option(tmp_path):
    with pytest.raises(CNIError) as e:
        netconf_file.render_checked(spec(tmp_path, plugins=[{"bridge": "cni0"}]))
    assert e.value.msg.startswith("plugins: plugins[0]")


# -- portmap: parse_portmap ------------------------------------------------------------


def portmap(**top):
    raw = {"cniVersion": "1.0.0", "name": "n", "type": "portmap"}
    raw.update(top)
    return parse_portmap(parse_netconf(raw))


def test_portmap_backend_follows_the_options_written_for_it():
    assert portmap().backend == ""  # auto: the plugin picks
    assert portmap(markMasqBit=5).backend == "iptables"
    assert portmap(conditionsV4=["-s", "10.0.0.0/8"]).backend == "iptables"
    assert portmap(conditionsV4=["ip saddr 10.0.0.0/8"]).backend == "nftables"
    assert portmap(backend="nftables").backend == "nftables"


@pytest.mark.parametrize(
    "top,words",
    [
        (dict(markMasqBit=5, externalSetMarkChain="KUBE-MARK-MASQ"), "mutually exclusive"),
        (dict(markMasqBit=32), "markMasqBit"),
        (dict(backend="nftables", markMasqBit=5), "iptables-specific options"),
        (dict(backend="nftables", conditionsV4=["-s", "10.0.0.0/8"]), "conditionsV4"),
        (dict(backend="ebtables"), "backend"),
        (dict(runtimeConfig={"portMappings": [{"hostPort": 0, "containerPort": 80}]}), "hostPort"),
        (dict(runtimeConfig={"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]}), "protocol"),
    ],
)
def test_portmap_bad_options_are_invalid_netconf_naming_the_field(top, words):
    with pytest.raises(CNIError) as e:
        portmap(**top)
    assert e.value.code == ERR_INVALID_NETCONF and words in e.value.msg, e.value.msg


def test_portmap_mappings_and_defaults():
    pm = portmap(runtimeConfig={"portMappings": [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "UDP", "HostIP": "FD00:0::1"}]})
    m = pm.mappings[0]
    assert (m.host_port, m.container_port, m.protocol, m.host_ip) == (8080, 80, "udp", "fd00::1")
    assert pm.snat and not pm.masq_all and pm.mark == 1 << 13


def test_portmap_lenient_del_reads_broken_mappings_as_none():
    raw = {"cniVersion": "1.0.0", "name": "n", "type": "portmap", "runtimeConfig": {"portMappings": [{"hostPort": "x", "containerPort": 80}]}}
    conf = parse_netconf(raw)
    pm = parse_portmap(conf, lenient=True)
    assert pm.mappings == [] and len(conf.problems) == 1


def test_podroute_describe_shows_the_metric_only_when_set():
    assert PodRoute("10.0.0.0/24", "10.1.0.1").describe() == "10.0.0.0/24 via 10.1.0.1"
    assert PodRoute("10.0.0.0/24", "10.1.0.1", 5).describe() == "10.0.0.0/24 via 10.1.0.1 metric 5"


@pytest.mark.parametrize("protocol,table,option", [(4, 254, "protocol"), (256, 254, "protocol"), (77, 0, "table"), (77, 2**32, "table")])
def test_route_owner_options_name_the_option(protocol, table, option):
    with pytest.raises(CNIError) as e:
        check_owner(protocol, table)
    assert e.value.msg.startswith(option)
    check_owner(77, 254)

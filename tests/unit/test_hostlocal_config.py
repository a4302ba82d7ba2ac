# SPDX-License-Identifier: GPL-3.0-or-later
"""host-local config loading: sources, order, defaults, Go's error texts, field names."""

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.host_local import (
    DEFAULT_DATA_DIR,
    check_requested_ips,
    format_ip,
    load_ipam_config,
    parse_ip,
    read_resolv_conf,
)
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import parse_netconf
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import ERR_INVALID_NETCONF, CNIError


def load(ipam=None, cni_args="", version="1.0.0", **top):
    raw = {"cniVersion": version, "name": "net", "type": "bridge"}
    if ipam is not None:
        raw["ipam"] = ipam
    raw.update(top)
    return load_ipam_config(parse_netconf(raw), cni_args)


def fails(code, *fragments, **kw):
    with pytest.raises(CNIError) as exc:
        conf = load(**kw)
        check_requested_ips(conf)
    assert exc.value.code == code, exc.value.msg
    for fragment in fragments:
        assert fragment in exc.value.msg, exc.value.msg
    return exc.value.msg


def span(rs):
    return [(format_ip(r.range_start), format_ip(r.range_end), format_ip(r.gateway)) for r in rs.ranges]


def test_defaults_v4_start_is_network_plus_one_end_is_broadcast_minus_one():
    conf = load({"type": "host-local", "ranges": [[{"subnet": "10.1.2.0/24"}]]})
    assert span(conf.range_sets[0]) == [("10.1.2.1", "10.1.2.254", "10.1.2.1")]
    assert conf.data_dir == DEFAULT_DATA_DIR and conf.name == "net" and conf.type == "host-local"
    assert conf.routes == [] and conf.requested_ips == []


def test_defaults_v6_end_is_the_last_address():
    conf = load({"ranges": [[{"subnet": "2001:db8:1::/64"}]]})
    assert span(conf.range_sets[0]) == [("2001:db8:1::1", "2001:db8:1:0:ffff:ffff:ffff:ffff", "2001:db8:1::1")]


def test_explicit_start_end_gateway_are_kept():
    conf = load({"ranges": [[{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.10", "rangeEnd": "10.1.2.20", "gateway": "10.1.2.254"}]]})
    assert span(conf.range_sets[0]) == [("10.1.2.10", "10.1.2.20", "10.1.2.254")]


def test_order_is_runtime_ip_ranges_then_legacy_subnet_then_ranges():
    conf = load(
        {"subnet": "10.2.0.0/16", "gateway": "10.2.0.254", "ranges": [[{"subnet": "10.3.0.0/16"}]]},
        runtimeConfig={"ipRanges": [[{"subnet": "10.1.0.0/16"}]]},
    )
    assert [str(rs) for rs in conf.range_sets] == ["10.1.0.1-10.1.255.254", "10.2.0.1-10.2.255.254", "10.3.0.1-10.3.255.254"]
    assert format_ip(conf.range_sets[1].ranges[0].gateway) == "10.2.0.254"
    assert [rs.where for rs in conf.range_sets] == ["runtimeConfig.ipRanges[0]", "ipam", "ipam.ranges[0]"]


def test_multiple_ranges_per_set_and_dual_stack():
    conf = load({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.1.1.0/24"}], [{"subnet": "fd00::/64"}]]})
    assert len(conf.range_sets) == 2 and len(conf.range_sets[0].ranges) == 2
    assert conf.range_sets[1].version == 6


def test_two_pools_in_one_subnet_do_not_overlap_if_start_end_are_disjoint():
    conf = load({"ranges": [[{"subnet": "10.1.0.0/24", "rangeEnd": "10.1.0.100"}, {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.101"}]]})
    assert len(conf.range_sets) == 1
    # both pools kept, each with its own bounds (default start is network+1, as in Go)
    assert [str(r) for r in conf.range_sets[0].ranges] == ["10.1.0.1-10.1.0.100", "10.1.0.101-10.1.0.254"]
    assert [format_ip(r.gateway) for r in conf.range_sets[0].ranges] == ["10.1.0.1", "10.1.0.1"]


def test_routes_and_data_dir_and_resolv_conf():
    conf = load({"ranges": [[{"subnet": "10.1.0.0/24"}]], "dataDir": "/run/x", "resolvConf": "/etc/r",
                 "routes": [{"dst": "0.0.0.0/0"}, {"dst": "2001:DB8::/32", "gw": "2001:DB8::1"}, {"dst": "10.9.0.0/16", "gw": "10.1.0.1"}]})
    assert conf.data_dir == "/run/x" and conf.resolv_conf == "/etc/r"
    assert [(r.dst, r.gw) for r in conf.routes] == [("0.0.0.0/0", ""), ("2001:db8::/32", "2001:db8::1"), ("10.9.0.0/16", "10.1.0.1")]
    assert conf.network_dir == "/run/x/net"


def test_requested_ips_merge_cni_args_then_args_then_runtime_config():
    conf = load(
        {"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}], [{"subnet": "fd00::/64"}], [{"subnet": "10.4.0.0/24"}]]},
        cni_args="IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.0.9,10.4.0.4",
        args={"cni": {"ips": ["10.2.0.7/24"]}},
        runtimeConfig={"ips": ["fd00::7", "10.1.0.9"]},
    )
    assert [(format_ip(r.ip), r.where) for r in conf.requested_ips] == [
        ("10.1.0.9", "CNI_ARGS IP"), ("10.4.0.4", "CNI_ARGS IP"), ("10.2.0.7", "args.cni.ips[0]"), ("fd00::7", "runtimeConfig.ips[0]")]
    assert {i: format_ip(r.ip) for i, r in check_requested_ips(conf).items()} == {0: "10.1.0.9", 1: "10.2.0.7", 2: "fd00::7", 3: "10.4.0.4"}


def test_ipv4_mapped_is_canonicalised_like_go():
    assert format_ip(parse_ip("::ffff:10.0.0.1", "x")) == "10.0.0.1"


@pytest.mark.parametrize("text,expected", [
    ("fd00:1::2", "fd00:1::2"),
    ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
    ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
    ("::1.2.3.4", "::102:304"),
    ("fe80:0:0:0:0:0:0:0", "fe80::"),
    ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
])
def test_ipv6_text_is_gos_spelling(text, expected):
    assert format_ip(parse_ip(text, "x")) == expected


def test_resolv_conf_parsing_like_go(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text("# c\n; c\nnameserver 1.1.1.1\nnameserver 8.8.8.8\ndomain a\ndomain b\nsearch x y\nsearch z\noptions ndots:2\nbogus\n")
    dns = read_resolv_conf(str(path))
    assert dns.nameservers == ["1.1.1.1", "8.8.8.8"] and dns.domain == "b"
    assert dns.search == ["x", "y", "z"] and dns.options == ["ndots:2"]
    with pytest.raises(CNIError) as exc:
        read_resolv_conf(str(tmp_path / "missing"))
    assert exc.value.code == ERR_INVALID_NETCONF and "ipam.resolvConf" in exc.value.msg


BAD = [
    # (ipam, extra top-level keys, cni_args, code, fragments)
    (None, {}, "", 7, ["IPAM config missing 'ipam' key"]),
    ({}, {}, "", 7, ["no IP ranges specified"]),
    ({"ranges": []}, {}, "", 7, ["no IP ranges specified"]),
    ({"ranges": [[]]}, {}, "", 7, ["invalid range set 0: empty range set", "ipam.ranges[0]"]),
    ({"ranges": {"subnet": "10.0.0.0/8"}}, {}, "", 7, ["ipam.ranges"]),
    ({"ranges": [{"subnet": "10.0.0.0/8"}]}, {}, "", 7, ["ipam.ranges[0]"]),
    ({"ranges": [[{"subnet": "10.0.0.0/33"}]]}, {}, "", 7, ["invalid CIDR address: 10.0.0.0/33", "ipam.ranges[0][0].subnet"]),
    ({"ranges": [[{"subnet": "10.0.0.0"}]]}, {}, "", 7, ["invalid CIDR address", "ipam.ranges[0][0].subnet"]),
    ({"ranges": [[{"subnet": 10}]]}, {}, "", 7, ["ipam.ranges[0][0].subnet"]),
    ({"ranges": [[{"rangeStart": "10.0.0.1"}]]}, {}, "", 7, ["missing subnet", "ipam.ranges[0][0].subnet"]),
    ({"ranges": [[{"subnet": "10.0.0.5/24"}]]}, {}, "", 7,
     ["Network has host bits set. For a subnet mask of length 24 the network address is 10.0.0.0", "ipam.ranges[0][0].subnet"]),
    ({"ranges": [[{"subnet": "10.0.0.0/31"}]]}, {}, "", 7, ["Network 10.0.0.0/31 too small to allocate from"]),
    ({"ranges": [[{"subnet": "fd00::/127"}]]}, {}, "", 7, ["Network fd00::/127 too small to allocate from"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1"}]]}, {}, "", 7,
     ["RangeStart 10.0.1.1 not in network 10.0.0.0/24", "ipam.ranges[0][0].rangeStart"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "10.1.0.0/24", "rangeEnd": "10.2.0.1"}]]}, {}, "", 7,
     ["invalid range set 0: RangeEnd 10.2.0.1 not in network 10.1.0.0/24", "ipam.ranges[0][1].rangeEnd"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "gateway": "10.9.0.1"}]]}, {}, "", 7, ["gateway 10.9.0.1 not in network 10.0.0.0/24", ".gateway"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "fd00::1"}]]}, {}, "", 7, ["not the same protocol", "rangeStart"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.3"}]]}, {}, "", 7, ["after RangeEnd", "rangeStart"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.300"}]]}, {}, "", 7, ["invalid IP address: 10.0.0.300", "rangeStart"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]]}, {}, "", 7,
     ["invalid range set 0: mixed address families", "ipam.ranges[0][0], ipam.ranges[0][1]"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.0/16"}]]}, {}, "", 7,
     ["subnets 10.0.0.1-10.0.0.254 and 10.0.0.1-10.0.255.254 overlap"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.128/25"}]]}, {}, "", 7,
     ["range set 0 overlaps with 1", "ipam.ranges[0], ipam.ranges[1]"]),
    ({"subnet": "10.0.0.0/24", "ranges": [[{"subnet": "10.0.0.0/24"}]]}, {}, "", 7, ["range set 0 overlaps with 1 (ipam, ipam.ranges[0])"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]}, {"cniVersion": "0.2.0"}, "", 7,
     ["CNI version 0.2.0 does not support more than 1 address per family"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]], "dataDir": 5}, {}, "", 7, ["ipam.dataDir"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]], "routes": [{"dst": "10.0.0.0"}]}, {}, "", 7, ["ipam.routes[0].dst"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]], "routes": {"dst": "0.0.0.0/0"}}, {}, "", 7, ["ipam.routes"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {}, "FOO=bar", 4, ['CNI_ARGS: unknown args ["FOO=bar"]']),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {}, "ip=10.0.0.5", 4, ["ip=10.0.0.5"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {}, "IP=10.0.0.300", 4, ["cannot understand ip: 10.0.0.300", "CNI_ARGS IP"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {}, "IP", 4, ["CNI_ARGS: invalid pair"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {}, "IP=10.9.0.5", 4,
     ["failed to allocate all requested IPs: 10.9.0.5", "CNI_ARGS IP", "not in any range set"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {}, "IP=10.0.0.5,10.0.0.6", 4, ["failed to allocate all requested IPs: 10.0.0.6", "range set 0 already"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {"args": {"cni": {"ips": ["bogus"]}}}, "", 7, ["cannot understand ip: bogus", "args.cni.ips[0]"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {"args": {"cni": {"ips": "10.0.0.5"}}}, "", 7, ["args.cni.ips"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {"runtimeConfig": {"ips": [5]}}, "", 7, ["runtimeConfig.ips[0]"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {"runtimeConfig": {"ipRanges": [[{"subnet": "x"}]]}}, "", 7,
     ["invalid range set 0", "runtimeConfig.ipRanges[0][0].subnet"]),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, {"runtimeConfig": {"ipRanges": [[{"subnet": "10.0.0.0/24"}]]}}, "", 7,
     ["range set 0 overlaps with 1"]),
]


@pytest.mark.parametrize("ipam,top,cni_args,code,fragments", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_config_is_rejected_with_code_and_field(ipam, top, cni_args, code, fragments):
    fails(code, *fragments, ipam=ipam, cni_args=cni_args, **top)


def test_cni_args_ip_is_ignored_for_unknown_keys_with_ignore_unknown():
    conf = load({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, cni_args="IgnoreUnknown=true;FOO=bar")
    assert conf.requested_ips == []


def test_requested_ip_outside_is_only_an_add_check():
    # DEL with the same CNI_ARGS must still load (a failed ADD is followed by DEL).
    conf = load({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, cni_args="IP=10.9.0.5")
    assert [format_ip(r.ip) for r in conf.requested_ips] == ["10.9.0.5"]


def test_a_range_seen_before_is_canonicalised_once_and_a_bad_one_fails_every_time(monkeypatch):
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.config import host_local

    monkeypatch.setattr(host_local, "_RANGES", {})
    ipam = {"type": "host-local", "ranges": [[{"subnet": "10.9.0.0/16", "gateway": "10.9.0.254"}], [{"subnet": "fd09::/64"}]]}
    first, again = load(ipam=ipam), load(ipam=ipam)
    assert [rs.ranges[0] for rs in again.range_sets] == [rs.ranges[0] for rs in first.range_sets]
    assert all(a.ranges[0] is b.ranges[0] for a, b in zip(first.range_sets, again.range_sets))  # kept, not made again
    assert span(again.range_sets[0]) == [("10.9.0.1", "10.9.255.254", "10.9.0.254")]
    monkeypatch.setattr(host_local, "_RANGES", {})
    assert [rs.ranges[0] for rs in load(ipam=ipam).range_sets] == [rs.ranges[0] for rs in first.range_sets]  # what a fresh parse gives
    # the same range at another place of the config keeps its own place in messages
    moved = load(ipam={"type": "host-local", "ranges": [[{"subnet": "10.8.0.0/16"}], [{"subnet": "10.9.0.0/16", "gateway": "10.9.0.254"}]]})
    assert moved.range_sets[1].ranges[0].where == "ipam.ranges[1][0]" and first.range_sets[0].ranges[0].where == "ipam.ranges[0][0]"
    for _attempt in range(2):  # nothing kept for a range that fails
        fails(ERR_INVALID_NETCONF, "gateway 10.7.0.1 not in network", "ipam.ranges[0][0].gateway",
              ipam={"type": "host-local", "ranges": [[{"subnet": "10.9.0.0/16", "gateway": "10.7.0.1"}]]})
    monkeypatch.setattr(host_local, "_RANGES_MAX", 3)
    for i in range(10):
        load(ipam={"type": "host-local", "ranges": [[{"subnet": "10.%d.0.0/16" % i}]]})
    assert 0 < len(host_local._RANGES) <= 3

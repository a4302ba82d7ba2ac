# SPDX-License-Identifier: GPL-3.0-or-later
"""bridge netconf: defaults, type checks, the reference's validations, MAC precedence; calcGateways; ipMasq names."""

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.bridge import (
    normalize_mac,
    parse_bridge_conf,
)
from ansible_collections.nodenet.cni.plugins.module_utils.cni.net import ipmasq
from ansible_collections.nodenet.cni.plugins.module_utils.cni.plugin.bridge import calc_gateways
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError, IPConfig, Result, Route

IPAM = {"type": "host-local", "subnet": "10.1.0.0/24"}


def conf(**kw):
    base = {"cniVersion": "1.0.0", "name": "net", "type": "bridge", "ipam": dict(IPAM)}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def error(raw, cni_args="", strict=True):
    with pytest.raises(CNIError) as info:
        parse_bridge_conf(raw, cni_args, strict=strict)
    return info.value


def test_defaults_are_the_reference_defaults():
    c = parse_bridge_conf(conf())
    assert c.bridge == "cni0" and c.mtu == 0 and c.vlan == 0 and c.vlan_trunk == [] and c.mac == ""
    assert not any((c.is_gateway, c.is_default_gateway, c.force_address, c.ip_masq, c.hairpin_mode, c.promisc_mode))
    assert not any((c.preserve_default_vlan, c.enable_dad, c.mac_spoof_check, c.disable_container_interface, c.port_isolation))
    assert c.ip_masq_backend == "" and c.is_layer3 and c.ipam_type == "host-local"


def test_default_gateway_implies_gateway():
    c = parse_bridge_conf(conf(isDefaultGateway=True))
    assert c.is_gateway and c.is_default_gateway


def test_null_means_default():
    c = parse_bridge_conf(conf(isGateway=None, mtu=None, bridge=None, vlanTrunk=None))
    assert c.bridge == "cni0" and not c.is_gateway and c.mtu == 0


def test_empty_ipam_is_layer2():
    assert not parse_bridge_conf(conf(ipam={})).is_layer3
    assert not parse_bridge_conf(conf(ipam=None)).is_layer3


BOOLS = ["isGateway", "isDefaultGateway", "forceAddress", "ipMasq", "hairpinMode", "promiscMode", "preserveDefaultVlan",
         "enabledad", "macspoofchk", "disableContainerInterface", "portIsolation"]


@pytest.mark.parametrize("key", BOOLS)
@pytest.mark.parametrize("value", ["true", 1, 0, [], {}])
def test_a_bool_field_of_another_type_is_an_error_naming_it(key, value):
    e = error(conf(**{key: value}))
    assert e.code == 7 and repr(key) in e.msg


@pytest.mark.parametrize("key", BOOLS)
def test_a_bool_type_error_fails_del_too(key):
    assert error(conf(**{key: "true"}), strict=False).code == 7


@pytest.mark.parametrize("key, value", [("mtu", "1500"), ("mtu", True), ("mtu", 1500.5), ("vlan", "100"), ("vlan", False),
                                        ("bridge", 5), ("bridge", ["cni0"]), ("ipMasqBackend", 1)])
def test_numbers_and_strings_are_type_checked(key, value):
    e = error(conf(**{key: value}))
    assert e.code == 7 and repr(key) in e.msg


def test_an_integral_float_is_not_an_integer_like_in_go():
    # Debian's Go bridge: "cannot unmarshal number 1500.0 into Go struct field NetConf.mtu of type int"
    e = error(conf(mtu=1500.0))
    assert e.code == 7 and "'mtu'" in e.msg and "1500.0" in e.msg


@pytest.mark.parametrize("mtu, ok", [(0, True), (68, True), (9000, True), (65535, True), (67, False), (65536, False), (-1, False)])
def test_mtu_range(mtu, ok):
    if ok:
        assert parse_bridge_conf(conf(mtu=mtu)).mtu == mtu
    else:
        assert "'mtu'" in error(conf(mtu=mtu)).msg


@pytest.mark.parametrize("vlan, ok", [(0, True), (1, True), (4094, True), (-1, False), (4095, False)])
def test_vlan_range(vlan, ok):
    if ok:
        assert parse_bridge_conf(conf(vlan=vlan)).vlan == vlan
    else:
        e = error(conf(vlan=vlan))
        assert e.code == 7 and "invalid VLAN ID %d" % vlan in e.msg


@pytest.mark.parametrize(
    "trunk, vids",
    [
        ([{"id": 101}, {"minID": 200, "maxID": 203}], [101, 200, 201, 202, 203]),
        ([{"minID": 5, "maxID": 5}, {"id": 5}], [5]),
        ([{"id": 4094}, {"id": 1}], [1, 4094]),
        ([{}], []),
        ([], []),
    ],
)
def test_vlan_trunk_ids(trunk, vids):
    assert parse_bridge_conf(conf(vlanTrunk=trunk)).vlan_trunk == vids


@pytest.mark.parametrize(
    "trunk, words",
    [
        ([{"id": 0}], "incorrect trunk id parameter"),
        ([{"id": 4095}], "incorrect trunk id parameter"),
        ([{"minID": 0, "maxID": 10}], "incorrect trunk minID parameter"),
        ([{"minID": 1, "maxID": 4095}], "incorrect trunk maxID parameter"),
        ([{"minID": 10, "maxID": 9}], "minID is greater than maxID in trunk parameter"),
        ([{"minID": 10}], "minID and maxID should be configured simultaneously, maxID is missing"),
        ([{"maxID": 10}], "minID and maxID should be configured simultaneously, minID is missing"),
        ([{"id": "5"}], "'vlanTrunk[0].id'"),
        ([5], "'vlanTrunk[0]'"),
        ({"id": 5}, "'vlanTrunk'"),
    ],
)
def test_vlan_trunk_errors(trunk, words):
    e = error(conf(vlanTrunk=trunk))
    assert e.code == 7 and words in e.msg


def test_vlan_and_trunk_together_are_allowed_and_enable_filtering():
    c = parse_bridge_conf(conf(vlan=100, vlanTrunk=[{"id": 200}]))
    assert c.vlan == 100 and c.vlan_trunk == [200] and c.vlan_filtering
    assert not parse_bridge_conf(conf()).vlan_filtering


def test_hairpin_and_promisc_together_are_refused():
    e = error(conf(hairpinMode=True, promiscMode=True))
    assert e.code == 7 and "cannot set hairpin mode and promiscuous mode at the same time" in e.msg


def test_disable_container_interface_refuses_ipam_only():
    e = error(conf(disableContainerInterface=True))
    assert e.code == 7 and "cannot use IPAM when DisableContainerInterface flag is set" in e.msg
    assert parse_bridge_conf(conf(disableContainerInterface=True, ipam={})).disable_container_interface


@pytest.mark.parametrize("backend, ok", [("nftables", True), ("iptables", True), ("", True), ("pf", False), ("NFTABLES", False)])
def test_ipmasq_backend(backend, ok):
    if ok:
        assert parse_bridge_conf(conf(ipMasqBackend=backend)).ip_masq_backend == backend
    else:
        e = error(conf(ipMasqBackend=backend))
        assert e.code == 7 and "unknown ipmasq backend" in e.msg and "'ipMasqBackend'" in e.msg


@pytest.mark.parametrize("name", ["", "b" * 16, "a/b", "a:b", "a b", "..", "."])
def test_bridge_name_must_be_an_interface_name(name):
    e = error(conf(bridge=name))
    assert e.code == 7 and "'bridge'" in e.msg


def test_vlan_gateway_interface_name_must_fit():
    assert parse_bridge_conf(conf(bridge="b" * 10, vlan=4094)).vlan_gateway_name == "bbbbbbbbbb.4094"
    e = error(conf(bridge="b" * 11, vlan=4094, isGateway=True))
    assert e.code == 7 and "VLAN gateway interface" in e.msg


def test_l2_cannot_answer_in_a_0_2_0_result():
    e = error(conf(cniVersion="0.2.0", ipam={}))
    assert e.code == 7 and "0.2.0" in e.msg
    assert parse_bridge_conf(conf(cniVersion="0.3.0", ipam={}))
    assert parse_bridge_conf(conf(cniVersion="0.2.0"))


# -- MAC -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cni_args, args_mac, runtime_mac, expected",
    [
        ("", None, None, ""),
        ("MAC=0a:00:00:00:00:01", None, None, "0a:00:00:00:00:01"),
        ("MAC=0a:00:00:00:00:01", "0a:00:00:00:00:02", None, "0a:00:00:00:00:02"),
        ("MAC=0a:00:00:00:00:01", "0a:00:00:00:00:02", "0a:00:00:00:00:03", "0a:00:00:00:00:03"),
        ("", None, "0a:00:00:00:00:03", "0a:00:00:00:00:03"),
        ("MAC=0a:00:00:00:00:01", "", "", "0a:00:00:00:00:01"),  # empty strings do not override
        ("IgnoreUnknown=1;K8S_POD_NAME=p;MAC=0A-00-00-00-00-04", None, None, "0a:00:00:00:00:04"),
    ],
)
def test_mac_precedence_later_wins(cni_args, args_mac, runtime_mac, expected):
    raw = conf()
    if args_mac is not None:
        raw["args"] = {"cni": {"mac": args_mac}}
    if runtime_mac is not None:
        raw["runtimeConfig"] = {"mac": runtime_mac}
    assert parse_bridge_conf(raw, cni_args).mac == expected


@pytest.mark.parametrize(
    "value, out",
    [("AA:bb:CC:dd:EE:fe", "aa:bb:cc:dd:ee:fe"), ("02-00-00-00-00-01", "02:00:00:00:00:01"), ("0200.0000.0001", "02:00:00:00:00:01")],
)
def test_mac_forms_are_normalised(value, out):
    assert normalize_mac(value) == out


@pytest.mark.parametrize(
    "value", ["", "zz:zz:zz:zz:zz:zz", "02:00:00:00:00", "02:00:00:00:00:00:00", "02:00-00:00:00:01", "01:00:5e:00:00:01", "00:00:00:00:00:00"]
)
def test_bad_macs(value):
    with pytest.raises(CNIError):
        normalize_mac(value)


def test_bad_mac_codes_name_the_source():
    e = error(conf(), "MAC=nope")
    assert e.code == 4 and "CNI_ARGS MAC" in e.msg
    e = error(conf(args={"cni": {"mac": "nope"}}))
    assert e.code == 7 and "args.cni.mac" in e.msg
    e = error(conf(runtimeConfig={"mac": "ff:ff:ff:ff:ff:ff"}))
    assert e.code == 7 and "runtimeConfig.mac" in e.msg and "multicast" in e.msg
    e = error(conf(runtimeConfig={"mac": 12}))
    assert e.code == 7 and "runtimeConfig.mac" in e.msg


def test_unknown_cni_args_fail_add_unless_ignored_and_never_del():
    assert error(conf(), "IP=10.1.0.9").code == 4
    # DEL reads no CNI_ARGS: failing it would strand the rest of the DEL chain
    assert parse_bridge_conf(conf(), "IP=10.1.0.9", strict=False).mac == ""
    assert parse_bridge_conf(conf(), "IP=10.1.0.9;IgnoreUnknown=true").mac == ""


def test_del_tolerates_what_add_refuses():
    """A runtime must be able to DEL an attachment whose ADD was refused."""
    for raw, cni_args in [
        (conf(hairpinMode=True, promiscMode=True), ""),
        (conf(vlan=5000, vlanTrunk=[{"minID": 9, "maxID": 3}, {"id": 0}]), ""),
        (conf(disableContainerInterface=True), ""),
        (conf(ipMasqBackend="pf", bridge="b" * 20, mtu=5), ""),
        (conf(), "MAC=nope"),
        (conf(cniVersion="0.2.0", ipam={}), ""),
    ]:
        assert parse_bridge_conf(raw, cni_args, strict=False).name == "net"


# -- calcGateways ----------------------------------------------------------------


def gateways_for(ips, routes, **options):
    c = parse_bridge_conf(conf(**options))
    result = Result(ips=[IPConfig(address=a, gateway=g) for a, g in ips], routes=[Route(dst=d, gw=g) for d, g in routes])
    return result, calc_gateways(result, c)


def test_seed_default_route_is_completed_not_duplicated():
    result, gws = gateways_for([("10.13.3.8/22", "10.13.3.254")], [("0.0.0.0/0", "")], isDefaultGateway=True)
    assert [(r.dst, r.gw) for r in result.routes] == [("0.0.0.0/0", "10.13.3.254")]
    assert gws[4].bridge_cidrs == ["10.13.3.254/22"] and gws[4].gateway == "10.13.3.254"


def test_default_route_is_added_per_family_when_missing():
    result, gws = gateways_for([("10.1.0.5/24", ""), ("fd00::5/64", "")], [], isDefaultGateway=True)
    assert [(ip.gateway, ip.interface) for ip in result.ips] == [("10.1.0.1", 2), ("fd00::1", 2)]
    assert [(r.dst, r.gw) for r in result.routes] == [("0.0.0.0/0", "10.1.0.1"), ("::/0", "fd00::1")]
    assert gws[6].bridge_cidrs == ["fd00::1/64"]


def test_an_ipam_default_route_with_a_gateway_is_kept_as_is():
    result, _gws = gateways_for([("10.1.0.5/24", "10.1.0.1")], [("0.0.0.0/0", "10.1.0.254")], isDefaultGateway=True)
    assert [(r.dst, r.gw) for r in result.routes] == [("0.0.0.0/0", "10.1.0.254")]


def test_without_is_gateway_nothing_goes_on_the_bridge():
    result, gws = gateways_for([("10.1.0.5/24", "")], [("10.9.0.0/16", "")])
    assert result.ips[0].gateway == "" and gws[4].bridge_cidrs == [] and gws[4].gateway == ""
    assert [(r.dst, r.gw) for r in result.routes] == [("10.9.0.0/16", "")]


def test_two_addresses_in_one_subnet_need_one_gateway_address():
    _result, gws = gateways_for([("10.1.0.5/24", "10.1.0.1"), ("10.1.0.6/24", "10.1.0.1")], [], isGateway=True)
    assert gws[4].bridge_cidrs == ["10.1.0.1/24"]


# -- ipMasq names (the reference's, so Go and Python clean up each other's rules) --


def test_ipmasq_names_follow_the_reference_layout():
    chain = ipmasq.chain_name("mynet", "7ac145c133dc63c2")
    assert chain.startswith("CNI-") and len(chain) == 28 and chain == ipmasq.chain_name("mynet", "7ac145c133dc63c2")
    assert chain != ipmasq.chain_name("mynet", "other")
    assert ipmasq.iptables_comment("mynet", "abc") == 'name: "mynet" id: "abc"'
    comment = ipmasq.nft_comment("mynet", "eth0", "abc")
    assert comment.startswith(ipmasq.network_hash("mynet") + "-") and comment.endswith(", net: mynet, if: eth0, id: abc")
    assert len(ipmasq.instance_hash("mynet", "eth0", "abc")) == 33
    assert len(ipmasq.nft_comment("n" * 100, "eth0", "c" * 100)) == 128

# SPDX-License-Identifier: GPL-3.0-or-later
"""Go's encoding/json rules in config.decode and every config type read through them.

Each config type is read twice: with our (the json tags') spelling and with
Go's field-name spelling that Go runtimes marshal (containerd/go-cni sends
`{"HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}`).
"""

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.addr import canonical_cidr, canonical_ip
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.bridge import parse_bridge_conf
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.decode import Fields, fold, lookup, member_name, present
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.host_local import format_ip, load_ipam_config
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import (
    parse_netconf,
    valid_attachments,
    validate_name,
)
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.portmap import parse_portmap
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.result import parse_result
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

# -- the key rule ------------------------------------------------------------------


def test_exact_or_case_insensitive_key_names_the_field():
    assert lookup({"hostPort": 1}, "hostPort") == 1
    assert lookup({"HostPort": 2}, "hostPort") == 2
    assert lookup({"HOSTPORT": 3}, "hostPort") == 3
    assert lookup({"host_port": 4}, "hostPort") is None


def test_the_last_member_naming_a_field_wins_like_go():
    # Debian's Go bridge: {"bridge":"yy0","Bridge":"zz0"} makes zz0, the other order yy0
    assert lookup({"bridge": "yy0", "Bridge": "zz0"}, "bridge") == "zz0"
    assert lookup({"Bridge": "zz0", "bridge": "yy0"}, "bridge") == "yy0"


def test_null_means_unset_and_does_not_clobber_an_earlier_member():
    assert lookup({"snat": None}, "snat") is None
    assert lookup({"snat": False, "SNAT": None}, "snat") is False
    assert present({"snat": None}, "snat") and not present({}, "snat")


def test_gos_fold_maps_long_s_and_kelvin_onto_ascii():
    assert fold("hoſtPort") == fold("hostport") and fold("\u212aey") == fold("key")
    assert lookup({"hoſtPort": 5}, "hostPort") == 5
    assert lookup({"hóstPort": 5}, "hostPort") is None


def test_fields_key_index_answers_as_the_member_scan_does():
    # Fields indexes an object's keys once (decode.key_index) instead of scanning
    # the members per read: for duplicates, case variants, Go's non-ASCII folds
    # and nulls in every order, each read gives what lookup/present/member_name give.
    import itertools

    spellings = ["bridge", "Bridge", "BRIDGE", "bRidge", "bridgeX", "ſbridge"]
    values = ["a", None, "b", 0, False]
    docs = []
    for n in (1, 2, 3):
        for keys in itertools.permutations(spellings, n):
            for vals in itertools.product(values, repeat=n):
                docs.append(dict(zip(keys, vals)))
    docs += [{"ſbridge": 1, "SBRIDGE": 2}, {"\u212aey": 1, "key": None}, {"key": 1, "KEY": None, "\u212aEY": 3}, {"": 1}, {"hóstPort": 5}]
    tags = ["bridge", "sbridge", "bridgeX", "key", "", "hostPort"]
    for doc in docs:
        f = Fields(doc, "where")
        for tag in tags:
            assert f.get(tag) == lookup(doc, tag) and type(f.get(tag)) is type(lookup(doc, tag)), (doc, tag)
            assert f.present(tag) == present(doc, tag), (doc, tag)
            assert f.path(tag) == "where." + member_name(doc, tag), (doc, tag)
    # the documented cases, through the index
    assert Fields({"bridge": "yy0", "Bridge": "zz0"}).str("bridge") == "zz0"
    assert Fields({"Bridge": "zz0", "bridge": "yy0", "BRIDGE": None}).str("bridge") == "yy0"
    assert Fields({"Bridge": "zz0", "bridge": None}).path("bridge") == "Bridge"
    assert Fields({"snat": None}).present("snat") and not Fields({"snat": None}).has("snat")


# -- typed readers -----------------------------------------------------------------


def test_readers_return_defaults_for_absent_and_null():
    f = Fields({"a": None})
    assert f.str("a", "d") == "d" and f.bool("a", True) is True and f.int("a", 7) == 7
    assert f.opt_str("a") is None and f.opt_int("a") is None
    assert f.list("a") == [] and f.objects("a") == [] and f.strings("a") == [] and f.obj("a").raw == {}
    assert f.bool_map("a") == {}


@pytest.mark.parametrize(
    "method, value, want",
    [
        ("str", 5, "a string"),
        ("bool", "true", "a boolean"),
        ("int", "80", "an integer"),
        ("int", 1500.0, "an integer"),  # Go: cannot unmarshal number 1500.0 ... of type int
        ("int", True, "an integer"),
        ("int", 1 << 64, "an integer"),
        ("list", {}, "an array"),
        ("obj", [], "an object"),
    ],
)
def test_a_wrong_type_is_code_7_naming_the_field_as_written(method, value, want):
    f = Fields({"Outer": {"MyKey": value}}).obj("outer")
    with pytest.raises(CNIError) as e:
        getattr(f, method)("myKey")
    assert e.value.code == 7
    assert "'Outer.MyKey'" in e.value.msg and want in e.value.msg


def test_objects_and_strings_name_the_element():
    with pytest.raises(CNIError) as e:
        Fields({"l": [{"a": 1}, 3]}, "x").objects("l")
    assert "'x.l[1]'" in e.value.msg
    with pytest.raises(CNIError) as e:
        Fields({"l": ["a", 3]}).strings("l")
    assert "l[1]" in e.value.msg
    assert Fields({"l": ["a", None]}).strings("l") == ["a", ""]


def test_maps_keep_exact_keys():
    assert Fields({"capabilities": {"portMappings": True, "PortMappings": False}}).bool_map("Capabilities") == {
        "portMappings": True, "PortMappings": False}
    with pytest.raises(CNIError):
        Fields({"capabilities": {"portMappings": "yes"}}).bool_map("capabilities")


# -- addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, canonical",
    [("10.0.0.1", "10.0.0.1"), ("FD00:0:0::5", "fd00::5"), ("::ffff:10.0.0.1", "10.0.0.1"), ("::", "::")],
)
def test_addresses_are_canonical(value, canonical):
    assert canonical_ip(value, "hostIP") == canonical


@pytest.mark.parametrize("value", ["fe80::1%lo", "fe80::1%lo\nCOMMIT", "10.0.0.1\n", " 10.0.0.1", "010.0.0.1", "10.1", "", "x", 5, None])
def test_non_canonical_addresses_are_refused_naming_the_field(value):
    with pytest.raises(CNIError) as e:
        canonical_ip(value, "runtimeConfig.portMappings[0].hostIP")
    assert e.value.code == 7 and "hostIP" in e.value.msg


def test_cidrs_keep_host_bits_and_refuse_netmasks_and_zones():
    assert canonical_cidr("fd00:0::5/64", "a") == "fd00::5/64" and canonical_cidr("10.1.2.3/24", "a") == "10.1.2.3/24"
    for bad in ("10.0.0.1/255.255.255.0", "10.0.0.1/33", "fd00::5%lo/64", "10.0.0.1", "10.0.0.1/ 24", "::ffff:10.0.0.0/120"):
        with pytest.raises(CNIError):
            canonical_cidr(bad, "a")


def test_canonical_spellings_are_kept_by_text_and_failures_are_not():
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.config import addr

    ips, cidrs = addr._canonical_ip_text, addr._canonical_cidr_text
    ips.cache_clear()
    cidrs.cache_clear()
    for _attempt in range(2):  # worked out, then kept: the same answers
        assert canonical_ip("FD00:0:0::5", "a") == "fd00::5" and canonical_cidr("FD00:0::5/64", "a") == "fd00::5/64"
        assert canonical_ip("::ffff:10.0.0.1", "a") == "10.0.0.1" and canonical_cidr("10.1.2.3/24", "a") == "10.1.2.3/24"
    assert (ips.cache_info().currsize, ips.cache_info().hits) == (2, 2)
    assert (cidrs.cache_info().currsize, cidrs.cache_info().hits) == (2, 2)
    assert canonical_ip("10.1.2.3", "a") == "10.1.2.3"  # an address is not answered from a CIDR's entry, nor the other way
    with pytest.raises(CNIError):
        canonical_cidr("10.1.2.3", "a")
    kept = ips.cache_info().currsize
    for where in ("x.gw", "y.gw"):  # a failure each time, naming its own field
        with pytest.raises(CNIError) as e:
            canonical_ip("010.0.0.1", where)
        assert where in e.value.msg
    assert ips.cache_info().currsize == kept  # failures are not kept
    assert ips.cache_info().maxsize == cidrs.cache_info().maxsize == 1024  # bounded


# -- netconf, prevResult, results -----------------------------------------------------


def test_netconf_keys_fold_and_prev_result_is_read_with_go_spelling():
    conf = parse_netconf({"CNIVersion": "1.0.0", "Name": "net", "Type": "x", "IPAM": {"Type": "host-local"},
                          "PrevResult": {"CNIVersion": "1.0.0", "IPs": [{"Address": "10.1.0.5/24", "Gateway": "10.1.0.1", "Interface": 0}],
                                         "Interfaces": [{"Name": "eth0", "Sandbox": "/x"}], "Routes": [{"Dst": "0.0.0.0/0", "GW": "10.1.0.1"}],
                                         "DNS": {"Nameservers": ["10.1.0.1"]}}})
    assert (conf.cni_version, conf.name, conf.type, conf.ipam_type) == ("1.0.0", "net", "x", "host-local")
    prev = conf.prev_result
    assert prev.ips[0].address == "10.1.0.5/24" and prev.ips[0].gateway == "10.1.0.1" and prev.ips[0].interface == 0
    assert prev.interfaces[0].sandbox == "/x" and prev.routes[0].gw == "10.1.0.1" and prev.dns.nameservers == ["10.1.0.1"]


def test_results_are_canonicalised():
    res = parse_result({"cniVersion": "1.0.0", "ips": [{"address": "FD00:0::5/64", "gateway": "fd00:0::1"}],
                        "routes": [{"dst": "::/0", "gw": "FD00::1"}]})
    assert res.ips[0].address == "fd00::5/64" and res.ips[0].gateway == "fd00::1" and res.routes[0].gw == "fd00::1"
    legacy = parse_result({"cniVersion": "0.2.0", "IP4": {"IP": "10.0.0.2/24", "Gateway": "10.0.0.1"}})
    assert legacy.ips[0].address == "10.0.0.2/24" and legacy.ips[0].gateway == "10.0.0.1"


def test_prev_result_null_is_no_prev_result():
    assert parse_netconf({"name": "n", "prevResult": None}).prev_result is None


def test_lenient_parse_records_what_the_runtime_sent_wrong_instead_of_failing():
    raw = {"name": "n", "prevResult": {"ips": [{"address": "garbage"}]}, "runtimeConfig": "x", "args": 5}
    with pytest.raises(CNIError):
        parse_netconf(raw)
    conf = parse_netconf(raw, lenient=True)
    assert conf.prev_result is None and len(conf.problems) == 3 and conf.runtime_config.raw == {}


@pytest.mark.parametrize("name", ["net\n", "c2\n", "../x", "-a", "a b", "a\x00"])
def test_names_are_matched_whole(name):
    with pytest.raises(CNIError) as e:
        validate_name(name)
    assert e.value.code == 7 and e.value.msg == "invalid characters found in network name" and e.value.details == name


# -- portmap -------------------------------------------------------------------------


def portmap(mappings=None, **top):
    raw = {"cniVersion": "1.0.0", "name": "n", "type": "portmap"}
    if mappings is not None:
        raw["runtimeConfig"] = {"portMappings": mappings}
    raw.update(top)
    return parse_portmap(parse_netconf(raw))


@pytest.mark.parametrize(
    "entry",
    [
        {"hostPort": 18080, "containerPort": 80, "protocol": "udp", "hostIP": "10.0.0.1"},
        {"HostPort": 18080, "ContainerPort": 80, "Protocol": "UDP", "HostIP": "10.0.0.1"},  # containerd
    ],
)
def test_port_mappings_in_either_spelling(entry):
    m = portmap([entry]).mappings[0]
    assert (m.host_port, m.container_port, m.protocol, m.host_ip) == (18080, 80, "udp", "10.0.0.1")


def test_containerd_empty_host_ip_and_missing_protocol_are_defaults():
    m = portmap([{"HostPort": 18080, "ContainerPort": 80, "Protocol": "", "HostIP": ""}]).mappings[0]
    assert m.protocol == "tcp" and m.host_ip == "" and m.binds_any()
    assert portmap([{"hostPort": 1, "containerPort": 2, "hostIP": "FD00:0::1"}]).mappings[0].host_ip == "fd00::1"


def test_portmap_nulls_are_gos_defaults():
    pm = portmap(None, snat=None, masqAll=None, markMasqBit=None, externalSetMarkChain=None, conditionsV4=None, backend=None,
                 runtimeConfig={"portMappings": None})
    assert pm.snat is True and pm.masq_all is False and pm.mark_masq_bit == 13 and pm.mappings == [] and pm.backend == ""
    assert portmap(None, SNAT=False, MasqAll=True).snat is False


@pytest.mark.parametrize(
    "entry, field",
    [
        ({"HostPort": 0, "ContainerPort": 80}, "HostPort"),
        ({"hostPort": 80}, "containerPort"),
        ({"hostPort": 80, "containerPort": 80, "HostIP": "fe80::1%eth0"}, "HostIP"),
        ({"hostPort": 80, "containerPort": 80, "protocol": "icmp"}, "protocol"),
    ],
)
def test_bad_port_mappings_name_the_field(entry, field):
    with pytest.raises(CNIError) as e:
        portmap([entry])
    assert e.value.code == 7 and "portMappings[0].%s" % field in e.value.msg


def test_portmap_lenient_parse_records_bad_mappings():
    conf = parse_netconf({"name": "n", "runtimeConfig": {"portMappings": [{"hostPort": "x"}]}}, lenient=True)
    assert parse_portmap(conf, lenient=True).mappings == [] and conf.problems


# -- bridge ----------------------------------------------------------------------------


def test_bridge_options_in_go_spelling_and_nulls():
    raw = {"cniVersion": "1.0.0", "name": "n", "type": "bridge", "Bridge": "br9", "IsGateway": True, "ipMasq": None,
           "MTU": 1400, "VlanTrunk": [{"MinID": 2, "MaxID": 3}], "ipam": {"type": "host-local"},
           "RuntimeConfig": {"Mac": "02:00:00:00:00:01"}}
    conf = parse_bridge_conf(raw)
    assert (conf.bridge, conf.is_gateway, conf.ip_masq, conf.mtu, conf.vlan_trunk) == ("br9", True, False, 1400, [2, 3])
    assert conf.mac == "02:00:00:00:00:01"


# -- host-local -------------------------------------------------------------------------


def test_host_local_reads_go_cni_ip_ranges_and_ipam_in_go_spelling():
    raw = {"cniVersion": "1.0.0", "name": "n", "type": "bridge",
           "IPAM": {"Type": "host-local", "DataDir": "/run/d", "Ranges": [[{"Subnet": "10.2.0.0/24", "RangeStart": "10.2.0.10"}]],
                    "Routes": [{"Dst": "0.0.0.0/0"}]},
           "runtimeConfig": {"IPRanges": [[{"Subnet": "10.1.0.0/24", "RangeStart": "", "RangeEnd": "", "Gateway": ""}]],
                             "IPs": None},
           "Args": {"CNI": {"IPs": ["10.1.0.7"]}}}
    conf = load_ipam_config(parse_netconf(raw))
    assert conf.data_dir == "/run/d" and conf.type == "host-local" and [str(rs) for rs in conf.range_sets] == [
        "10.1.0.1-10.1.0.254", "10.2.0.10-10.2.0.254"]
    assert [format_ip(r.ip) for r in conf.requested_ips] == ["10.1.0.7"] and conf.routes[0].dst == "0.0.0.0/0"


def test_host_local_refuses_zone_ids_in_requested_ips():
    raw = {"name": "n", "ipam": {"ranges": [[{"subnet": "fd00::/64"}]]}, "runtimeConfig": {"ips": ["fd00::5%lo"]}}
    with pytest.raises(CNIError) as e:
        load_ipam_config(parse_netconf(raw))
    assert e.value.code == 7 and "runtimeConfig.ips[0]" in e.value.msg


# -- GC's valid attachments --------------------------------------------------------------


def test_valid_attachments_absent_is_distinct_from_empty():
    items = [{"containerID": "a", "ifname": "eth0"}, {"ContainerID": "b", "IfName": "net1"}]
    assert valid_attachments({}) is None
    assert valid_attachments({"cni.dev/valid-attachments": None}) == set()
    assert valid_attachments({"cni.dev/valid-attachments": []}) == set()
    assert valid_attachments({"cni.dev/valid-attachments": items}) == {("a", "eth0"), ("b", "net1")}
    assert valid_attachments({"cni.dev/attachments": items[:1]}) == {("a", "eth0")}
    assert valid_attachments({"cni.dev/valid-attachments": items[1:], "cni.dev/attachments": items[:1]}) == {("a", "eth0"), ("b", "net1")}
    for bad in ({"cni.dev/valid-attachments": "a"}, {"cni.dev/valid-attachments": [{"containerID": 5}]}):
        with pytest.raises(CNIError) as info:
            valid_attachments(bad)
        assert info.value.code == 7

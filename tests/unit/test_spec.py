# SPDX-License-Identifier: GPL-3.0-or-later
"""Result parsing and conversion between spec versions (pkg/types/internal/convert.go rules)."""

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.result import parse_result
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import (
    ERR_DECODE,
    ERR_INCOMPATIBLE_VERSION,
    SUPPORTED_VERSIONS,
    CNIError,
    dumps,
    parse_version,
)

DUAL = {
    "cniVersion": "1.1.0",
    "interfaces": [
        {"name": "cni0", "mac": "aa:bb:cc:dd:ee:01"},
        {"name": "veth12345678", "mac": "aa:bb:cc:dd:ee:02", "mtu": 1400},
        {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/var/run/netns/x", "pciID": "0000:00:01.0"},
    ],
    "ips": [
        {"interface": 2, "address": "10.1.0.5/24", "gateway": "10.1.0.1"},
        {"interface": 2, "address": "10.1.0.6/24", "gateway": "10.1.0.1"},
        {"interface": 2, "address": "fd00::5/64", "gateway": "fd00::1"},
    ],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1", "priority": 10}, {"dst": "::/0"}],
    "dns": {"nameservers": ["10.1.0.53"], "search": ["svc.local"]},
}


def test_parse_version_rejects_garbage_and_treats_empty_as_010():
    assert parse_version("") == (0, 1, 0)
    assert parse_version("1.1.0") == (1, 1, 0)
    with pytest.raises(CNIError) as e:
        parse_version("1.0")
    assert e.value.code == ERR_DECODE


def test_10x_output_has_no_ip_version_and_keeps_interface_extras():
    out = parse_result(DUAL).to_dict("1.0.0")
    assert out["cniVersion"] == "1.0.0"
    assert all("version" not in ip for ip in out["ips"])
    assert out["interfaces"][1]["mtu"] == 1400
    assert out["interfaces"][2]["pciID"] == "0000:00:01.0"
    assert out["routes"][0] == {"dst": "0.0.0.0/0", "gw": "10.1.0.1", "priority": 10}


def test_04x_and_03x_output_carry_ip_version_and_drop_1x_interface_fields():
    for version in ("0.3.0", "0.3.1", "0.4.0"):
        out = parse_result(DUAL).to_dict(version)
        assert [ip["version"] for ip in out["ips"]] == ["4", "4", "6"]
        assert "mtu" not in out["interfaces"][1]
        assert "pciID" not in out["interfaces"][2]
        assert out["ips"][0]["interface"] == 2


def test_020_keeps_first_address_per_family_and_splits_routes():
    out = parse_result(DUAL).to_dict("0.2.0")
    assert out["ip4"] == {"ip": "10.1.0.5/24", "gateway": "10.1.0.1", "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}]}
    assert out["ip6"] == {"ip": "fd00::5/64", "gateway": "fd00::1", "routes": [{"dst": "::/0"}]}
    assert out["dns"] == {"nameservers": ["10.1.0.53"], "search": ["svc.local"]}
    assert "interfaces" not in out and "ips" not in out


def test_020_conversion_without_addresses_fails_like_go():
    l2 = {"cniVersion": "1.0.0", "interfaces": [{"name": "cni0"}]}
    with pytest.raises(CNIError) as e:
        parse_result(l2).to_dict("0.1.0")
    assert e.value.code == ERR_INCOMPATIBLE_VERSION
    assert "no valid IP addresses" in e.value.msg


def test_020_input_upconverts_to_ips_and_top_level_routes():
    old = {"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24", "gateway": "10.0.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
           "ip6": {"ip": "fd00::2/64"}, "dns": {}}
    out = parse_result(old).to_dict("0.4.0")
    assert out["ips"] == [{"version": "4", "address": "10.0.0.2/24", "gateway": "10.0.0.1"}, {"version": "6", "address": "fd00::2/64"}]
    assert out["routes"] == [{"dst": "0.0.0.0/0"}]
    assert "interfaces" not in out


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_round_trip_through_every_version_keeps_the_first_addresses(version):
    out = parse_result(DUAL).to_dict(version)
    back = parse_result(out)
    assert back.ips[0].address == "10.1.0.5/24"
    assert any(ip.address == "fd00::5/64" for ip in back.ips)


def test_empty_dns_printed_for_0x_and_omitted_for_1x():
    res = parse_result({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]})
    assert res.to_dict("0.3.1")["dns"] == {}
    assert "dns" not in res.to_dict("1.0.0")


@pytest.mark.parametrize(
    "bad, code",
    [
        ({"cniVersion": "9.9.9"}, ERR_INCOMPATIBLE_VERSION),
        ({"cniVersion": 1}, ERR_DECODE),
        ({"cniVersion": "1.0.0", "ips": {"address": "x"}}, ERR_DECODE),
        ({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.300/24"}]}, ERR_DECODE),
        ({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3/24", "interface": "2"}]}, ERR_DECODE),
        ({"cniVersion": "1.0.0", "routes": [{"dst": "nope"}]}, ERR_DECODE),
        ({"cniVersion": "1.0.0", "routes": [{"dst": "0.0.0.0/0", "gw": "x"}]}, ERR_DECODE),
        ({"cniVersion": "1.0.0", "dns": {"nameservers": "1.1.1.1"}}, ERR_DECODE),
        ([], ERR_DECODE),
    ],
)
def test_malformed_results_are_rejected_with_a_code(bad, code):
    with pytest.raises(CNIError) as e:
        parse_result(bad)
    assert e.value.code == code


def test_error_json_has_spec_shape():
    err = CNIError(7, "missing network name", "")
    assert err.to_dict("1.0.0") == {"cniVersion": "1.0.0", "code": 7, "msg": "missing network name"}
    assert dumps({"a": 1}) == '{\n    "a": 1\n}'

# SPDX-License-Identifier: GPL-3.0-or-later
"""runtime.lint rules on parsed configs (no plugin exec: an empty bin dir)."""

import json

from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import confdir
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import lint


def conf(**bridge):
    plugin = {"type": "nodenet-bridge", "bridge": "cni0", "ipam": {"type": "nodenet-host-local", "ranges": [[{"subnet": "10.1.0.0/24"}]]}}
    plugin.update(bridge)
    return confdir.parse_conf_list(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [plugin]}).encode(), "/x.conflist")


def rules(net, tmp_path):
    return sorted(f.rule for f in lint.lint_network(net, [str(tmp_path)]))


def test_default_bounds_are_clean_apart_from_missing_plugins(tmp_path):
    assert rules(conf(), tmp_path) == ["plugin-missing", "plugin-missing"]


def test_explicit_range_around_gateway_is_flagged(tmp_path):
    net = conf(ipam={"type": "nodenet-host-local", "ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.1", "gateway": "10.1.0.5"}]]})
    assert "gateway-in-range" in rules(net, tmp_path)


def test_default_route_with_is_default_gateway_is_flagged(tmp_path):
    net = conf(isDefaultGateway=True, ipam={"type": "nodenet-host-local", "subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0"}]})
    assert "duplicate-default-route" in rules(net, tmp_path)


def test_invalid_options_are_errors_naming_the_field(tmp_path):
    findings = lint.lint_network(conf(hairpinMode="yes"), [str(tmp_path)])
    bad = [f for f in findings if f.rule == "invalid-config"]
    assert bad and "hairpinMode" in bad[0].msg and bad[0].level == "error"


def test_overlapping_networks_across_files():
    a = conf()
    b = confdir.parse_conf_list(json.dumps({"cniVersion": "1.0.0", "name": "other", "plugins": [
        {"type": "bridge", "ipam": {"type": "host-local", "subnet": "10.1.0.128/25"}}]}).encode(), "/y.conflist")
    assert [f.rule for f in lint.overlapping_networks([a, b])] == ["overlapping-networks"]

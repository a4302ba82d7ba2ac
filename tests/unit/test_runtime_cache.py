# SPDX-License-Identifier: GPL-3.0-or-later
"""runtime.cache: libcni's cniCacheV1 files, byte for byte, and the legacy format."""

import base64
import json
import os
import stat

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import cache
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.cache import (
    CacheEntry,
    CacheError,
    cache_file_path,
    cached_result,
    delete_entry,
    list_attachments,
    parse_entry,
    read_entry,
    write_entry,
)

LIST_BYTES = b'{"cniVersion":"1.0.0","name":"mynet","plugins":[{"type":"bridge"}]}'
RESULT_100 = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/var/run/netns/x"}],
    "ips": [{"interface": 0, "address": "10.22.0.5/16", "gateway": "10.22.0.1"}],
    "routes": [{"dst": "0.0.0.0/0"}],
}


def entry(**kw):
    base = dict(container_id="ctr-1", network_name="mynet", ifname="eth0", config=LIST_BYTES, result=RESULT_100)
    base.update(kw)
    return CacheEntry(**base)


def test_path_is_results_slash_net_dash_id_dash_ifname(tmp_path):
    assert cache_file_path(str(tmp_path), "my-net", "c-1", "eth0") == str(tmp_path / "results" / "my-net-c-1-eth0")
    assert cache_file_path("", "n", "c", "i") == "/var/lib/cni/results/n-c-i"
    for args in (("", "c", "i"), ("n", "", "i"), ("n", "c", "")):
        with pytest.raises(CacheError, match="cache file path requires"):
            cache_file_path(str(tmp_path), *args)


def test_written_file_is_cni_cache_v1_with_go_key_order_and_omissions(tmp_path):
    path = write_entry(str(tmp_path), entry())
    raw = open(path, "rb").read()
    # Go's encoder: struct field order, compact, empty netns/cniArgs/capabilityArgs omitted
    assert raw == (
        b'{"kind":"cniCacheV1","containerId":"ctr-1","config":"' + base64.b64encode(LIST_BYTES) + b'",'
        b'"ifName":"eth0","networkName":"mynet","result":' + json.dumps(RESULT_100, separators=(",", ":")).encode() + b"}"
    )


def test_written_file_carries_netns_args_and_capability_args(tmp_path):
    e = entry(netns="/var/run/netns/x", cni_args=[("IgnoreUnknown", "1"), ("K8S_POD_NAME", "p")], capability_args={"portMappings": [{"hostPort": 80}]})
    obj = json.loads(open(write_entry(str(tmp_path), e), "rb").read())
    assert list(obj) == ["kind", "containerId", "config", "ifName", "networkName", "netns", "cniArgs", "capabilityArgs", "result"]
    assert obj["cniArgs"] == [["IgnoreUnknown", "1"], ["K8S_POD_NAME", "p"]]
    assert obj["capabilityArgs"] == {"portMappings": [{"hostPort": 80}]}
    assert base64.b64decode(obj["config"]) == LIST_BYTES


def test_modes_are_0700_dir_and_0600_file_and_no_temp_file_is_left(tmp_path):
    root = tmp_path / "fresh" / "cache"
    path = write_entry(str(root), entry())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(root / "results").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700  # Go's MkdirAll gives every new dir 0700
    assert os.listdir(root / "results") == ["mynet-ctr-1-eth0"]


def test_rewrite_replaces_the_entry(tmp_path):
    write_entry(str(tmp_path), entry(netns="/a"))
    write_entry(str(tmp_path), entry(netns="/b"))
    assert read_entry(str(tmp_path), "mynet", "ctr-1", "eth0").netns == "/b"


def test_round_trip(tmp_path):
    e = entry(netns="/n", cni_args=[("A", "b")], capability_args={"mac": "aa:bb:cc:dd:ee:ff"})
    write_entry(str(tmp_path), e)
    back = read_entry(str(tmp_path), "mynet", "ctr-1", "eth0")
    assert (back.kind, back.container_id, back.network_name, back.ifname, back.netns) == ("cniCacheV1", "ctr-1", "mynet", "eth0", "/n")
    assert back.cni_args == [("A", "b")] and back.capability_args == {"mac": "aa:bb:cc:dd:ee:ff"}
    assert back.config == LIST_BYTES and back.result == RESULT_100
    assert back.as_dict()["config"] == json.loads(LIST_BYTES)


def test_reads_a_file_written_by_go_libcni(tmp_path):
    # as libcni v1.x writes it (captured shape; netns and args present)
    go = {
        "kind": "cniCacheV1",
        "containerId": "cnitool-77383ca0a0715733ca6f",
        "config": base64.b64encode(LIST_BYTES).decode(),
        "ifName": "eth0",
        "networkName": "mynet",
        "netns": "/var/run/netns/t",
        "cniArgs": [["IgnoreUnknown", "1"]],
        "result": RESULT_100,
    }
    os.makedirs(tmp_path / "results")
    (tmp_path / "results" / "mynet-cnitool-77383ca0a0715733ca6f-eth0").write_text(json.dumps(go))
    [att] = list_attachments(str(tmp_path))
    assert att.container_id == "cnitool-77383ca0a0715733ca6f" and att.cni_args == [("IgnoreUnknown", "1")]


def test_cache_keys_and_the_result_fold_like_libcnis_cached_info_struct():
    go = {"Kind": "cniCacheV1", "ContainerID": "c1", "Config": base64.b64encode(LIST_BYTES).decode(), "IfName": "eth0",
          "NetworkName": "mynet", "Result": {"CNIVersion": "1.0.0", "IPs": [{"Address": "10.22.0.5/16"}]}}
    got = parse_entry(json.dumps(go).encode())
    assert (got.kind, got.container_id, got.ifname, got.network_name, got.config) == ("cniCacheV1", "c1", "eth0", "mynet", LIST_BYTES)
    assert cache.convert_result(got.result, "0.4.0")["ips"] == [{"version": "4", "address": "10.22.0.5/16"}]


def test_missing_file_means_no_cached_result(tmp_path):
    assert read_entry(str(tmp_path), "mynet", "ctr-1", "eth0") is None
    assert cached_result(str(tmp_path), "mynet", "ctr-1", "eth0", "1.0.0") is None


def test_cached_result_is_converted_to_the_list_version(tmp_path):
    write_entry(str(tmp_path), entry())
    same = cached_result(str(tmp_path), "mynet", "ctr-1", "eth0", "1.0.0")
    assert same == RESULT_100  # same version: passed through untouched
    down = cached_result(str(tmp_path), "mynet", "ctr-1", "eth0", "0.4.0")
    assert down["cniVersion"] == "0.4.0" and down["ips"][0]["version"] == "4"
    old = cached_result(str(tmp_path), "mynet", "ctr-1", "eth0", "0.2.0")
    assert old["ip4"]["ip"] == "10.22.0.5/16"


def test_unconvertible_cached_result_is_a_cache_error(tmp_path):
    write_entry(str(tmp_path), entry(result={"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}]}))
    with pytest.raises(CacheError, match="failed to convert cached result"):
        cached_result(str(tmp_path), "mynet", "ctr-1", "eth0", "0.2.0")


def test_legacy_bare_result_files_are_read(tmp_path):
    legacy = {"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.1.0.2/24"}], "dns": {}}
    os.makedirs(tmp_path / "results")
    (tmp_path / "results" / "mynet-ctr-1-eth0").write_text(json.dumps(legacy))
    e = read_entry(str(tmp_path), "mynet", "ctr-1", "eth0")
    assert e.kind == "legacy" and e.result == legacy
    assert cached_result(str(tmp_path), "mynet", "ctr-1", "eth0", "1.0.0")["ips"] == [{"address": "10.1.0.2/24"}]
    # libcni lists only cniCacheV1 entries: a legacy file names no attachment
    assert list_attachments(str(tmp_path)) == []


@pytest.mark.parametrize(
    "content, words",
    [
        (b"{oops", "is not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"kind":"cniCacheV1","containerId":"c","config":"***","ifName":"i","networkName":"n"}', "not base64"),
        (b'{"kind":"cniCacheV1","containerId":"c","config":"","ifName":"i","networkName":"n","cniArgs":[["a"]]}', "cniArgs"),
    ],
)
def test_corrupt_files_are_cache_errors(content, words):
    with pytest.raises(CacheError, match=words):
        parse_entry(content, "/x")


def test_list_attachments_reads_identity_from_json_not_names(tmp_path):
    # dashes everywhere: the name cannot be split back, the JSON says what it is
    write_entry(str(tmp_path), entry(network_name="my-net", container_id="a-b-c", ifname="net-1"))
    write_entry(str(tmp_path), entry(network_name="other", container_id="a-b-c", ifname="eth0"))
    write_entry(str(tmp_path), entry(network_name="my-net", container_id="zzz", ifname="eth0"))
    (tmp_path / "results" / "garbage").write_text("{")
    (tmp_path / "results" / "no-ifname").write_text(json.dumps({"kind": "cniCacheV1", "containerId": "c", "networkName": "n", "config": ""}))
    all_ = list_attachments(str(tmp_path))
    assert [(a.network_name, a.container_id, a.ifname) for a in all_] == [
        ("my-net", "a-b-c", "net-1"),
        ("my-net", "zzz", "eth0"),
        ("other", "a-b-c", "eth0"),
    ]
    assert [a.network_name for a in list_attachments(str(tmp_path), container_id="a-b-c")] == ["my-net", "other"]
    assert [a.container_id for a in list_attachments(str(tmp_path), network="my-net")] == ["a-b-c", "zzz"]
    assert all(os.path.isfile(a.path) for a in all_)


def test_list_attachments_of_a_missing_dir_is_empty(tmp_path):
    assert list_attachments(str(tmp_path / "none")) == []


def test_delete_entry_reports_whether_there_was_one(tmp_path):
    write_entry(str(tmp_path), entry())
    assert delete_entry(str(tmp_path), "mynet", "ctr-1", "eth0") is True
    assert delete_entry(str(tmp_path), "mynet", "ctr-1", "eth0") is False
    assert delete_entry(str(tmp_path), "", "ctr-1", "eth0") is False
    assert cache.DEFAULT_CACHE_DIR == "/var/lib/cni"

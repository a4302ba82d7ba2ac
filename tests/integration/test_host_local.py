# SPDX-License-Identifier: GPL-3.0-or-later
"""host-local, exec'd like a runtime does (env + stdin), for every spec version.

host-local never enters a netns, so it runs in the test's own namespace with
a CNI_NETNS string that names nothing; it only ever writes into the
per-test `data_dir`.
"""

import copy
import json
import os
import stat

import pytest
from cnitest import exec_plugin

VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
GO_VERSIONS = ["0.2.0", "0.4.0", "1.0.0"]  # Debian's Go host-local 1.1.1 speaks up to 1.0.0
NET = "hlnet"
NETNS = "/var/run/netns/nodenet-none"  # never opened by host-local


@pytest.fixture
def py(cni_bin):
    return os.path.join(cni_bin, "nodenet-host-local")


@pytest.fixture
def go(go_bin):
    return os.path.join(go_bin, "host-local")


def make_conf(data_dir, ranges=None, version="1.0.0", name=NET, **ipam):
    body = {"type": "host-local", "dataDir": data_dir, "ranges": ranges if ranges is not None else [[{"subnet": "10.7.0.0/24"}]]}
    body.update(ipam)
    return {"cniVersion": version, "name": name, "type": "bridge", "ipam": body}


def run(plugin, command, conf, cid="ctr1", ifname="eth0", cni_args="", stdin=None):
    return exec_plugin(plugin, command, conf, netns=NETNS, container_id=cid, ifname=ifname, cni_args=cni_args, stdin=stdin, timeout=60)


def fail(res, code):
    assert res.rc != 0, res.stdout
    err = res.json
    assert err["code"] == code, err
    return err["msg"]


def tree(root):
    """{relative path: bytes} for files, None for directories."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.relpath(os.path.join(dirpath, f), root)] = fh.read()
    return out


def net_dir(data_dir):
    return os.path.join(data_dir, NET)


# -- ADD / CHECK / DEL per version ----------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_add_check_del_round_trip(version, py, data_dir):
    conf = make_conf(data_dir, version=version, routes=[{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16", "gw": "10.7.0.1"}])
    res = run(py, "ADD", conf).ok().json
    assert res["cniVersion"] == version
    routes = [{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16", "gw": "10.7.0.1"}]
    if version in ("0.1.0", "0.2.0"):
        assert res == {"cniVersion": version, "ip4": {"ip": "10.7.0.2/24", "gateway": "10.7.0.1", "routes": routes}, "dns": {}}
    elif version < "1.0.0":
        assert res == {"cniVersion": version, "ips": [{"version": "4", "address": "10.7.0.2/24", "gateway": "10.7.0.1"}],
                       "routes": routes, "dns": {}}
    else:
        assert res == {"cniVersion": version, "ips": [{"address": "10.7.0.2/24", "gateway": "10.7.0.1"}], "routes": routes}

    lease = os.path.join(net_dir(data_dir), "10.7.0.2")
    assert open(lease, "rb").read() == b"ctr1\r\neth0"
    assert stat.S_IMODE(os.stat(lease).st_mode) == 0o600
    assert open(os.path.join(net_dir(data_dir), "last_reserved_ip.0"), "rb").read() == b"10.7.0.2"
    assert stat.S_IMODE(os.stat(os.path.join(net_dir(data_dir), "lock")).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(net_dir(data_dir)).st_mode) == 0o755

    if version >= "0.4.0":
        run(py, "CHECK", dict(conf, prevResult=res)).ok()
    else:
        assert "CHECK" in fail(run(py, "CHECK", conf), 1)

    run(py, "DEL", conf).ok()
    assert sorted(os.listdir(net_dir(data_dir))) == ["last_reserved_ip.0", "lock"]
    run(py, "DEL", conf).ok()  # twice is fine
    if version >= "0.4.0":
        assert fail(run(py, "CHECK", conf), 999) == "host-local: Failed to find address added by container ctr1"


def test_del_of_unknown_container_succeeds_and_creates_nothing(py, data_dir):
    res = run(py, "DEL", make_conf(data_dir), cid="never-added")
    assert res.rc == 0 and res.stdout == ""
    assert os.listdir(data_dir) == []


def test_del_needs_no_netns(py, data_dir):
    conf = make_conf(data_dir)
    run(py, "ADD", conf).ok()
    # CNI_NETNS is optional for DEL (SPEC.md DEL); skel must not require it
    res = exec_plugin(py, "DEL", conf, netns="", container_id="ctr1")
    assert res.rc == 0, res.stdout
    assert sorted(os.listdir(net_dir(data_dir))) == ["last_reserved_ip.0", "lock"]


def test_duplicate_add_is_an_error_other_ifname_is_not(py, data_dir):
    conf = make_conf(data_dir)
    run(py, "ADD", conf).ok()
    msg = fail(run(py, "ADD", conf), 999)
    assert msg == "failed to allocate for range 0: 10.7.0.2 has been allocated to ctr1, duplicate allocation is not allowed"
    assert run(py, "ADD", conf, ifname="eth1").ok().json["ips"][0]["address"] == "10.7.0.3/24"
    assert run(py, "ADD", conf, cid="ctr2").ok().json["ips"][0]["address"] == "10.7.0.4/24"


def test_round_robin_after_release(py, data_dir):
    conf = make_conf(data_dir)
    run(py, "ADD", conf, cid="a").ok()
    run(py, "DEL", conf, cid="a").ok()
    assert run(py, "ADD", conf, cid="b").ok().json["ips"][0]["address"] == "10.7.0.3/24"


def test_exhaustion_message_like_go(py, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "10.5.0.0/30"}]])
    run(py, "ADD", conf, cid="a").ok()
    msg = fail(run(py, "ADD", conf, cid="b"), 999)
    assert msg == "failed to allocate for range 0: no IP addresses available in range set: 10.5.0.1-10.5.0.2"


@pytest.mark.parametrize("version", ["0.2.0", "0.3.1", "1.0.0"])
def test_dual_stack(version, py, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "10.7.0.0/24"}], [{"subnet": "2001:db8:1::/64"}]], version=version)
    res = run(py, "ADD", conf).ok().json
    if version == "0.2.0":
        assert res["ip4"]["ip"] == "10.7.0.2/24" and res["ip6"] == {"ip": "2001:db8:1::2/64", "gateway": "2001:db8:1::1"}
    else:
        assert [ip["address"] for ip in res["ips"]] == ["10.7.0.2/24", "2001:db8:1::2/64"]
        assert [ip.get("version") for ip in res["ips"]] == ([None, None] if version == "1.0.0" else ["4", "6"])
    assert sorted(os.listdir(net_dir(data_dir))) == ["10.7.0.2", "2001:db8:1::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]
    assert open(os.path.join(net_dir(data_dir), "last_reserved_ip.1"), "rb").read() == b"2001:db8:1::2"
    run(py, "DEL", conf).ok()
    assert sorted(os.listdir(net_dir(data_dir))) == ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]


def test_two_addresses_of_one_family_need_0_3_0(py, data_dir):
    ranges = [[{"subnet": "10.7.0.0/24"}], [{"subnet": "10.8.0.0/24"}]]
    assert "CNI version 0.2.0 does not support more than 1 address per family" in fail(run(py, "ADD", make_conf(data_dir, ranges, "0.2.0")), 7)
    res = run(py, "ADD", make_conf(data_dir, ranges, "0.3.1")).ok().json
    assert [ip["address"] for ip in res["ips"]] == ["10.7.0.2/24", "10.8.0.2/24"]


# -- requested IPs -------------------------------------------------------------


@pytest.mark.parametrize("how", ["CNI_ARGS", "args", "runtimeConfig"])
def test_requested_ip(how, py, data_dir):
    conf = make_conf(data_dir)
    cni_args = ""
    if how == "CNI_ARGS":
        cni_args = "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.7.0.77"
    elif how == "args":
        conf["args"] = {"cni": {"ips": ["10.7.0.77"]}}
    else:
        conf["capabilities"] = {"ips": True}
        conf["runtimeConfig"] = {"ips": ["10.7.0.77/24"]}
    res = run(py, "ADD", conf, cni_args=cni_args).ok().json
    assert res["ips"] == [{"address": "10.7.0.77/24", "gateway": "10.7.0.1"}]
    assert open(os.path.join(net_dir(data_dir), "10.7.0.77"), "rb").read() == b"ctr1\r\neth0"
    msg = fail(run(py, "ADD", conf, cid="ctr2", cni_args=cni_args), 999)
    assert msg == "failed to allocate for range 0: requested IP address 10.7.0.77 is not available in range set 10.7.0.1-10.7.0.254"


def test_requested_gateway_is_refused(py, data_dir):
    msg = fail(run(py, "ADD", make_conf(data_dir), cni_args="IP=10.7.0.1"), 999)
    assert msg == "failed to allocate for range 0: requested ip 10.7.0.1 is subnet's gateway"
    assert sorted(os.listdir(net_dir(data_dir))) == ["lock"]


def test_requested_ips_for_both_families(py, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "10.7.0.0/24"}], [{"subnet": "2001:db8:1::/64"}]])
    conf["args"] = {"cni": {"ips": ["2001:db8:1::42", "10.7.0.42"]}}
    res = run(py, "ADD", conf).ok().json
    assert [ip["address"] for ip in res["ips"]] == ["10.7.0.42/24", "2001:db8:1::42/64"]


def test_resolv_conf_becomes_result_dns(py, data_dir, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.10\nsearch svc.cluster.local cluster.local\noptions ndots:5\ndomain example\n")
    res = run(py, "ADD", make_conf(data_dir, resolvConf=str(resolv))).ok().json
    assert res["dns"] == {"nameservers": ["10.0.0.10"], "domain": "example", "search": ["svc.cluster.local", "cluster.local"], "options": ["ndots:5"]}


def test_legacy_id_only_lease_is_released(py, data_dir):
    os.makedirs(net_dir(data_dir))
    with open(os.path.join(net_dir(data_dir), "10.7.0.9"), "w") as f:
        f.write("oldctr\n")
    run(py, "DEL", make_conf(data_dir), cid="oldctr").ok()
    assert os.listdir(net_dir(data_dir)) == ["lock"]


# -- GC and STATUS (spec 1.1.0) -------------------------------------------------


def _seed_for_gc(py, data_dir):
    conf = make_conf(data_dir, version="1.1.0")
    for cid, ifname in [("a", "eth0"), ("a", "eth1"), ("b", "eth0")]:
        run(py, "ADD", conf, cid=cid, ifname=ifname).ok()
    for name, content in [("10.7.0.50", "a"), ("10.7.0.51", "gone")]:
        with open(os.path.join(net_dir(data_dir), name), "w") as f:
            f.write(content)
    return conf


@pytest.mark.parametrize("key", ["cni.dev/valid-attachments", "cni.dev/attachments"])
def test_gc_releases_leases_not_in_the_valid_set(key, py, data_dir):
    conf = _seed_for_gc(py, data_dir)
    res = run(py, "GC", dict(conf, **{key: [{"containerID": "a", "ifname": "eth0"}]}), cid="", ifname="")
    assert res.rc == 0 and res.stdout == "", res.stdout
    assert sorted(os.listdir(net_dir(data_dir))) == ["10.7.0.2", "10.7.0.50", "last_reserved_ip.0", "lock"]


def test_gc_with_empty_valid_set_releases_everything_and_keeps_lock_and_cursor(py, data_dir):
    conf = _seed_for_gc(py, data_dir)
    run(py, "GC", dict(conf, **{"cni.dev/valid-attachments": []}), cid="", ifname="").ok()
    assert sorted(os.listdir(net_dir(data_dir))) == ["last_reserved_ip.0", "lock"]


def test_gc_without_the_valid_attachments_key_frees_nothing_and_succeeds(py, data_dir):
    # what libcni sends for cnitool gc (no valid set): must not fail, must not guess
    conf = _seed_for_gc(py, data_dir)
    run(py, "GC", conf, cid="", ifname="").ok()
    assert len(os.listdir(net_dir(data_dir))) == 7


def test_gc_and_status_need_1_1_0(py, data_dir):
    conf = make_conf(data_dir, version="1.0.0")
    fail(run(py, "GC", dict(conf, **{"cni.dev/valid-attachments": []})), 1)
    fail(run(py, "STATUS", conf), 1)


def test_status_ok_and_creates_nothing(py, data_dir):
    res = run(py, "STATUS", make_conf(data_dir, version="1.1.0"))
    assert res.rc == 0 and res.stdout == ""
    assert os.listdir(data_dir) == []


def test_status_50_when_data_dir_is_not_a_directory(py, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    msg = fail(run(py, "STATUS", make_conf(str(blocker), version="1.1.0")), 50)
    assert str(blocker) in msg


def test_network_name_with_path_traversal_is_rejected_and_nothing_created(py, data_dir):
    conf = make_conf(os.path.join(data_dir, "sub"), name="../x")
    res = run(py, "ADD", conf)
    assert fail(res, 7) == "invalid characters found in network name"
    assert os.listdir(data_dir) == [] and not os.path.exists(os.path.join(data_dir, "x"))


# -- bad input: rejected before anything is created ------------------------------

R = [[{"subnet": "10.7.0.0/24"}]]

BAD_INPUT = [
    # (id, ipam overrides / top-level changes, CNI_ARGS, code, a fragment naming the field)
    ("bad-subnet", {"ranges": [[{"subnet": "10.7.0.0/33"}]]}, {}, "", 7, "ipam.ranges[0][0].subnet"),
    ("not-a-cidr", {"ranges": [[{"subnet": "banana"}]]}, {}, "", 7, "ipam.ranges[0][0].subnet"),
    ("host-bits", {"ranges": [[{"subnet": "10.7.0.9/24"}]]}, {}, "", 7, "ipam.ranges[0][0].subnet"),
    ("too-small", {"ranges": [[{"subnet": "10.7.0.0/31"}]]}, {}, "", 7, "ipam.ranges[0][0].subnet"),
    ("start-outside", {"ranges": [[{"subnet": "10.7.0.0/24"}, {"subnet": "10.8.0.0/24", "rangeStart": "10.9.0.1"}]]}, {}, "", 7,
     "ipam.ranges[0][1].rangeStart"),
    ("end-outside", {"ranges": [[{"subnet": "10.7.0.0/24", "rangeEnd": "10.8.0.1"}]]}, {}, "", 7, "ipam.ranges[0][0].rangeEnd"),
    ("start-after-end", {"ranges": [[{"subnet": "10.7.0.0/24", "rangeStart": "10.7.0.9", "rangeEnd": "10.7.0.5"}]]}, {}, "", 7,
     "ipam.ranges[0][0].rangeStart"),
    ("gateway-outside", {"ranges": [[{"subnet": "10.7.0.0/24", "gateway": "10.8.0.1"}]]}, {}, "", 7, "ipam.ranges[0][0].gateway"),
    ("overlapping-sets", {"ranges": [[{"subnet": "10.7.0.0/24"}], [{"subnet": "10.7.0.0/16"}]]}, {}, "", 7, "ipam.ranges[0], ipam.ranges[1]"),
    ("overlapping-in-set", {"ranges": [[{"subnet": "10.7.0.0/24"}, {"subnet": "10.7.0.0/25"}]]}, {}, "", 7, "ipam.ranges[0][0], ipam.ranges[0][1]"),
    ("legacy-overlaps", {"subnet": "10.7.0.0/24"}, {}, "", 7, "ipam, ipam.ranges[0]"),
    ("mixed-families", {"ranges": [[{"subnet": "10.7.0.0/24"}, {"subnet": "fd00::/64"}]]}, {}, "", 7, "ipam.ranges[0][1]"),
    ("empty-ranges", {"ranges": []}, {}, "", 7, "ipam.ranges"),
    ("empty-range-set", {"ranges": [[]]}, {}, "", 7, "ipam.ranges[0]"),
    ("ranges-not-a-list", {"ranges": {"subnet": "10.7.0.0/24"}}, {}, "", 7, "ipam.ranges"),
    ("subnet-wrong-type", {"ranges": [[{"subnet": 24}]]}, {}, "", 7, "ipam.ranges[0][0].subnet"),
    ("range-not-object", {"ranges": [["10.7.0.0/24"]]}, {}, "", 7, "ipam.ranges[0][0]"),
    ("missing-ipam", None, {}, "", 7, "'ipam'"),
    ("ipam-not-object", "host-local", {}, "", 7, "'ipam'"),
    ("unknown-cni-arg", {}, {}, "FOO=bar", 4, "FOO=bar"),
    ("lowercase-ip-arg", {}, {}, "ip=10.7.0.5", 4, "ip=10.7.0.5"),
    ("bad-ip-arg", {}, {}, "IP=10.7.0.999", 4, "CNI_ARGS IP"),
    ("ip-arg-outside", {}, {}, "IP=10.9.0.5", 4, "CNI_ARGS IP"),
    ("two-ips-one-set", {}, {}, "IP=10.7.0.5,10.7.0.6", 4, "CNI_ARGS IP"),
    ("bad-args-ips", {}, {"args": {"cni": {"ips": ["nope"]}}}, "", 7, "args.cni.ips[0]"),
    ("runtime-ips-type", {}, {"runtimeConfig": {"ips": "10.7.0.5"}}, "", 7, "runtimeConfig.ips"),
    ("runtime-ranges-bad", {}, {"runtimeConfig": {"ipRanges": [[{"subnet": "10.6.0.0/24", "gateway": "10.5.0.1"}]]}}, "", 7,
     "runtimeConfig.ipRanges[0][0].gateway"),
    ("bad-route", {"routes": [{"dst": "0.0.0.0"}]}, {}, "", 7, "ipam.routes[0].dst"),
    ("bad-route-gw", {"routes": [{"dst": "0.0.0.0/0", "gw": "fd00::1"}]}, {}, "", 7, "ipam.routes[0].gw"),
    ("v020-two-v4", {"ranges": [[{"subnet": "10.7.0.0/24"}], [{"subnet": "10.8.0.0/24"}]]}, {"cniVersion": "0.2.0"}, "", 7, "cniVersion"),
    ("resolv-conf-missing", {"resolvConf": "/nonexistent/resolv.conf"}, {}, "", 7, "ipam.resolvConf"),
    ("data-dir-wrong-type", {"dataDir": ["x"]}, {}, "", 7, "ipam.dataDir"),
]


@pytest.mark.parametrize("ipam,top,cni_args,code,field", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_rejected_and_nothing_is_created(ipam, top, cni_args, code, field, py, data_dir):
    conf = make_conf(data_dir, R)
    if ipam is None:
        del conf["ipam"]
    elif not isinstance(ipam, dict):
        conf["ipam"] = ipam
    else:
        conf["ipam"].update(copy.deepcopy(ipam))
    conf.update(copy.deepcopy(top))
    res = run(py, "ADD", conf, cni_args=cni_args)
    assert res.rc != 0
    msg = fail(res, code)
    assert field in msg, msg
    assert os.listdir(data_dir) == []


# -- byte compatibility with Go's host-local -------------------------------------


def _scenario(plugin, data_dir, version):
    """The same sequence of calls; returns what each printed (normalised)."""
    conf = make_conf(
        data_dir,
        [[{"subnet": "10.7.0.0/29"}], [{"subnet": "2001:db8:0:1::/64", "rangeStart": "2001:db8:0:1::1:0"}]],
        version=version,
        routes=[{"dst": "0.0.0.0/0"}],
    )
    steps = [
        ("ADD", "a", "eth0", ""),
        ("ADD", "b", "eth0", ""),
        ("ADD", "a", "eth0", ""),  # duplicate
        ("ADD", "a", "eth1", ""),
        ("DEL", "b", "eth0", ""),
        ("ADD", "c", "eth0", ""),
        ("ADD", "d", "eth0", "IP=10.7.0.3"),
        ("ADD", "e", "eth0", ""),
        ("ADD", "f", "eth0", ""),  # v4 /29 exhausted
        ("ADD", "g", "eth0", "IP=10.7.0.1"),  # the gateway
        ("DEL", "a", "eth0", ""),
        ("DEL", "zzz", "eth0", ""),
        ("DEL", "legacy", "eth0", ""),
        ("DEL", "a", "eth0", ""),
    ]
    outputs = []
    for command, cid, ifname, cni_args in steps:
        if cid == "legacy":
            with open(os.path.join(net_dir(data_dir), "2001:db8:0:1::9"), "w") as f:
                f.write("legacy")
        res = run(plugin, command, conf, cid=cid, ifname=ifname, cni_args=cni_args)
        out = json.loads(res.stdout) if res.stdout else None
        if isinstance(out, dict):
            if "code" in out:
                out.pop("cniVersion", None)  # the spec's error has it, Go's does not
            if out.get("dns") == {}:
                del out["dns"]  # Go 1.1.1 prints "dns": {} for 1.x as well (libcni < 1.2)
        outputs.append((command, cid, res.rc, out))
    return outputs


@pytest.mark.parametrize("version", GO_VERSIONS)
def test_same_files_and_results_as_go(version, py, go, tmp_path):
    go_dir, py_dir = str(tmp_path / "go"), str(tmp_path / "py")
    os.makedirs(go_dir)
    os.makedirs(py_dir)
    go_out = _scenario(go, go_dir, version)
    py_out = _scenario(py, py_dir, version)
    assert py_out == go_out
    assert tree(py_dir) == tree(go_dir)
    assert sorted(tree(py_dir)) == [NET, NET + "/10.7.0.3", NET + "/10.7.0.4", NET + "/10.7.0.5", NET + "/10.7.0.6",
                                    NET + "/2001:db8:0:1::1:2", NET + "/2001:db8:0:1::1:3", NET + "/2001:db8:0:1::1:4",
                                    NET + "/2001:db8:0:1::1:5", NET + "/last_reserved_ip.0", NET + "/last_reserved_ip.1", NET + "/lock"]
    # the failing ADDs (duplicate, exhausted, gateway) printed Go's exact texts
    assert [o[3]["msg"] for o in py_out if o[2] != 0] == [
        "failed to allocate for range 0: 10.7.0.2 has been allocated to a, duplicate allocation is not allowed",
        "failed to allocate for range 0: no IP addresses available in range set: 10.7.0.1-10.7.0.6",
        "failed to allocate for range 0: requested ip 10.7.0.1 is subnet's gateway",
    ]


# -- issue 7 / issue 10: what runtimes send --------------------------------------


def test_names_with_a_trailing_newline_are_rejected_and_nothing_created(py, data_dir):
    # Go's regexp `$` is the end of the text: "net\n" and "c2\n" are invalid there
    assert fail(run(py, "ADD", make_conf(data_dir, name="net\n")), 7) == "invalid characters found in network name"
    assert fail(run(py, "ADD", make_conf(data_dir), cid="c2\n"), 4)
    assert os.listdir(data_dir) == []


def test_del_with_a_garbage_prev_result_and_bad_capability_args_releases_the_lease(py, data_dir):
    conf = make_conf(data_dir)
    ip = run(py, "ADD", conf, cid="garbage").ok().json["ips"][0]["address"].split("/")[0]
    broken = dict(conf, prevResult={"cniVersion": "1.0.0", "ips": [{"address": "nope"}]},
                  runtimeConfig={"ips": ["not-an-ip"], "ipRanges": "x"}, args={"cni": {"ips": [5]}})
    run(py, "DEL", broken, cid="garbage", cni_args="IP=bogus").ok()
    assert ip not in os.listdir(net_dir(data_dir))


def test_go_cni_ip_ranges_and_requested_ips_in_go_spelling(py, data_dir):
    # go-cni marshals IPRanges without json tags: {"Subnet": ..., "RangeStart": ...}
    conf = dict(make_conf(data_dir), runtimeConfig={"ipRanges": [[{"Subnet": "10.8.0.0/24", "RangeStart": "10.8.0.20", "RangeEnd": "",
                                                                   "Gateway": ""}]], "IPs": ["10.8.0.30"]})
    res = run(py, "ADD", conf, cid="gocni").ok().json
    assert [ip["address"] for ip in res["ips"]] == ["10.8.0.30/24", "10.7.0.2/24"]
    run(py, "DEL", conf, cid="gocni").ok()
    assert sorted(n for n in os.listdir(net_dir(data_dir)) if n[0].isdigit()) == []


def test_containerds_second_del_and_the_callers_own_netns(py, data_dir):
    conf = make_conf(data_dir)
    ip = run(py, "ADD", conf, cid="own").ok().json["ips"][0]["address"].split("/")[0]
    res = exec_plugin(py, "DEL", conf, netns="/proc/self/ns/net", container_id="own")
    assert res.rc == 0, res.stdout
    assert ip not in os.listdir(net_dir(data_dir))
    exec_plugin(py, "DEL", conf, netns="", container_id="own").ok()  # RemovePodSandbox: no netns, no prevResult

# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_attach through `ansible`, on a "node" that is a test network namespace.

The node has its own conf dir, cache dir and dataDir under tmp_path; the
plugins run in the node namespace (the whole ansible command does), the
probe namespaces the module makes carry the test run's unique prefix and
are deleted by exact name in the finalizer.
"""

from __future__ import annotations

import json
import os
import stat

import pytest
from attachrun import cache_files, conflist, leases, netns_exists, run_on_node, seed_conf

M = "nodenet.cni.cni_attach"
GATEWAY = "10.13.3.254"
PING_GATEWAY = "ping -c 1 -W 3 " + GATEWAY


@pytest.fixture
def node(netns_factory):
    return netns_factory("att")


def logged_bin(tmp_path, real_bin: str, names=("nodenet-bridge", "nodenet-host-local", "nodenet-loopback")) -> tuple:
    """Wrappers that log each exec's CNI_COMMAND, then exec the real plugin."""
    d = tmp_path / "logged-bin"
    d.mkdir()
    log = tmp_path / "execs.log"
    for name in names:
        path = d / name
        path.write_text('#!/bin/sh\necho "%s $CNI_COMMAND" >> %s\nexec %s "$@"\n' % (name, log, os.path.join(real_bin, name)))
        path.chmod(0o755)
    return str(d), str(log)


def execs(log: str):
    return open(log).read().split("\n")[:-1] if os.path.exists(log) else []


def failing_plugin(bin_dir, name: str = "failer") -> None:
    """A plugin that refuses ADD with a CNI error object and accepts DEL."""
    path = os.path.join(bin_dir, name)
    with open(path, "w") as f:
        f.write(
            "#!/bin/sh\n"
            "cat > /dev/null\n"
            'case "$CNI_COMMAND" in\n'
            '  VERSION) echo \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\' ;;\n'
            '  ADD) echo \'{"cniVersion":"1.0.0","code":999,"msg":"failer refuses ADD","details":"on purpose"}\'; echo "failer: stderr line" >&2; exit 1 ;;\n'
            "  *) exit 0 ;;\n"
            "esac\n"
        )
    os.chmod(path, 0o755)


def addresses_in(name: str, ifname: str = "eth0"):
    import subprocess

    out = subprocess.run(["ip", "netns", "exec", name, "ip", "-j", "addr", "show", "dev", ifname], capture_output=True, text=True, timeout=30, check=False)
    if out.returncode != 0:
        return None
    return ["%s/%s" % (a["local"], a["prefixlen"]) for link in json.loads(out.stdout) for a in link.get("addr_info", []) if a.get("scope") == "global"]


# ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.3.1", "1.0.0"])
def test_seed_config_add_command_check_del(node, dirs, probes, version):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, version))
    name = probes.new()
    args = dirs.args(name=name)

    res = run_on_node(M, dict(args, command=PING_GATEWAY), node)
    assert not res["failed"], res
    assert res["changed"] and res["netns_created"] and res["netns"] == "/var/run/netns/" + name
    assert res["rc"] == 0 and "1 received" in res["stdout"]
    assert res["result"]["cniVersion"] == version and res["result"]["ips"][0]["address"] == "10.13.3.8/22"
    assert res["config"]["file"].endswith("/cni.conf") and res["config"]["name"] == "mynet" and "first" in res["config"]["rule"]
    [add] = res["trace"]
    assert add["command"] == "ADD" and add["exit_code"] == 0 and add["path"].endswith("/nodenet-bridge") and add["error"] == ""
    assert add["env"]["CNI_CONTAINERID"] == name and add["env"]["CNI_NETNS"] == "/var/run/netns/" + name and add["env"]["CNI_IFNAME"] == "eth0"
    assert json.loads(add["stdin"])["name"] == "mynet" and json.loads(add["stdout"])["ips"] and add["duration_ms"] > 0
    assert netns_exists(name) and addresses_in(name) == ["10.13.3.8/22"]
    assert cache_files(dirs.cache_dir) == ["mynet-%s-eth0" % name] and leases(dirs.data_dir, "mynet") == ["10.13.3.8"]

    again = run_on_node(M, args, node)
    assert not again["changed"] and again["trace"] == [] and again["result"] == res["result"]

    checked = run_on_node(M, dict(args, state="checked"), node)
    if version == "0.3.1":  # libcni: CHECK needs 0.4.0+, and says so without exec'ing anything
        assert checked["failed"] and 'configuration version "0.3.1" does not support the CHECK command' in checked["msg"]
        assert checked["trace"] == []
    else:
        assert not checked["failed"] and not checked["changed"], checked
        assert [r["command"] for r in checked["trace"]] == ["CHECK"] and checked["trace"][0]["exit_code"] == 0
        assert json.loads(checked["trace"][0]["stdin"])["prevResult"]["ips"][0]["address"] == "10.13.3.8/22"

    gone = run_on_node(M, dict(args, state="absent"), node, diff=True)
    assert gone["changed"] and [r["command"] for r in gone["trace"]] == ["DEL"] and gone["trace"][0]["exit_code"] == 0
    assert '"10.13.3.8/22"' in gone["_stdout"]  # the diff's before
    assert not netns_exists(name) and cache_files(dirs.cache_dir) == [] and leases(dirs.data_dir, "mynet") == []
    assert not os.listdir(os.path.join(dirs.cache_dir, "nodenet-attach"))

    again = run_on_node(M, dict(args, state="absent"), node)
    assert not again["failed"] and not again["changed"] and again["trace"] == []


def test_check_mode_execs_nothing_and_predicts(node, dirs, probes, tmp_path, cni_bin):
    bin_dir, log = logged_bin(tmp_path, cni_bin)
    dirs.bin_dirs = [bin_dir, cni_bin]  # the logged plugins win; cni_bin lends the module its runtime
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    args = dirs.args(name=name, command="ip addr")

    res = run_on_node(M, args, node, check=True, diff=True)
    assert not res["failed"] and res["changed"] and res["trace"] == [] and res["result"] is None and "rc" not in res
    assert any("create network namespace" in a for a in res["actions"]) and any(a.startswith("ADD ") for a in res["actions"])
    assert execs(log) == [] and not netns_exists(name) and cache_files(dirs.cache_dir) == [] and leases(dirs.data_dir, "mynet") == []
    assert '"network": "mynet"' in res["_stdout"]  # the predicted after in the diff

    assert run_on_node(M, args, node)["changed"]
    assert execs(log) == ["nodenet-bridge ADD", "nodenet-host-local ADD"]
    for state, changed in (("present", False), ("checked", False), ("absent", True)):
        res = run_on_node(M, dict(args, state=state) if state != "absent" else dirs.args(name=name, state=state), node, check=True)
        assert not res["failed"] and res["changed"] is changed and res["trace"] == [], (state, res)
    assert execs(log) == ["nodenet-bridge ADD", "nodenet-host-local ADD"], "check mode exec'd a plugin"
    assert netns_exists(name) and cache_files(dirs.cache_dir) and leases(dirs.data_dir, "mynet")
    run_on_node(M, dirs.args(name=name, state="absent"), node)
    assert not netns_exists(name) and leases(dirs.data_dir, "mynet") == []


def test_exhausted_range_fails_in_the_trace_and_leaves_nothing(node, dirs, probes):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0", rangeStart="10.13.3.8", rangeEnd="10.13.3.8"))
    first, second = probes.new(), probes.new()
    assert run_on_node(M, dirs.args(name=first), node)["changed"]

    res = run_on_node(M, dirs.args(name=second), node)
    assert res["failed"] and 'plugin type="nodenet-bridge" name="mynet" failed (add)' in res["msg"]
    assert [r["command"] for r in res["trace"]] == ["ADD", "DEL"], "the failed ADD, then the DEL that undoes it"
    assert res["trace"][0]["exit_code"] != 0 and res["trace"][0]["error"] and res["trace"][0]["env"]["CNI_CONTAINERID"] == second
    assert res["cleanup"] == {"del": "ok", "cache_removed": False, "netns_removed": True}
    assert not netns_exists(second) and cache_files(dirs.cache_dir) == ["mynet-%s-eth0" % first]
    assert leases(dirs.data_dir, "mynet") == ["10.13.3.8"]  # the first probe's only
    run_on_node(M, dirs.args(name=first, state="absent"), node)
    assert leases(dirs.data_dir, "mynet") == [] and cache_files(dirs.cache_dir) == []


def test_failing_plugin_in_a_chain_is_undone_in_reverse(node, dirs, probes, tmp_path, cni_bin):
    extra = tmp_path / "extra-bin"
    extra.mkdir()
    failing_plugin(str(extra))
    dirs.bin_dirs = [cni_bin, str(extra)]
    conf = conflist("chainnet", dirs.data_dir, "10.14.0.0/24", bridge="cni1", then=[{"type": "failer"}])
    dirs.write("10-chain.conflist", conf)
    name = probes.new()
    res = run_on_node(M, dirs.args(name=name, command="true"), node)
    assert res["failed"] and "failer refuses ADD; on purpose" in res["msg"] and 'type="failer"' in res["msg"]
    steps = [(os.path.basename(r["path"]), r["command"]) for r in res["trace"]]
    assert steps == [("nodenet-bridge", "ADD"), ("failer", "ADD"), ("failer", "DEL"), ("nodenet-bridge", "DEL")]
    failed = res["trace"][1]
    assert failed["exit_code"] == 1 and "failer: stderr line" in failed["stderr"] and json.loads(failed["stdout"])["code"] == 999
    assert json.loads(failed["stdin"])["prevResult"]["ips"][0]["address"].startswith("10.14.0.")
    assert "rc" not in res, "the command must not run after a failed ADD"
    assert not netns_exists(name) and cache_files(dirs.cache_dir) == [] and leases(dirs.data_dir, "chainnet") == []


def test_del_of_an_unknown_name_is_ok_and_unchanged(node, dirs, probes):
    dirs.write("cni.conf", seed_conf(dirs.data_dir))
    res = run_on_node(M, dirs.args(name=probes.new(), state="absent"), node)
    assert not res["failed"] and not res["changed"] and res["trace"] == []


def test_reattaches_when_the_config_changes_or_the_netns_is_gone(node, dirs, probes):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    first = run_on_node(M, dirs.args(name=name), node)
    assert first["result"]["ips"][0]["address"] == "10.13.3.8/22"

    # reformatting alone is not a change
    dirs.write("cni.conf", json.dumps(seed_conf(dirs.data_dir, "1.0.0")))
    assert not run_on_node(M, dirs.args(name=name), node)["changed"]

    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0", rangeStart="10.13.3.100"))
    res = run_on_node(M, dirs.args(name=name), node, diff=True)
    assert res["changed"] and any("config changed" in n for n in res["notes"])
    assert [r["command"] for r in res["trace"]] == ["DEL", "ADD"]
    assert res["result"]["ips"][0]["address"] == "10.13.3.100/22" and leases(dirs.data_dir, "mynet") == ["10.13.3.100"]
    assert '-                "10.13.3.8/22"' in res["_stdout"] and '+                "10.13.3.100/22"' in res["_stdout"]

    import subprocess

    subprocess.run(["ip", "netns", "delete", name], check=True)  # the pod's netns vanished without DEL
    res = run_on_node(M, dirs.args(name=name), node)
    assert res["changed"] and any("is gone" in n for n in res["notes"]) and netns_exists(name)
    assert leases(dirs.data_dir, "mynet") == [res["result"]["ips"][0]["address"].split("/")[0]]
    run_on_node(M, dirs.args(name=name, state="absent"), node)
    assert leases(dirs.data_dir, "mynet") == [] and not netns_exists(name)


def test_given_netns_is_used_and_never_deleted(node, dirs, netns_factory):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    pod = netns_factory("pod")
    res = run_on_node(M, dirs.args(name="given-" + pod.name, netns=pod.path, command="ip -o addr show dev eth0"), node)
    assert res["changed"] and not res["netns_created"] and "10.13.3.8/22" in res["stdout"]
    res = run_on_node(M, dirs.args(name="given-" + pod.name, state="absent"), node)
    assert res["changed"] and pod.exists() and addresses_in(pod.name) is None
    assert cache_files(dirs.cache_dir) == [] and leases(dirs.data_dir, "mynet") == []


def test_a_namespace_it_did_not_make_is_not_adopted(node, dirs, probes):
    import subprocess

    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    subprocess.run(["ip", "netns", "add", name], check=True)
    res = run_on_node(M, dirs.args(name=name), node)
    assert res["failed"] and res["msg"].startswith("name: ") and "netns=/var/run/netns/%s" % name in res["msg"]
    assert netns_exists(name) and cache_files(dirs.cache_dir) == []
    assert not run_on_node(M, dirs.args(name=name, state="absent"), node)["changed"]
    assert netns_exists(name), "absent must not delete a namespace cni_attach did not make"


def test_failing_command_fails_the_task_and_keeps_the_attachment(node, dirs, probes):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    res = run_on_node(M, dirs.args(name=name, command="sh -c 'echo out; echo err >&2; exit 3'"), node)
    assert res["failed"] and res["rc"] == 3 and res["stdout"] == "out\n" and res["stderr"] == "err\n" and "rc 3" in res["msg"]
    assert netns_exists(name) and cache_files(dirs.cache_dir)
    res = run_on_node(M, dirs.args(name=name, command="sleep 30", command_timeout=1), node)
    assert res["failed"] and "command_timeout" in res["msg"] and not res["changed"]
    res = run_on_node(M, dirs.args(name=name, command="ls /sys/class/net"), node)
    assert sorted(res["stdout"].split()) == ["eth0", "lo"], "the command sees the probe's /sys"
    run_on_node(M, dirs.args(name=name, state="absent"), node)
    assert not netns_exists(name)


def test_go_reference_plugins_through_cni_attach(node, dirs, probes, go_bin, cni_bin):
    dirs.bin_dirs = [go_bin, cni_bin]  # Go's plugins win; cni_bin lends the module pyroute2/netaddr
    conf = conflist("gonet", dirs.data_dir, "10.78.0.0/24", bridge="gobr0", bridge_type="bridge", ipam_type="host-local", then=[{"type": "loopback"}])
    dirs.write("10-gonet.conflist", conf)
    name = probes.new()
    args = dirs.args(name=name, cni_args={"IgnoreUnknown": "1"})
    res = run_on_node(M, dict(args, command="ping -c 1 -W 3 10.78.0.1"), node)
    assert not res["failed"], res.get("msg")
    assert res["rc"] == 0 and res["result"]["ips"][0]["address"] == "10.78.0.2/24"
    assert [(os.path.basename(r["path"]), r["command"]) for r in res["trace"]] == [("bridge", "ADD"), ("loopback", "ADD")]
    assert res["trace"][0]["env"]["CNI_ARGS"] == "IgnoreUnknown=1"
    res = run_on_node(M, dict(args, state="checked"), node)
    assert not res["failed"] and [r["command"] for r in res["trace"]] == ["CHECK", "CHECK"], res.get("msg")
    res = run_on_node(M, dirs.args(name=name, state="absent"), node)
    assert [(os.path.basename(r["path"]), r["command"]) for r in res["trace"]] == [("loopback", "DEL"), ("bridge", "DEL")]
    assert res["trace"][1]["env"]["CNI_ARGS"] == "IgnoreUnknown=1", "DEL replays the cached CNI_ARGS"
    assert not netns_exists(name) and cache_files(dirs.cache_dir) == [] and leases(dirs.data_dir, "gonet") == []


def test_seed_config_fails_on_go_plugins_as_the_seed_says_and_leaves_nothing(node, dirs, probes, go_bin, cni_bin):
    dirs.bin_dirs = [go_bin, cni_bin]  # Go's plugins win; cni_bin lends the module pyroute2/netaddr
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "0.3.1", bridge="bridge", ipam="host-local"))
    name = probes.new()
    res = run_on_node(M, dirs.args(name=name), node)
    assert res["failed"] and "file exists" in res["msg"]
    assert [r["command"] for r in res["trace"]] == ["ADD", "DEL"]
    assert not netns_exists(name) and cache_files(dirs.cache_dir) == [] and leases(dirs.data_dir, "mynet") == []


def test_short_name_through_a_library_symlink(node, dirs, probes, tmp_path):
    """`ansible node1 -m cni_attach` from the repository root (ansible.cfg: library = ./library)."""
    from ansiblerun import ROOT

    library = os.path.join(ROOT, "library")
    if not os.path.exists(os.path.join(library, "cni_attach.py")):
        library = str(tmp_path / "library")
        os.mkdir(library)
        os.symlink(os.path.join(ROOT, "plugins", "modules", "cni_attach.py"), os.path.join(library, "cni_attach.py"))
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    res = run_on_node("cni_attach", dirs.args(name=name, command="ip -o addr show dev eth0"), node, env={"ANSIBLE_LIBRARY": library})
    assert not res["failed"], res
    assert "10.13.3.8/22" in res["stdout"]
    assert run_on_node("cni_attach", dirs.args(name=name, state="absent"), node, env={"ANSIBLE_LIBRARY": library})["changed"]


@pytest.mark.parametrize(
    "override, option",
    [
        ({"name": "bad name"}, "name"),
        ({"name": "-leading-dash"}, "name"),
        ({"ifname": "a-very-long-ifname0"}, "ifname"),
        ({"ifname": "eth/0"}, "ifname"),
        ({"netns": "relative/ns"}, "netns"),
        ({"netns": "/nonexistent/netns"}, "netns"),
        ({"network": "nosuchnet"}, "network"),
        ({"network": "bad name"}, "network"),
        ({"conf_dir": "/nonexistent/net.d"}, "conf_dir"),
        ({"bin_dir": ["/nonexistent/bin"]}, "bin_dir"),
        ({"state": "gone"}, "state"),
        ({"cni_args": {"A;B": "1"}}, "cni_args"),
        ({"cni_args": {"K8S_POD_NAME": "a=b"}}, "cni_args"),
        ({"capability_args": "portMappings"}, "capability_args"),
        ({"command": "echo 'unterminated"}, "command"),
        ({"command": "true", "command_timeout": 0}, "command_timeout"),
        ({"command": "true", "state": "absent"}, "command"),
        ({"state": "checked"}, "name"),
        ({"unknown_option": 1}, "unknown_option"),
    ],
)
def test_bad_option_fails_naming_it_and_changes_nothing(node, dirs, probes, override, option):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    args = dirs.args(name=name)
    args.update(override)
    res = run_on_node(M, args, node)
    assert res["failed"], res
    assert option in res["msg"], res["msg"]
    assert not res.get("changed")
    assert not netns_exists(name) and cache_files(dirs.cache_dir) == [] and leases(dirs.data_dir, "mynet") == []


def test_cache_entry_is_libcni_format_and_del_replays_its_args(node, dirs, probes):
    """Another runtime (cnitool, containerd) reads what we cached; DEL uses the cached arguments."""
    import base64

    conf = conflist("pmnet", dirs.data_dir, "10.15.0.0/24", bridge="cni2", then=[{"type": "nodenet-portmap", "capabilities": {"portMappings": True}}])
    dirs.write("10-pm.conflist", conf)
    name = probes.new()
    caps = {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}
    res = run_on_node(M, dirs.args(name=name, cni_args={"IgnoreUnknown": "1"}, capability_args=caps), node)
    assert not res["failed"], res.get("msg")
    assert json.loads(res["trace"][1]["stdin"])["runtimeConfig"] == caps and "runtimeConfig" not in json.loads(res["trace"][0]["stdin"])
    path = res["cache_file"]
    assert path == os.path.join(dirs.cache_dir, "results", "pmnet-%s-eth0" % name)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    entry = json.load(open(path))
    assert entry["kind"] == "cniCacheV1" and entry["containerId"] == name and entry["ifName"] == "eth0" and entry["networkName"] == "pmnet"
    assert entry["netns"] == "/var/run/netns/" + name and entry["cniArgs"] == [["IgnoreUnknown", "1"]] and entry["capabilityArgs"] == caps
    assert json.loads(base64.b64decode(entry["config"])) == conf
    assert entry["result"] == res["result"]
    # changed capability args are a different attachment: DEL the old, ADD the new
    res = run_on_node(M, dirs.args(name=name, cni_args={"IgnoreUnknown": "1"}), node)
    assert res["changed"] and any("capability_args differ" in n for n in res["notes"])
    assert json.loads(res["trace"][0]["stdin"])["runtimeConfig"] == caps, "DEL replays the cached capability args"
    res = run_on_node(M, dirs.args(name=name, state="absent"), node)
    assert [(os.path.basename(r["path"]), r["command"]) for r in res["trace"]] == [("nodenet-portmap", "DEL"), ("nodenet-bridge", "DEL")]
    assert cache_files(dirs.cache_dir) == [] and leases(dirs.data_dir, "pmnet") == []


def test_probe_lo_is_up_like_a_containerd_pod(node, dirs, probes):
    # containerd attaches its own cni-loopback network: a pod's lo is up and answers
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    res = run_on_node(M, dirs.args(name=name, command="ping -c 1 -W 2 127.0.0.1"), node)
    assert not res.get("failed"), res.get("msg")
    res = run_on_node(M, dirs.args(name=name, command="cat /sys/class/net/lo/flags"), node)
    assert int(res["stdout"].strip(), 16) & 1, "lo is down in the probe"
    run_on_node(M, dirs.args(name=name, state="absent"), node)
    assert not netns_exists(name)

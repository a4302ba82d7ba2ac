# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 10, reproduced the way it was found: the installed plugins exec'd
like a runtime inside throwaway namespaces, hostile values on stdin/env.

Every namespace is made here with a unique prefix and deleted by name.
"""

import json
import os

import pytest
from cnitest import exec_plugin

INJECTED = "\nCOMMIT\n*filter\n-I INPUT 1 -m comment --comment INJECTED -j ACCEPT\nCOMMIT\n*nat\n-A CNI-HOSTPORT-DNAT -d ::1"


def _filter_rules(ns):
    out = ""
    for tool in ("iptables-save", "ip6tables-save"):
        proc = ns.run([tool, "-t", "filter"], check=False)
        out += proc.stdout.decode()
    return out


def _portmap(name, prev, mappings, **extra):
    conf = {"cniVersion": "1.0.0", "name": name, "type": "nodenet-portmap", "prevResult": prev,
            "runtimeConfig": {"portMappings": mappings}}
    conf.update(extra)
    return conf


@pytest.mark.parametrize(
    "where",
    ["hostIP", "prevResult"],
)
def test_portmap_zone_id_cannot_inject_into_ip6tables_restore(where, cni_bin, host_ns, netns_factory):
    pod = netns_factory("pod")
    hostile = "fe80::1%lo" + INJECTED
    mapping = {"hostPort": 8080, "containerPort": 80}
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "fd00::5/64"}]}
    if where == "hostIP":
        mapping["hostIP"] = hostile
    else:
        prev["ips"][0]["address"] = "fd00::5%lo" + INJECTED + "/64"
    conf = _portmap("pmh", prev, [mapping], externalSetMarkChain="KUBE-MARK-MASQ")
    run = exec_plugin(os.path.join(cni_bin, "nodenet-portmap"), "ADD", conf, host=host_ns, netns=pod.path, container_id="c1")
    assert run.rc != 0
    err = json.loads(run.stdout)
    # 6: a prevResult address that does not parse is a decode error (config.result); 7: a bad hostIP
    assert err["code"] in (6, 7, 999) and "Traceback" not in run.stderr
    assert "INJECTED" not in _filter_rules(host_ns), "a line of the hostIP reached ip6tables-restore as a command"
    nat = host_ns.run(["ip6tables-save", "-t", "nat"], check=False).stdout.decode()
    assert "CNI-DN-" not in nat, "a failed ADD leaves nothing behind"


def test_reset_removes_exactly_the_networks_cache_files(tmp_path):
    """Item 14: reset of network "podnet" must keep the cache files of "podnet-b"."""
    import subprocess
    import sys

    from ansiblerun import ROOT, ansible_env

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import cache

    cache_dir = tmp_path / "cache"
    mine = cache.write_entry(str(cache_dir), cache.CacheEntry(container_id="c1", network_name="podnet", ifname="eth0", config=b"{}"))
    other = cache.write_entry(str(cache_dir), cache.CacheEntry(container_id="c2", network_name="podnet-b", ifname="eth0", config=b"{}"))
    playbook = tmp_path / "reset_cache.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role:\n        name: nodenet.cni.cni_node\n        tasks_from: reset_cache.yml\n"
    )
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook), "-c", "local",
            "-e", json.dumps({"cni_node_cache_dir": str(cache_dir), "cni_node_network_name": "podnet"})]
    proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not os.path.exists(mine)
    assert os.path.exists(other), "the glob podnet-* took another network's attachment"


@pytest.mark.parametrize("command", ["ADD", "DEL"])
@pytest.mark.parametrize("own_type,ipam_type", [("nodenet-bridge", "nodenet-bridge"), ("bridge", "nodenet-bridge")])
def test_ipam_type_leading_back_to_the_plugin_is_refused(command, own_type, ipam_type, cni_bin, host_ns, netns_factory, tmp_path):
    """Item 7: ipam.type naming the plugin itself (or itself under another name) must
    end with an error, not recurse without bound (59 processes after 4 s before)."""
    pod = netns_factory("pod")
    conf = {"cniVersion": "1.0.0", "name": "selfnet", "type": own_type, "bridge": "br-self",
            "ipam": {"type": ipam_type, "dataDir": str(tmp_path / "data")}}
    run = exec_plugin(os.path.join(cni_bin, own_type), command, conf, host=host_ns, netns=pod.path, container_id="c1", timeout=60)
    assert run.rc != 0, run
    err = json.loads(run.stdout)
    if own_type == ipam_type or command == "DEL":
        assert err["code"] == 7 and "ipam.type" in err["msg"], err
    # (ADD under another name stops by itself: the nested ADD finds eth0 taken)
    if command == "ADD":
        links = host_ns.run(["ip", "-o", "link", "show"]).stdout.decode()
        assert "veth" not in links, "a refused ADD leaves no veth behind (the bridge stays, as in Go)"


def test_host_local_refuses_a_symlinked_network_dir(cni_bin, host_ns, netns_factory, tmp_path):
    """Item 5 through the exec path: no lease or lock written through the symlink."""
    pod = netns_factory("pod")
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    (data / "symnet").symlink_to(elsewhere)
    conf = {"cniVersion": "1.0.0", "name": "symnet", "type": "nodenet-host-local",
            "ipam": {"type": "nodenet-host-local", "dataDir": str(data), "ranges": [[{"subnet": "10.78.0.0/24"}]]}}
    run = exec_plugin(os.path.join(cni_bin, "nodenet-host-local"), "ADD", conf, host=host_ns, netns=pod.path, container_id="c1")
    assert run.rc != 0 and "symbolic link" in json.loads(run.stdout)["msg"]
    assert os.listdir(elsewhere) == []


def test_shared_rule_changes_wait_for_the_rules_lock(cni_bin, host_ns, netns_factory):
    """Item 11: the read-then-write of the shared jump rules happens under one lock:
    a portmap ADD waits while another holder has it, then completes."""
    import fcntl
    import subprocess
    import time

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.net import nftcmd

    pod = netns_factory("pod")
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.79.0.5/24"}]}
    conf = _portmap("pmlock", prev, [{"hostPort": 8081, "containerPort": 80}], backend="nftables")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": pod.path,
           "CNI_IFNAME": "eth0", "CNI_PATH": cni_bin}
    fd = os.open(nftcmd.RULES_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    proc = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = subprocess.Popen(["ip", "netns", "exec", host_ns.name, os.path.join(cni_bin, "nodenet-portmap")], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdin.write(json.dumps(conf).encode())
        proc.stdin.close()
        time.sleep(1.5)
        assert proc.poll() is None, "portmap changed the shared rules without the lock: %r" % (proc.stdout.read(),)
    finally:
        os.close(fd)
    proc.wait(timeout=60)
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 0, (out, err)
    ruleset = host_ns.run(["nft", "list", "table", "ip", "cni_hostport"]).stdout.decode()
    assert ruleset.count("jump hostports_all") == 2  # prerouting + output, once each


# -- the installed runtime (items 2 and 3) -------------------------------------

NODE_PYTHON = "/usr/bin/python3"


def _installer():
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

    return installer


def _install(bin_dir, extra=None):
    """Install from this checkout; `extra` files make a different bundle (an upgrade)."""
    installer = _installer()
    names = installer.plugin_names(list(installer.PLUGINS), installer.DEFAULT_PREFIX, reference_names=False)
    files = installer.collect_sources()
    files.update(extra or {})
    digest = installer.bundle_digest(files)
    lib_dir = installer.default_lib_dir(str(bin_dir))
    installer.apply_state(str(bin_dir), lib_dir, names, digest, files, NODE_PYTHON)
    return installer.runtime_dir_for(lib_dir, digest), names, lib_dir


def test_runtime_modes_do_not_follow_the_umask(tmp_path):
    """Item 3: with umask 0 the runtime was 0777 dirs / 0666 files; now 0755 / 0644, root-owned."""
    old = os.umask(0)
    try:
        rdir, _names, _lib = _install(tmp_path / "bin")
    finally:
        os.umask(old)
    bad = []
    for dirpath, _dirs, files in os.walk(rdir):
        for path in [dirpath] + [os.path.join(dirpath, f) for f in files]:
            st = os.lstat(path)
            want = 0o755 if os.path.isdir(path) else 0o644
            if st.st_mode & 0o7777 != want or st.st_uid != 0:
                bad.append("%s %04o uid %d" % (path, st.st_mode & 0o7777, st.st_uid))
    assert bad == [], bad[:5]


def test_a_modified_runtime_file_is_detected_and_repaired_with_changed(tmp_path):
    """Item 3: a modified skel.py survived a reinstall with changed: false."""
    from ansiblerun import run_module

    bin_dir = tmp_path / "bin"
    first = run_module("nodenet.cni.cni_plugin", {"bin_dir": str(bin_dir), "plugins": ["loopback"]})
    assert not first["failed"], first
    lib_dir = first["lib_dir"]
    rdir = os.path.join(lib_dir, os.listdir(lib_dir)[0])
    skel = os.path.join(rdir, "nodenet_cni", "skel.py")
    pristine = open(skel, "rb").read()
    with open(skel, "ab") as f:
        f.write(b"\nraise SystemExit('tampered')\n")
    again = run_module("nodenet.cni.cni_plugin", {"bin_dir": str(bin_dir), "plugins": ["loopback"]})
    assert not again["failed"], again
    assert again["changed"], "a modified runtime must be repaired and reported"
    assert open(skel, "rb").read() == pristine
    assert not run_module("nodenet.cni.cni_plugin", {"bin_dir": str(bin_dir), "plugins": ["loopback"]})["changed"]


def test_a_lib_dir_others_can_write_is_refused(tmp_path):
    """Item 3: code root runs must not live where another user can swap it."""
    from ansiblerun import run_module

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # world-writable, no sticky bit
    out = run_module("nodenet.cni.cni_plugin", {"bin_dir": str(tmp_path / "bin"), "lib_dir": str(shared / "lib"), "plugins": ["loopback"]})
    assert out["failed"] and "world-writable" in out["msg"], out
    assert not os.path.exists(shared / "lib" / "MANIFEST.json")
    assert not any((shared / "lib").glob("*/MANIFEST.json")) if (shared / "lib").exists() else True


def test_an_upgrade_keeps_the_runtime_a_running_plugin_uses(tmp_path, host_ns, netns_factory):
    """Item 2, as found: a bridge ADD waiting on the host-local lock during an
    upgrade failed with "No module named 'netaddr'" when its runtime was deleted."""
    import fcntl
    import subprocess
    import time

    pod = netns_factory("pod")
    bin_dir = tmp_path / "bin"
    old_rdir, _names, lib_dir = _install(bin_dir)
    data = tmp_path / "data"
    (data / "upnet").mkdir(parents=True)
    lock_fd = os.open(str(data / "upnet" / "lock"), os.O_RDONLY | os.O_CREAT, 0o750)
    conf = {"cniVersion": "1.0.0", "name": "upnet", "type": "nodenet-bridge", "bridge": "br-up", "isGateway": True,
            "ipam": {"type": "nodenet-host-local", "dataDir": str(data), "ranges": [[{"subnet": "10.80.0.0/24"}]]}}
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": pod.path,
           "CNI_IFNAME": "eth0", "CNI_PATH": str(bin_dir)}
    proc = None
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # host-local will wait here
        proc = subprocess.Popen(["ip", "netns", "exec", host_ns.name, str(bin_dir / "nodenet-bridge")], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdin.write(json.dumps(conf).encode())
        proc.stdin.close()
        time.sleep(1.5)  # the bridge is running from the old runtime and waits for its IPAM
        new_rdir, _names, _lib = _install(bin_dir, extra={"nodenet_cni/_upgrade_test.py": b"# a different bundle\n"})
        assert new_rdir != old_rdir
        assert os.path.isdir(old_rdir), "the upgrade deleted the runtime of a running plugin"
    finally:
        os.close(lock_fd)
    proc.wait(timeout=120)
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 0, (out, err)
    # once nothing uses it, the next run removes it; the reported state never listed it
    _install(bin_dir, extra={"nodenet_cni/_upgrade_test.py": b"# a different bundle\n"})
    assert not os.path.exists(old_rdir)
    assert sorted(e for e in os.listdir(lib_dir) if not e.startswith(".")) == [os.path.basename(new_rdir)]
    exec_plugin(str(bin_dir / "nodenet-bridge"), "DEL", conf, host=host_ns, netns=pod.path, container_id="c1").ok()

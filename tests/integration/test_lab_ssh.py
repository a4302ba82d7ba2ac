# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's ssh flavour: nodes reached over real SSH, as a non-root user with become.

What a user's first run against real nodes does: the ssh connection (with and
without pipelining), sudo from a login user whose umask is 077, interpreter
discovery on the node's own python3, the plugin bundle transferred by the
cni_plugin action plugin into a become temp dir. And what the lab promises:
this machine's accounts are untouched, host keys are pinned, and lab_down
leaves no sshd, key or file behind.

Safety: the lab gets a unique name (nnts<hex>); every namespace, mount,
directory and process it makes carries that prefix or lives in its
namespaces; lab_down removes them in the fixture finalizer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
import subprocess
import time
from typing import Dict, List, Optional

import pytest
import yaml
from ansiblerun import ansible_env
from labrun import ad_hoc, lab_leftovers, lab_playbook, lab_up_down, run_connection_play

LAB_NAME = "nnts%s" % secrets.token_hex(2)
STATE_DIR = "/run/nodenet-lab/" + LAB_NAME
SSH_DIR = STATE_DIR + "/ssh"
NODES = ["%s-node1" % LAB_NAME, "%s-node2" % LAB_NAME]
USER = "nnadmin"
HOST_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hosts")


def ssh_env(**extra: str) -> Dict[str, str]:
    """Ansible's environment for SSH nodes: no interpreter pinned, so discovery runs on the node."""
    env = ansible_env()
    del env["ANSIBLE_PYTHON_INTERPRETER"]
    env.pop("ANSIBLE_HOST_KEY_CHECKING", None)
    env.update(extra)
    return env


def playbook(name: str, inventory_path: str, *extra: str) -> Dict[str, int]:
    """playbooks/<name>.yml for our lab (ssh flavour); the recap counts for localhost."""
    return lab_playbook(name, LAB_NAME, inventory_path, "-e", "lab_connection=ssh", *extra)


def on_nodes(inventory_path: str, pattern: str, module: str, args: str, *extra: str, env: Optional[Dict[str, str]] = None) -> Dict[str, dict]:
    """One module ad hoc over SSH; each host's result."""
    return ad_hoc(inventory_path, pattern, module, args, *extra, env=env or ssh_env(), timeout=300)


def host_file_identity() -> Dict[str, List]:
    """Content digest and inode of this machine's account files, as the root mount namespace sees them."""
    out = {}
    for path in HOST_FILES:
        st = os.stat(path)
        with open(path, "rb") as f:
            out[path] = [hashlib.sha256(f.read()).hexdigest(), st.st_ino, stat.S_IMODE(st.st_mode)]
    return out


def net_inode(pid: int) -> Optional[int]:
    try:
        return int(re.search(r"\[(\d+)\]", os.readlink("/proc/%d/ns/net" % pid)).group(1))
    except (OSError, AttributeError):
        return None


def lab_processes(netns_inodes: set) -> List[str]:
    """Processes that belong to the lab: in one of its nodes' network namespaces, or naming its state dir."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline and (STATE_DIR in cmdline or "/run/netns/%s-" % LAB_NAME in cmdline or net_inode(int(entry)) in netns_inodes):
            found.append("%s %s" % (entry, cmdline))
    return found


def leftovers(netns_inodes: set) -> List[str]:
    return lab_processes(netns_inodes) + lab_leftovers(LAB_NAME, STATE_DIR)


def sshd_pid(node: str) -> int:
    with open(os.path.join(STATE_DIR, node, "ssh", "sshd.pid")) as f:
        return int(f.read())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inventory_path = str(tmp_path_factory.mktemp("labssh") / "lab.yml")
    host_before = host_file_identity()
    with lab_up_down(playbook, inventory_path) as first:
        netns_inodes = {os.stat("/run/netns/" + node).st_ino for node in NODES}
        yield {"inventory": inventory_path, "first_up": first, "host_before": host_before, "netns_inodes": netns_inodes}


def test_lab_up_is_idempotent(lab):
    assert lab["first_up"]["changed"] > 0
    assert playbook("lab_up", lab["inventory"], "-e", "lab_node_count=2")["changed"] == 0


def test_inventory_is_an_ssh_inventory_with_become_and_pinned_host_keys(lab):
    with open(lab["inventory"]) as f:
        group = yaml.safe_load(f)["all"]["children"]["k8s_nodes"]
    gvars = group["vars"]
    assert gvars["ansible_connection"] == "ssh" and gvars["ansible_user"] == USER and gvars["ansible_become"] is True
    assert "ansible_python_interpreter" not in gvars and not any("ansible_python_interpreter" in h for h in group["hosts"].values())
    key = gvars["ansible_ssh_private_key_file"]
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and key.startswith(SSH_DIR + "/")
    assert stat.S_IMODE(os.stat(SSH_DIR).st_mode) == 0o700
    with open(SSH_DIR + "/known_hosts") as f:
        pinned = {line.split()[0]: " ".join(line.split()[1:3]) for line in f if line.strip() and not line.startswith("#")}
    for node in NODES:
        with open(os.path.join(STATE_DIR, node, "ssh", "ssh_host_ed25519_key.pub")) as f:
            assert pinned[node] == " ".join(f.read().split()[:2])
        args = group["hosts"][node]["ansible_ssh_common_args"]
        assert 'ProxyCommand="nsenter --net=/run/netns/%s socat - TCP:127.0.0.1:22"' % node in args
        assert "StrictHostKeyChecking=yes" in args and "UserKnownHostsFile=%s/known_hosts" % SSH_DIR in args


def test_login_user_is_not_root_and_become_gives_root_on_the_nodes_python(lab):
    login = on_nodes(lab["inventory"], "k8s_nodes", "ansible.builtin.command", "id -un", "-e", "ansible_become=false")
    assert {h: r["stdout"] for h, r in login.items()} == {node: USER for node in NODES}
    become = on_nodes(lab["inventory"], "k8s_nodes", "ansible.builtin.setup", "filter=ansible_user_id,ansible_hostname,ansible_python")
    for node in NODES:
        facts = become[node]["ansible_facts"]
        assert facts["ansible_user_id"] == "root" and facts["ansible_hostname"] == node, facts
        # discovered, not pinned (the inventory names none): the module ran on the node's own system
        # python (a stock node's, no pyroute2/netaddr). Asked of the module itself, because with the
        # fact cache of ansible.cfg a later run reuses the discovery and reports no discovered_* fact.
        assert os.path.realpath(facts["ansible_python"]["executable"]) == os.path.realpath("/usr/bin/python3"), facts
    umask = on_nodes(lab["inventory"], NODES[0], "ansible.builtin.shell", "umask", "-e", "ansible_become=false")
    assert umask[NODES[0]]["stdout"] == "0077"


def test_sshd_runs_inside_the_node_and_this_machines_accounts_are_untouched(lab):
    for node in NODES:
        pid = sshd_pid(node)
        for kind, path in (("net", "/run/netns/" + node), ("mnt", os.path.join(STATE_DIR, node, "mnt")), ("uts", os.path.join(STATE_DIR, node, "uts"))):
            assert os.readlink("/proc/%d/ns/%s" % (pid, kind)) == "%s:[%d]" % (kind, os.stat(path).st_ino)
    assert host_file_identity() == lab["host_before"]
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if line.split()[4] in HOST_FILES + ("/etc/sudoers.d", "/home")]
    assert subprocess.run(["getent", "passwd", USER], capture_output=True, check=False).returncode != 0


def test_a_host_key_that_is_not_the_pinned_one_is_refused(lab, tmp_path):
    wrong = tmp_path / "known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True, timeout=30)
    wrong.write_text("%s %s\n" % (NODES[0], " ".join((tmp_path / "other.pub").read_text().split()[:2])))
    with open(lab["inventory"]) as f:
        inventory = f.read().replace(SSH_DIR + "/known_hosts", str(wrong))
    (tmp_path / "lab.yml").write_text(inventory)
    # a connection of its own: an open control master would skip the key exchange
    result = on_nodes(str(tmp_path / "lab.yml"), NODES[0], "ansible.builtin.ping", "", "-e", "ansible_control_path_dir=%s/cp" % tmp_path)[NODES[0]]
    assert result.get("unreachable") and "REMOTE HOST IDENTIFICATION HAS CHANGED" in result["msg"], result


@pytest.mark.parametrize("pipelining", ["0", "1"])
def test_ssh_connection_runs_commands_and_moves_files_with_become(lab, tmp_path, pipelining):
    run_connection_play(lab["inventory"], NODES, tmp_path, ssh_env(ANSIBLE_PIPELINING=pipelining))


@pytest.mark.parametrize("pipelining", ["1", "0"])
def test_plugin_bundle_reaches_the_node_with_a_packages_modes_under_umask_077(lab, pipelining):
    node = NODES[0] if pipelining == "1" else NODES[1]
    env = ssh_env(ANSIBLE_PIPELINING=pipelining)
    first = on_nodes(lab["inventory"], node, "nodenet.cni.cni_plugin", "bin_dir=/opt/cni/bin plugins=loopback", env=env)[node]
    assert first.get("changed") and not first.get("failed"), first
    again = on_nodes(lab["inventory"], node, "nodenet.cni.cni_plugin", "bin_dir=/opt/cni/bin plugins=loopback", env=env)[node]
    assert again.get("changed") is False and not again.get("failed"), again
    modes = on_nodes(lab["inventory"], node, "ansible.builtin.command", "find /opt/cni/bin -printf '%m %y %p\\n'", env=env)[node]
    executable = ("nodenet-loopback", "nodenet-agent")
    wrong = [
        line for line in modes["stdout_lines"] if line.split()[0] != ("755" if line.split()[1] == "d" or line.endswith(executable) else "644")
    ]
    assert wrong == [], modes["stdout"]
    # a non-root user can ask the installed plugin its versions: the runtime is readable, like a package's
    version = on_nodes(lab["inventory"], node, "ansible.builtin.shell", "CNI_COMMAND=VERSION /opt/cni/bin/nodenet-loopback </dev/null",
                       "-e", "ansible_become=false", env=env)[node]
    assert version["rc"] == 0 and "1.1.0" in json.loads(version["stdout"])["supportedVersions"], version
    # the become temp dirs are gone: nothing of the transfer stays in the login user's home
    find_tmp = "paths=/home/%s/.ansible/tmp file_type=any" % USER
    tmp = on_nodes(lab["inventory"], node, "ansible.builtin.find", find_tmp, env=ssh_env(ANSIBLE_PIPELINING="1"))[node]
    assert tmp["matched"] == 0, tmp


def test_lab_up_restarts_a_dead_sshd_and_rebinds_a_remade_mount_namespace(lab):
    os.kill(sshd_pid(NODES[0]), 15)
    # node2's mount namespace is made again by lab_node: the account binds must follow, sshd too
    subprocess.run(["umount", os.path.join(STATE_DIR, NODES[1], "mnt")], check=True, timeout=30)
    assert playbook("lab_up", lab["inventory"], "-e", "lab_node_count=2")["changed"] >= 2
    results = on_nodes(lab["inventory"], "k8s_nodes", "ansible.builtin.command", "id -un")
    assert {h: r.get("stdout") for h, r in results.items()} == {node: "root" for node in NODES}, results
    assert playbook("lab_up", lab["inventory"], "-e", "lab_node_count=2")["changed"] == 0


def test_a_rebooted_node_answers_over_ssh_again_from_its_new_namespaces(lab):
    before = on_nodes(lab["inventory"], NODES[0], "ansible.builtin.command", "readlink /proc/self/ns/mnt")[NODES[0]]["stdout"]
    playbook("lab_reboot", lab["inventory"], "-e", json.dumps({"lab_reboot_nodes": [NODES[0]]}))
    # the boot started sshd again in the node's new namespaces; no control master still talks to the old ones
    after = on_nodes(lab["inventory"], NODES[0], "ansible.builtin.command", "readlink /proc/self/ns/mnt")[NODES[0]]
    current = "mnt:[%d]" % os.stat(os.path.join(STATE_DIR, NODES[0], "mnt")).st_ino
    assert current != before and after.get("rc") == 0 and after["stdout"] == current, (before, after)
    assert on_nodes(lab["inventory"], NODES[0], "ansible.builtin.command", "id -un")[NODES[0]]["stdout"] == "root"
    lab["netns_inodes"].add(os.stat("/run/netns/" + NODES[0]).st_ino)


def test_lab_down_leaves_no_sshd_key_or_file(lab):
    assert lab_processes(lab["netns_inodes"]), "the lab should have sshd processes before lab_down"
    first = playbook("lab_down", lab["inventory"])
    assert first["changed"] > 0
    # a control master notices its connection's end asynchronously, and on a busy machine a
    # process leaving the node's namespaces can take seconds: a bounded wait
    deadline = time.monotonic() + 30
    while lab_processes(lab["netns_inodes"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(lab["netns_inodes"]) == []
    assert not os.path.exists(lab["inventory"])
    assert host_file_identity() == lab["host_before"]
    again = playbook("lab_down", lab["inventory"])
    assert again["changed"] == 0 and again["failed"] == 0

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_node
short_description: One simulated Kubernetes node of the nodenet.cni lab, made of namespaces on the controller
version_added: "0.1.0"
description:
  - Ensures that a lab node exists, complete, or that nothing of it is left. Used by the C(nodenet.cni.lab) role;
    the M(nodenet.cni.lab_node) module runs on the machine that hosts the lab (a local connection), as root.
  - "A node is: a network namespace O(name) with C(lo) up, the O(sysctls), and an interface O(interface) holding the node's
    underlay address; the other end of that veth pair is O(underlay_port), a port of the bridge O(underlay_bridge) inside
    the namespace O(underlay_netns) (made on first use)."
  - "It is also a mount namespace and a UTS namespace, persisted as bind mounts on C(<state_dir>/mnt) and C(<state_dir>/uts)
    (no process keeps them alive). In the mount namespace each path of O(private_paths) is a bind mount of the node's own
    directory C(<state_dir>/root/<path>), C(/sys) is a sysfs mounted from inside the node's network namespace, and no
    namespace file of the host is mounted. The hostname in the UTS namespace is O(name)."
  - Nothing is ever linked to, or configured in, the host's network namespace. Every object is found and removed by its
    exact name.
  - C(changed) is derived from what was found missing or wrong before the run; after a real run the node is examined again
    and the module fails if it is still not as requested.
author:
  - nodenet.cni maintainers (@nodenet)
options:
  name:
    description:
      - The node's name. It is the name of its network namespace (C(/run/netns/<name>)) and its hostname.
    type: str
    required: true
  state:
    description:
      - V(present) creates what is missing and repairs what is wrong.
      - V(absent) removes the underlay port, the persisted mount and UTS namespaces, the network namespace and O(state_dir).
      - V(rebooted) simulates a reboot. The network, mount and UTS namespaces are torn down (every link, address,
        route, sysctl and pod namespace of the node is gone) and made again. The node's files persist, except those under
        a private path below C(/run), which is a tmpfs on a real node. Then the boot steps run inside the node, in the
        order a systemd boot runs them. Each C(*.conf) of the node's C(/etc/sysctl.d) is applied with C(sysctl -p), then the
        C(ExecStart) commands of the units in the node's C(/etc/systemd/system/multi-user.target.wants). Both paths
        must be in O(private_paths). Always C(changed).
    type: str
    choices: [present, absent, rebooted]
    default: present
  state_dir:
    description:
      - The node's own state directory. It is made a private bind mount of itself (needed to persist a mount namespace on
        a file inside it) and holds C(mnt), C(uts) and the node's private directories under C(root/).
      - With O(state=absent) it is removed with everything in it, after its mounts are gone, but only if the lab made it
        (the marker file C(.nodenet-lab-node) naming the node, written when the lab creates it or finds it empty) or it
        holds nothing but C(mnt), C(uts) and C(root); any other directory is refused.
    type: path
    required: true
  underlay_netns:
    description: The network namespace that holds the underlay bridge. Required with O(state=present).
    type: str
  underlay_bridge:
    description: The Linux bridge, inside O(underlay_netns), that joins the nodes. Required with O(state=present).
    type: str
  underlay_port:
    description:
      - The underlay end of the node's veth pair, inside O(underlay_netns) and enslaved to O(underlay_bridge).
      - Required with O(state=present). With O(state=absent) it is deleted when given (this also deletes O(interface)).
    type: str
  remove_underlay:
    description:
      - With O(state=absent), also delete the namespace O(underlay_netns) after the node, with the bridge and any port still
        in it. The lab sets it on the last node it removes, so the underlay the first node made goes the same way.
    type: bool
    default: false
    version_added: "0.2.0"
  interface:
    description:
      - The name of the node's underlay interface, inside its network namespace.
      - Its MAC address is fixed, derived from O(name) (locally administered), as a real NIC's is. An interface made again
        after a repair keeps it, so the other nodes' ARP caches stay right.
    type: str
    default: eth0
  underlay_cidr:
    description:
      - The underlay network, an IPv4 network such as V(172.31.250.0/24). The node's address is host number O(index) of it.
      - Required with O(state=present).
    type: str
  underlay_cidr_ipv6:
    description:
      - An IPv6 underlay network besides O(underlay_cidr), such as V(fd00:31:250::/64), for dual-stack labs. The node's
        IPv6 address is host number O(index) of it (added without duplicate address detection, as the lab owns it).
      - Empty or unset means an IPv4-only underlay.
    type: str
    version_added: "0.2.0"
  index:
    description: The node's number, from 1. Its address is the O(index)-th host address of O(underlay_cidr).
    type: int
  private_paths:
    description:
      - Absolute paths that are private to the node. A path missing on the host is created there as an empty directory,
        because a mount point must exist in the shared file system.
    type: list
    elements: path
    default: [/etc/cni, /opt/cni, /var/lib/cni, /etc/nodenet, /run/netns, /etc/sysctl.d, /etc/systemd/system]
  directories:
    description:
      - Directories the node has from the start, as a freshly installed Kubernetes node does (the kubelet and
        kubernetes-cni packages make C(/etc/cni/net.d) and C(/opt/cni/bin)). Each must lie under one of O(private_paths).
    type: list
    elements: path
    default: []
  sysctls:
    description: Sysctls set inside the node's network namespace only, for example C(net.ipv4.ip_forward).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - nodenet.cni.lab
requirements:
  - iproute2 (C(ip)), util-linux (C(nsenter), C(unshare), C(mount), C(umount)) and C(sysctl)
notes:
  - Interface names are limited to 15 characters by the kernel; O(underlay_bridge) and O(underlay_port) must fit.
  - The node's mount namespace drops its copies of the host's namespace mounts (C(/run/netns/*) and the like) when it is
    made, so that it never keeps another namespace alive after its owner deleted it.
seealso:
  - module: nodenet.cni.cni_bridge
"""

EXAMPLES = r"""
- name: Lab | Ensure node 1
  nodenet.cni.lab_node:
    name: nnlab-node1
    state_dir: /run/nodenet-lab/nnlab/nnlab-node1
    underlay_netns: nnlab-underlay
    underlay_bridge: nnlab-br
    underlay_port: nnlab-n1
    underlay_cidr: 172.31.250.0/24
    index: 1
    directories: [/etc/cni/net.d, /opt/cni/bin]
    sysctls:
      net.ipv4.ip_forward: 1

- name: Lab | Remove node 1
  nodenet.cni.lab_node:
    name: nnlab-node1
    state: absent
    state_dir: /run/nodenet-lab/nnlab/nnlab-node1
    underlay_netns: nnlab-underlay
    underlay_port: nnlab-n1

- name: Lab | Remove node 2, the last one, and the underlay with it
  nodenet.cni.lab_node:
    name: nnlab-node2
    state: absent
    state_dir: /run/nodenet-lab/nnlab/nnlab-node2
    underlay_netns: nnlab-underlay
    underlay_port: nnlab-n2
    remove_underlay: true
"""

RETURN = r"""
name:
  description: The node's name (network namespace and hostname).
  returned: always
  type: str
  sample: nnlab-node1
netns:
  description: Path of the node's network namespace.
  returned: always
  type: str
  sample: /run/netns/nnlab-node1
state_dir:
  description: The node's state directory.
  returned: always
  type: str
  sample: /run/nodenet-lab/nnlab/nnlab-node1
address:
  description: The node's underlay address, without prefix length.
  returned: when O(state=present) or O(state=rebooted)
  type: str
  sample: 172.31.250.1
address_ipv6:
  description: The node's IPv6 underlay address, without prefix length.
  returned: when O(state=present) and O(underlay_cidr_ipv6) is set
  type: str
  sample: fd00:31:250::1
  version_added: "0.2.0"
prefixlen:
  description: The prefix length of the underlay network.
  returned: when O(state=present) or O(state=rebooted)
  type: int
  sample: 24
boot:
  description: With O(state=rebooted), each boot step run inside the node, with its C(cmd), C(rc), C(stdout) and C(stderr).
  returned: when O(state=rebooted), not in check mode
  type: list
  elements: dict
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["add network namespace nnlab-node1", "set lo up in nnlab-node1"]
"""

import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nodenet.cni.plugins.module_utils import lab
from ansible_collections.nodenet.cni.plugins.module_utils.cni.names import ifname_problem
from ansible_collections.nodenet.cni.plugins.module_utils.lab import LabError
from ansible_collections.nodenet.cni.plugins.module_utils.mountinfo import read_mountinfo

NETNS_DIR = lab.NETNS_DIR
# Written into state_dir when the lab makes (or claims an empty) one: state=absent
# deletes only a directory carrying it, so a mistyped state_dir (/usr, /home)
# is never removed.
LAB_MARKER = ".nodenet-lab-node"
# What a state_dir made by an older lab (before the marker) may hold.
LAB_LAYOUT = {"mnt", "uts", "root", LAB_MARKER}
# Every command the module runs must end: a wedged mount or netlink call fails the task.
COMMAND_TIMEOUT = 120

# Runs inside the new mount + UTS namespace (already in the node's netns), as
# the child of `unshare`. Argument: JSON {"name", "binds": [[src, dst], ...]}.
MOUNT_SETUP = r"""
import json, re, subprocess, sys
spec = json.loads(sys.argv[1])
def run(*argv):
    subprocess.run(argv, check=True, timeout=60)
def unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)  # mountinfo writes blanks as \040
with open("/proc/sys/kernel/hostname", "w") as f:
    f.write(spec["name"])
def nsfs_mounts():
    with open("/proc/self/mountinfo") as f:
        return [unescape(fields[4]) for fields in (line.split() for line in f) if fields[fields.index("-") + 1] == "nsfs"]
# Our copies of the host's namespace mounts (/run/netns/*, other labs' nodes) would keep
# those namespaces alive after their owners delete them: drop every one. One that its
# owner is deleting right now may vanish under us ("not mounted"), hence a few passes.
for _ in range(3):
    for point in reversed(nsfs_mounts()):
        subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL, timeout=60)
if nsfs_mounts():
    raise SystemExit("cannot drop the copies of these namespace mounts: %s" % ", ".join(nsfs_mounts()))
# sysfs shows the network devices of the namespace it is mounted from (what `ip netns exec` does).
run("umount", "-l", "/sys")
run("mount", "-t", "sysfs", spec["name"], "/sys")
for src, dst in spec["binds"]:
    run("mount", "--bind", src, dst)
"""


class Host:
    """Runs the lab's commands on the host (C locale); a failure becomes a LabError."""

    def __init__(self, module):
        self.module = module

    def run(self, argv, check=True):
        return lab.run_bounded(self.module, argv, COMMAND_TIMEOUT, check)

    def link(self, netns, ifname):
        """`ip -j -d link show` of one device inside a namespace, or None."""
        rc, out, dummy = self.run(["ip", "-n", netns, "-j", "-d", "link", "show", "dev", ifname], check=False)
        if rc != 0:
            return None
        links = json.loads(out or "[]")
        return links[0] if links else None

    def addresses(self, netns, ifname):
        """Global addresses of both families (IPv6 link-local ones are the kernel's)."""
        rc, out, dummy = self.run(["ip", "-n", netns, "-j", "addr", "show", "dev", ifname], check=False)
        if rc != 0:
            return []
        return [
            "%s/%d" % (a["local"], a["prefixlen"])
            for link in json.loads(out or "[]")
            for a in link.get("addr_info", [])
            if a.get("family") == "inet" or a.get("scope") == "global"
        ]

    def sysctl(self, netns_path, key):
        rc, out, dummy = self.run(["nsenter", "--net=" + netns_path, "--", "sysctl", "-n", key], check=False)
        return out.strip() if rc == 0 else None

    def node_view(self, netns_path, mnt, uts, paths):
        return lab.node_view(self.run, netns_path, mnt, paths, uts=uts)


def is_up(link):
    return link is not None and "UP" in link.get("flags", [])


class LabNode:
    """Observes one node and plans the steps that make it match the request."""

    def __init__(self, host, params):
        self.host = host
        self.p = params
        self.name = params["name"]
        self.netns, self.state_dir, self.mnt, self.uts = lab.node_paths(self.name, params["state_dir"])
        self.binds = [(os.path.join(self.state_dir, "root", path.lstrip("/")), path) for path in params["private_paths"]]
        self.directories = [self.host_path(d) for d in params["directories"]]
        # a fixed MAC, like a real NIC: a re-made interface keeps it, so the other nodes' ARP caches stay right
        self.mac = "02:" + ":".join("%02x" % b for b in hashlib.sha256(self.name.encode()).digest()[:5])
        self.address = None
        self.booted = []  # what replay_boot ran
        if params["state"] in ("present", "rebooted"):
            network = ipaddress.ip_network(params["underlay_cidr"], strict=True)
            # host numbers skip the network and broadcast addresses, except in /31 and /32 (RFC 3021)
            skip = 1 if network.prefixlen < 31 else 0
            hosts = network.num_addresses - 2 * skip
            if not 1 <= params["index"] <= hosts:
                raise LabError("index %d is not a host number of %s (1..%d)" % (params["index"], network, hosts))
            self.address = "%s/%d" % (network.network_address + skip + params["index"] - 1, network.prefixlen)
        self.address_ipv6 = None
        if params["state"] == "present" and params.get("underlay_cidr_ipv6"):
            network6 = ipaddress.ip_network(params["underlay_cidr_ipv6"], strict=True)
            if params["index"] >= network6.num_addresses:
                raise LabError("index %d is not a host number of %s" % (params["index"], network6))
            self.address_ipv6 = "%s/%d" % (network6.network_address + params["index"], network6.prefixlen)
        self.wanted_addresses = [a for a in (self.address, self.address_ipv6) if a]

    def host_path(self, node_path):
        """Where a path inside one of the node's private paths lives on the host."""
        for src, dst in self.binds:
            if node_path == dst or node_path.startswith(dst.rstrip("/") + "/"):
                return os.path.normpath(src + node_path[len(dst) :])
        raise LabError("%s is not under any of private_paths (%s)" % (node_path, ", ".join(dst for dummy, dst in self.binds)))

    # -- observation -------------------------------------------------------

    def observe(self):
        """The node as found: only facts, no decisions."""
        mounts = read_mountinfo()
        p = self.p
        s = {
            "netns": mounts.get(self.netns, {}).get("fstype") == "nsfs",
            "netns_file": os.path.lexists(self.netns),
            "state_dir": os.path.isdir(self.state_dir),
            "marked": self.marked(),
            "state_dir_mount": mounts.get(self.state_dir),
            "mnt": mounts.get(self.mnt, {}).get("fstype") == "nsfs",
            "uts": mounts.get(self.uts, {}).get("fstype") == "nsfs",
        }
        s["underlay"] = bool(p["underlay_netns"]) and mounts.get(os.path.join(NETNS_DIR, p["underlay_netns"]), {}).get("fstype") == "nsfs"
        s["port"] = self.host.link(p["underlay_netns"], p["underlay_port"]) if s["underlay"] and p["underlay_port"] else None
        if p["state"] == "absent":
            s["underlay_file"] = bool(p["underlay_netns"]) and os.path.lexists(os.path.join(NETNS_DIR, p["underlay_netns"]))
            return s
        s["bridge"] = self.host.link(p["underlay_netns"], p["underlay_bridge"]) if s["underlay"] else None
        s["underlay_lo"] = self.host.link(p["underlay_netns"], "lo") if s["underlay"] else None
        s["lo"] = self.host.link(self.name, "lo") if s["netns"] else None
        s["interface"] = self.host.link(self.name, p["interface"]) if s["netns"] else None
        s["addresses"] = self.host.addresses(self.name, p["interface"]) if s["interface"] else []
        s["sysctls"] = {k: self.host.sysctl(self.netns, k) for k in sorted(p["sysctls"])} if s["netns"] else {}
        s["view"] = self.host.node_view(self.netns, self.mnt, self.uts, [dst for dummy, dst in self.binds]) if s["netns"] and s["mnt"] and s["uts"] else None
        s["sources"] = {}
        for src, dst in self.binds:
            try:
                st = os.stat(src)
                s["sources"][dst] = [st.st_dev, st.st_ino]
            except OSError:
                s["sources"][dst] = None
        s["mountpoints"] = {dst: os.path.isdir(dst) for dummy, dst in self.binds}
        s["directories"] = sorted(d for d in p["directories"] if os.path.isdir(self.host_path(d)))
        s["missing_dirs"] = [d for d in [self.state_dir] + [src for src, dummy in self.binds] + self.directories if not os.path.isdir(d)]
        return s

    def mount_ns_complete(self, s):
        view = s["view"]
        if not view or view["hostname"] != self.name or view["sys"] != ["sysfs", self.name]:
            return False
        return all(s["sources"][dst] is not None and view["paths"].get(dst) == s["sources"][dst] for dummy, dst in self.binds)

    def paired(self, s):
        """Is the node's interface the veth peer of its underlay port?"""
        iface, port = s["interface"], s["port"]
        if not (iface and port):
            return False
        kinds = {iface.get("linkinfo", {}).get("info_kind"), port.get("linkinfo", {}).get("info_kind")}
        return kinds == {"veth"} and iface.get("link_index") == port["ifindex"] and port.get("link_index") == iface["ifindex"]

    def summary(self, s):
        """A normalised, comparable picture of the node for diff."""
        out = {"netns": s["netns"], "mount_ns": s["mnt"], "uts_ns": s["uts"]}
        if self.p["state"] != "absent":
            out.update(
                underlay_port=bool(s["port"]) and s["port"].get("master") == self.p["underlay_bridge"] and is_up(s["port"]),
                interface=self.paired(s) and is_up(s["interface"]) and s["interface"].get("address") == self.mac,
                addresses=s["addresses"],
                sysctls=s["sysctls"],
                private_paths_mounted=self.mount_ns_complete(s),
                directories=s["directories"],
            )
        else:
            out["state_dir"] = s["state_dir"]
            if self.p["remove_underlay"]:
                out["underlay_netns"] = s["underlay_file"]
        return out

    def desired_summary(self, s=None):
        """The summary once the plan ran; the request alone decides it (`s` is not needed)."""
        if self.p["state"] == "absent":
            gone = {"netns": False, "mount_ns": False, "uts_ns": False, "state_dir": False}
            return dict(gone, underlay_netns=False) if self.p["remove_underlay"] else gone
        return {
            "netns": True,
            "mount_ns": True,
            "uts_ns": True,
            "underlay_port": True,
            "interface": True,
            "addresses": list(self.wanted_addresses),
            "sysctls": {k: str(v) for k, v in sorted(self.p["sysctls"].items())},
            "private_paths_mounted": True,
            "directories": sorted(self.p["directories"]),
        }

    # -- planning: [(description, argv or callable)] -----------------------

    def plan_present(self, s):
        """Every step from what is there (`s`) to a complete node, in the order they must run."""
        return (
            self._plan_state_dir(s)
            + self._plan_underlay(s)
            + self._plan_netns(s)
            + self._plan_interface(s)
            + self._plan_sysctls(s)
            + self._plan_mount_ns(s)
        )

    def _plan_state_dir(self, s):
        """The node's directories, its marker and the private bind mount of state_dir."""
        steps = []
        for d in s["missing_dirs"]:
            steps.append(("create directory %s" % d, lambda d=d: os.makedirs(d, mode=0o755, exist_ok=True)))
        if not s["marked"] and (self.state_dir in s["missing_dirs"] or self.lab_layout_only()):
            steps.append(("mark %s as made by the lab" % self.state_dir, self.write_marker))
        for dst, exists in sorted(s["mountpoints"].items()):
            if not exists:
                steps.append(("create empty mount point %s on the host" % dst, lambda d=dst: os.makedirs(d, mode=0o755, exist_ok=True)))
        if not s["state_dir_mount"]:
            steps.append(("bind-mount %s onto itself" % self.state_dir, ["mount", "--bind", self.state_dir, self.state_dir]))
        if not s["state_dir_mount"] or s["state_dir_mount"]["shared"]:
            # a mount namespace can only be persisted on a file of a private mount (unshare(1))
            steps.append(("make %s a private mount" % self.state_dir, ["mount", "--make-private", self.state_dir]))
        return steps

    def _plan_underlay(self, s):
        """The underlay namespace and its bridge (shared by every node of the lab)."""
        p, steps = self.p, []
        ip_u = ["ip", "-n", p["underlay_netns"]]
        if not s["underlay"]:
            steps.append(("add network namespace %s" % p["underlay_netns"], ["ip", "netns", "add", p["underlay_netns"]]))
        if not is_up(s["underlay_lo"]):
            steps.append(("set lo up in %s" % p["underlay_netns"], ip_u + ["link", "set", "lo", "up"]))
        if not s["bridge"]:
            steps.append(("add bridge %s in %s" % (p["underlay_bridge"], p["underlay_netns"]), ip_u + ["link", "add", p["underlay_bridge"], "type", "bridge"]))
        if not is_up(s["bridge"]):
            steps.append(("set %s up" % p["underlay_bridge"], ip_u + ["link", "set", p["underlay_bridge"], "up"]))
        return steps

    def _plan_netns(self, s):
        """The node's network namespace, with lo up."""
        steps = []
        ip_n = ["ip", "-n", self.name]
        if not s["netns"]:
            if s["netns_file"]:  # left by a failed `ip netns add`: not a namespace, just a file
                steps.append(("remove stale %s" % self.netns, lambda: os.unlink(self.netns)))
            steps.append(("add network namespace %s" % self.name, ["ip", "netns", "add", self.name]))
        if not is_up(s["lo"]):
            steps.append(("set lo up in %s" % self.name, ip_n + ["link", "set", "lo", "up"]))
        return steps

    def _plan_interface(self, s):
        """The veth pair into the underlay bridge, its MAC, addresses and link state."""
        p, steps = self.p, []
        ip_u = ["ip", "-n", p["underlay_netns"]]
        ip_n = ["ip", "-n", self.name]
        paired = self.paired(s)
        if not paired:
            if s["port"]:
                steps.append(("delete unpaired %s in %s" % (p["underlay_port"], p["underlay_netns"]), ip_u + ["link", "del", p["underlay_port"]]))
            if s["interface"]:
                steps.append(("delete unpaired %s in %s" % (p["interface"], self.name), ip_n + ["link", "del", p["interface"]]))
            # made inside the node with its peer placed straight into the underlay: never in the host namespace
            steps.append(
                (
                    "add veth %s (%s) <-> %s (%s)" % (p["interface"], self.name, p["underlay_port"], p["underlay_netns"]),
                    ip_n
                    + ["link", "add", p["interface"], "address", self.mac, "type", "veth", "peer", "name", p["underlay_port"], "netns", p["underlay_netns"]],
                )
            )
        elif s["interface"].get("address") != self.mac:
            steps.append(("set %s address %s in %s" % (p["interface"], self.mac, self.name), ip_n + ["link", "set", p["interface"], "address", self.mac]))
        if not paired or s["port"].get("master") != p["underlay_bridge"]:
            steps.append(
                ("enslave %s to %s" % (p["underlay_port"], p["underlay_bridge"]), ip_u + ["link", "set", p["underlay_port"], "master", p["underlay_bridge"]])
            )
        if not paired or not is_up(s["port"]):
            steps.append(("set %s up" % p["underlay_port"], ip_u + ["link", "set", p["underlay_port"], "up"]))
        addresses = s["addresses"] if paired else []
        for stale in addresses:
            if stale not in self.wanted_addresses:
                steps.append(("remove %s from %s" % (stale, p["interface"]), ip_n + ["addr", "del", stale, "dev", p["interface"]]))
        for wanted in self.wanted_addresses:
            if wanted not in addresses:
                nodad = ["nodad"] if wanted == self.address_ipv6 else []
                steps.append(("add %s to %s" % (wanted, p["interface"]), ip_n + ["addr", "add", wanted, "dev", p["interface"]] + nodad))
        if not paired or not is_up(s["interface"]):
            steps.append(("set %s up in %s" % (p["interface"], self.name), ip_n + ["link", "set", p["interface"], "up"]))
        return steps

    def _plan_sysctls(self, s):
        """The node's sysctls, set inside its network namespace."""
        p, steps = self.p, []
        for key, value in sorted(p["sysctls"].items()):
            if s["sysctls"].get(key) != str(value):
                setting = "%s=%s" % (key, value)
                steps.append(("set %s in %s" % (setting, self.name), ["nsenter", "--net=" + self.netns, "--", "sysctl", "-q", "-w", setting]))
        return steps

    def _plan_mount_ns(self, s):
        """The node's mount and UTS namespaces, made afresh when incomplete."""
        steps = []
        if not self.mount_ns_complete(s):
            # incomplete or missing: start over, the node's files live in state_dir, not in the namespace
            for path, mounted in ((self.mnt, s["mnt"]), (self.uts, s["uts"])):
                if mounted:
                    steps.append(("unmount incomplete %s" % path, ["umount", path]))
            for path in (self.mnt, self.uts):
                steps.append(("create %s" % path, lambda path=path: open(path, "a").close()))
            # from inside the node's netns, so the fresh sysfs shows the node's devices
            in_netns = ["nsenter", "--net=" + self.netns, "--"]
            unshare = ["unshare", "--mount=" + self.mnt, "--uts=" + self.uts, "--propagation", "private", "--"]
            setup = [sys.executable, "-c", MOUNT_SETUP, json.dumps({"name": self.name, "binds": self.binds})]
            steps.append(("make mount and UTS namespaces of %s (%s)" % (self.name, ", ".join(dst for dummy, dst in self.binds)), in_netns + unshare + setup))
        return steps

    def plan_absent(self, s):
        p, steps = self.p, []
        if s["port"]:
            # deleting one end of a veth pair deletes the node's interface too
            steps.append(("delete %s in %s" % (p["underlay_port"], p["underlay_netns"]), ["ip", "-n", p["underlay_netns"], "link", "del", p["underlay_port"]]))
        for path, mounted in ((self.mnt, s["mnt"]), (self.uts, s["uts"])):
            if mounted:
                steps.append(("unmount %s" % path, ["umount", path]))
        if s["netns_file"]:
            steps.append(("delete network namespace %s" % self.name, ["ip", "netns", "delete", self.name]))
        if s["state_dir_mount"]:
            steps.append(("unmount %s" % self.state_dir, self.unmount_state_dir))
        if s["state_dir"]:
            steps.append(("remove %s" % self.state_dir, self.remove_state_dir))
        if p["remove_underlay"] and s["underlay_file"]:
            # its bridge and the ports of nodes still in it go with the namespace
            steps.append(("delete network namespace %s" % p["underlay_netns"], ["ip", "netns", "delete", p["underlay_netns"]]))
        return steps

    def unmount_state_dir(self):
        # a bind mount may have been stacked by hand; bounded, never a loop forever
        for _attempt in range(8):
            if self.state_dir not in read_mountinfo():
                return
            self.host.run(["umount", self.state_dir])
        raise LabError("%s is still a mount point after 8 unmounts" % self.state_dir)

    def remove_state_dir(self):
        below = [m for m in read_mountinfo() if m == self.state_dir or m.startswith(self.state_dir + "/")]
        if below:  # never delete through a mount into someone else's files
            raise LabError("refusing to remove %s: still mounted: %s" % (self.state_dir, ", ".join(sorted(below))))
        if os.path.islink(self.state_dir):
            raise LabError("refusing to remove %s: it is a symbolic link" % self.state_dir)
        # an allow-list, not a deny-list: only what the lab made
        if not (self.marked() or self.lab_layout_only()):
            raise LabError(
                "refusing to remove %s: the lab did not make it (no %s marker, and it holds more than the lab's mnt, uts and root)"
                % (self.state_dir, LAB_MARKER)
            )
        shutil.rmtree(self.state_dir)

    def marked(self):
        """state_dir carries our marker naming this node (a regular file, not a symlink)."""
        path = os.path.join(self.state_dir, LAB_MARKER)
        if os.path.islink(path) or not os.path.isfile(path):
            return False
        try:
            with open(path) as f:
                return f.read().strip() == self.name
        except OSError:
            return False

    def lab_layout_only(self):
        """An existing state_dir with nothing but what the lab puts there (or nothing)."""
        try:
            return set(os.listdir(self.state_dir)) <= LAB_LAYOUT
        except OSError:
            return False

    def write_marker(self):
        with open(os.path.join(self.state_dir, LAB_MARKER), "w") as f:
            f.write(self.name + "\n")

    def plan_reboot(self, s):
        """Power off (every kernel object of the node goes; its files stay), power on, boot."""
        steps = [step for step in self.plan_absent(s) if step[1] not in (self.unmount_state_dir, self.remove_state_dir)]
        for src, dst in self.binds:
            if dst == "/run" or dst.startswith("/run/"):
                steps.append(("empty %s (a tmpfs on a real node)" % dst, lambda src=src: self.empty_volatile(src)))
        steps.append(("power on: make the node's namespaces again", self.make_again))
        steps.append(("boot: apply /etc/sysctl.d/*.conf, run the ExecStart of the enabled units", self.replay_boot))
        return steps

    def empty_volatile(self, directory):
        mounted = [m for m in read_mountinfo() if m == directory or m.startswith(directory.rstrip("/") + "/")]
        if mounted:  # never delete through a mount into someone else's files
            raise LabError("refusing to empty %s: still mounted: %s" % (directory, ", ".join(sorted(mounted))))
        for entry in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            path = os.path.join(directory, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    def make_again(self):
        self.apply(self.plan_present(self.observe()))

    def boot_commands(self):
        """[(description, argv)] a boot of this node runs, from its own files."""
        commands = []
        private = {dst: src for src, dst in self.binds}
        sysctl_dir, systemd_dir = private.get("/etc/sysctl.d"), private.get("/etc/systemd/system")
        if sysctl_dir is None or systemd_dir is None:
            raise LabError("rebooted needs /etc/sysctl.d and /etc/systemd/system in private_paths (else the host's files would run)")
        for name in sorted(os.listdir(sysctl_dir)):
            if name.endswith(".conf"):
                commands.append(("sysctl.d %s" % name, ["sysctl", "-q", "-p", os.path.join("/etc/sysctl.d", name)]))
        wants = os.path.join(systemd_dir, "multi-user.target.wants")
        for unit in sorted(os.listdir(wants)) if os.path.isdir(wants) else []:
            if not unit.endswith(".service"):
                continue
            # the link points at the node's path; read the unit through the node's private directory
            with open(os.path.join(systemd_dir, unit), encoding="utf-8") as f:
                for line in f:
                    key, sep, value = line.strip().partition("=")
                    if sep and key.strip() == "ExecStart":
                        # systemd's prefixes (-, @, :, +, !) do not matter here; quoting is shell-like
                        commands.append(("%s: ExecStart" % unit, shlex.split(value.strip().lstrip("-@:+!"))))
        return commands

    def replay_boot(self):
        enter = ["nsenter", "--net=" + self.netns, "--mount=" + self.mnt, "--uts=" + self.uts, "--"]
        for description, argv in self.boot_commands():
            rc, out, err = self.host.run(enter + argv, check=False)
            self.booted.append({"step": description, "cmd": argv, "rc": rc, "stdout": out, "stderr": err})
            if rc != 0:
                raise LabError("boot step %s failed (rc=%d): %s" % (description, rc, (err or out).strip()))

    def plan(self, s):
        if self.p["state"] == "rebooted":
            return self.plan_reboot(s)
        return self.plan_present(s) if self.p["state"] == "present" else self.plan_absent(s)

    def apply(self, steps):
        lab.apply_steps(steps, self.host.run)


def underlay_network(p, option, version):
    """The option as an ip_network of the given version, or a LabError naming it."""
    try:
        network = ipaddress.ip_network(p[option], strict=True)
    except ValueError as e:
        raise LabError("%s: %s" % (option, e)) from e
    if network.version != version:
        raise LabError("%s must be an IPv%d network, got %s" % (option, version, network))
    return network


def check_params(p):
    if p["state"] in ("present", "rebooted"):
        missing = [k for k in ("underlay_netns", "underlay_bridge", "underlay_port", "underlay_cidr", "index") if p[k] in (None, "")]
        if missing:
            raise LabError("state=present needs: %s" % ", ".join(missing))
        underlay_network(p, "underlay_cidr", 4)
        if p["underlay_cidr_ipv6"]:
            underlay_network(p, "underlay_cidr_ipv6", 6)
    if p["remove_underlay"] and (p["state"] != "absent" or not p["underlay_netns"]):
        raise LabError("remove_underlay needs state=absent and underlay_netns")
    for key in ("underlay_bridge", "underlay_port", "interface"):
        problem = ifname_problem(p[key]) if p[key] else None
        if problem is None and p[key] and not re.match(r"^[A-Za-z0-9_.-]+$", p[key]):
            problem = "has a character other than letters, digits, '_', '.' and '-' (the lab passes names to ip)"
        if problem is not None:
            raise LabError("%s %r is not a valid interface name: it %s" % (key, p[key], problem))
    for key in ("name", "underlay_netns"):
        if p[key]:
            lab.check_name(key, p[key])
    lab.check_state_dir(p["state_dir"])
    for path in p["private_paths"]:
        if not os.path.isabs(path) or os.path.normpath(path) == "/":
            raise LabError("private_paths: %r is not an absolute path below /" % path)


ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent", "rebooted"], default="present"),
    state_dir=dict(type="path", required=True),
    underlay_netns=dict(type="str"),
    underlay_bridge=dict(type="str"),
    underlay_port=dict(type="str"),
    underlay_cidr=dict(type="str"),
    underlay_cidr_ipv6=dict(type="str"),
    index=dict(type="int"),
    interface=dict(type="str", default="eth0"),
    private_paths=dict(
        type="list",
        elements="path",
        default=["/etc/cni", "/opt/cni", "/var/lib/cni", "/etc/nodenet", "/run/netns", "/etc/sysctl.d", "/etc/systemd/system"],
    ),
    directories=dict(type="list", elements="path", default=[]),
    sysctls=dict(type="dict", default={}),
    remove_underlay=dict(type="bool", default=False),
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    p = module.params
    lab.require_root(module)
    result = dict(changed=False, name=p["name"], netns=os.path.join(NETNS_DIR, p["name"]), state_dir=p["state_dir"], actions=[])
    try:
        check_params(p)
        node = LabNode(Host(module), p)
        if node.address:
            result["address"], result["prefixlen"] = node.address.split("/")[0], int(node.address.split("/")[1])
        if node.address_ipv6:
            result["address_ipv6"] = node.address_ipv6.split("/")[0]
        rebooted = p["state"] == "rebooted"
        before, dummy, after_summary = lab.converge(
            node,
            module.check_mode,
            result,
            "node %s" % p["name"],
            # after a reboot the node must be complete again: what remains is judged by plan_present
            replan=node.plan_present if rebooted else None,
            # the boot steps' output, filled while booting, is returned on failure too
            before_apply=(lambda: result.update(boot=node.booted)) if rebooted else None,
        )
    except LabError as e:
        module.fail_json(msg=str(e), **result)
    if module._diff:
        result["diff"] = lab.summary_diff(node.summary(before), after_summary, "lab node %s" % p["name"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_ssh
short_description: Real SSH access to a node of the nodenet.cni lab (sshd and a sudo login user inside the node only)
version_added: "0.1.0"
description:
  - Makes a lab node (made by M(nodenet.cni.lab_node)) reachable over real SSH, as a real node is, or removes that again.
    Used by the C(nodenet.cni.lab) role when C(lab_connection=ssh); runs on the machine that hosts the lab, as root.
  - "Inside the node's mount namespace only, C(/etc/passwd), C(/etc/shadow), C(/etc/group), C(/etc/hosts),
    C(/etc/sudoers.d) and C(/home) are bind mounts of files the module writes under C(<state_dir>/ssh/): a login user
    O(user) with passwordless sudo, an C(authorized_keys) holding O(authorized_key_file), and the node's hostname in
    C(/etc/hosts). The host's own accounts and C(/etc) files are never touched."
  - "An C(sshd) runs inside the node's network, mount and UTS namespaces with a host key of its own (C(<state_dir>/ssh/)),
    listening on C(127.0.0.1:22) of the node's network namespace only. The controller reaches it through a C(ProxyCommand)
    that enters that namespace (C(nsenter --net=<netns> socat - TCP:127.0.0.1:22)); nothing is linked to the host's network."
  - The login user's C(umask) is 077, as on hardened nodes, so Ansible's temporary files and everything the user makes are
    private to it (C(sudo) then runs commands with that umask too).
  - With O(state=absent), every C(sshd) and C(socat) process in the node's network namespace is stopped, the bind mounts are
    removed from the node and C(<state_dir>/ssh) is deleted.
  - C(changed) is derived from what was found missing or wrong before the run; after a real run the node is examined again
    and the module fails if it is still not as requested.
author:
  - nodenet.cni maintainers (@nodenet)
options:
  name:
    description: The node's name, as M(nodenet.cni.lab_node) made it (its network namespace is C(/run/netns/<name>)).
    type: str
    required: true
  state:
    description:
      - V(present) writes what is missing or different, binds it into the node and (re)starts the node's C(sshd) when it
        is not running in the node's current namespaces or its configuration changed.
      - V(absent) stops the node's C(sshd) (and the C(socat) of any connection still open), unbinds and deletes the files.
    type: str
    choices: [present, absent]
    default: present
  state_dir:
    description: The node's state directory (the one given to M(nodenet.cni.lab_node)); the module keeps its files in C(<state_dir>/ssh).
    type: path
    required: true
  user:
    description: The login user, which exists only inside the node. It gets passwordless sudo and no password.
    type: str
    default: nnadmin
  uid:
    description:
      - The login user's uid and gid inside the node. Files it leaves in paths the node shares with the host (C(/tmp)) carry
        this number, so it must not belong to an account of the host.
    type: int
    default: 2999
  authorized_key_file:
    description: The public key (on the controller) the login user accepts. Required with O(state=present).
    type: path
  sshd_exe:
    description: The OpenSSH server (Debian C(openssh-server)).
    type: path
    default: /usr/sbin/sshd
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - nodenet.cni.lab
requirements:
  - openssh-server, sudo, socat, util-linux (C(nsenter), C(mount), C(umount)), C(ssh-keygen)
notes:
  - The node must be up (its network namespace and its persisted mount and UTS namespaces exist); run M(nodenet.cni.lab_node) first.
  - If M(nodenet.cni.lab_node) had to make the node's mount namespace again, the binds are redone and C(sshd) is restarted there.
seealso:
  - module: nodenet.cni.lab_node
"""

EXAMPLES = r"""
- name: Lab | SSH into node 1
  nodenet.cni.lab_ssh:
    name: nnlab-node1
    state_dir: /run/nodenet-lab/nnlab/nnlab-node1
    authorized_key_file: /run/nodenet-lab/nnlab/ssh/id_ed25519.pub
  register: ssh_node1

- name: Lab | No more SSH into node 1
  nodenet.cni.lab_ssh:
    name: nnlab-node1
    state: absent
    state_dir: /run/nodenet-lab/nnlab/nnlab-node1
"""

RETURN = r"""
host_key:
  description: The node's public host key (C(<type> <base64>)), for a known_hosts file.
  returned: when O(state=present)
  type: str
  sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE...
address:
  description: Where the node's sshd listens, inside the node's network namespace.
  returned: when O(state=present)
  type: str
  sample: 127.0.0.1
port:
  description: The port of the node's sshd, inside the node's network namespace.
  returned: when O(state=present)
  type: int
  sample: 22
netns:
  description: The node's network namespace, which a C(ProxyCommand) enters to reach the sshd.
  returned: always
  type: str
  sample: /run/netns/nnlab-node1
user:
  description: The login user.
  returned: always
  type: str
  sample: nnadmin
pid:
  description: The pid of the node's listening sshd.
  returned: when O(state=present) and not in check mode
  type: int
  sample: 12345
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["write /run/nodenet-lab/nnlab/nnlab-node1/ssh/etc/passwd", "start sshd in nnlab-node1"]
"""

import hashlib
import os
import pwd
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nodenet.cni.plugins.module_utils import lab
from ansible_collections.nodenet.cni.plugins.module_utils.lab import LabError
from ansible_collections.nodenet.cni.plugins.module_utils.mountinfo import read_mountinfo

NETNS_DIR = lab.NETNS_DIR
LISTEN_ADDRESS = "127.0.0.1"
PORT = 22
# the node's umask for the login user: what hardened nodes use, and the hardest case for file modes
LOGIN_UMASK = "077"
# OpenSSH's compiled-in privilege separation directory; it must exist in the node's view
PRIVSEP_DIR = "/run/sshd"
# where the processes that serve (sshd) and carry (socat of a ProxyCommand) a node's SSH run
SSH_PROGRAMS = ("sshd", "socat")
STOP_TIMEOUT = 5.0
START_TIMEOUT = 10.0
COMMAND_TIMEOUT = 60  # seconds, for one command of the lab

# Answers whether something speaks SSH on the address inside the namespace we run in.
BANNER_PROBE = r"""
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[3])
while True:
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
            print(s.recv(64).decode("ascii", "replace").strip())
            break
    except OSError:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
"""


def host_mounts():
    """{mount point: fstype} of our (the host's) mount namespace."""
    return {point: m["fstype"] for point, m in read_mountinfo().items()}


def ns_inode(path):
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def proc_ns_inode(pid, kind):
    """The inode of a process's namespace (what `stat` of a persisted namespace file gives)."""
    try:
        return int(re.match(r"^\w+:\[(\d+)\]$", os.readlink("/proc/%d/ns/%s" % (pid, kind))).group(1))
    except (OSError, AttributeError):
        return None


def proc_exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def processes_in_netns(inode, programs):
    """Pids of the processes, in the network namespace with this inode, whose executable is one of programs."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        exe = proc_exe(pid)
        if exe and os.path.basename(exe) in programs and proc_ns_inode(pid, "net") == inode:
            found.append(pid)
    return sorted(found)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Files:
    """The node's SSH files on the host: desired content, mode and owner, and what is there."""

    def __init__(self, ssh_dir, params, sshd_user):
        user, uid = params["user"], params["uid"]
        self.ssh_dir = ssh_dir
        self.etc = os.path.join(ssh_dir, "etc")
        self.home = os.path.join(ssh_dir, "home")
        self.sudoers_d = os.path.join(ssh_dir, "sudoers.d")
        self.host_key = os.path.join(ssh_dir, "ssh_host_ed25519_key")
        self.config = os.path.join(ssh_dir, "sshd_config")
        self.pidfile = os.path.join(ssh_dir, "sshd.pid")
        self.log = os.path.join(ssh_dir, "sshd.log")
        user_home = os.path.join(self.home, user)
        node, sftp = params["name"], "/usr/lib/openssh/sftp-server"
        privsep_uid = sshd_user.pw_uid if sshd_user else 65534
        # (path, content or None for a directory, mode, uid, gid)
        self.directories = [
            (ssh_dir, 0o700, 0, 0),
            (self.etc, 0o755, 0, 0),
            (self.home, 0o755, 0, 0),
            (user_home, 0o700, uid, uid),
            (os.path.join(user_home, ".ssh"), 0o700, uid, uid),
            (self.sudoers_d, 0o755, 0, 0),
        ]
        self.files = [
            (os.path.join(self.etc, "passwd"), "".join((
                "root:x:0:0:root:/root:/bin/bash\n",
                "sshd:x:%d:65534::%s:/usr/sbin/nologin\n" % (privsep_uid, PRIVSEP_DIR),
                "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                "%s:x:%d:%d:nodenet lab login user:/home/%s:/bin/bash\n" % (user, uid, uid, user),
            )), 0o644, 0, 0),
            # "*": no password, yet not locked ("!"), so sshd accepts the key
            (os.path.join(self.etc, "shadow"), "".join("%s:*:19000:0:99999:7:::\n" % name for name in ("root", "sshd", "nobody", user)), 0o640, 0, 0),
            (os.path.join(self.etc, "group"), "root:x:0:\nnogroup:x:65534:\n%s:x:%d:\n" % (user, uid), 0o644, 0, 0),
            # sudo resolves the node's hostname; a real node has it here
            (os.path.join(self.etc, "hosts"), "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n" % node, 0o644, 0, 0),
            (os.path.join(self.sudoers_d, user), "%s ALL=(ALL:ALL) NOPASSWD: ALL\n" % user, 0o440, 0, 0),
            (os.path.join(user_home, ".ssh", "authorized_keys"), None, 0o600, uid, uid),  # content from authorized_key_file
            (self.config, "\n".join((
                "# sshd of lab node %s, written by nodenet.cni.lab_ssh; started with -f this file" % node,
                "ListenAddress %s:%d" % (LISTEN_ADDRESS, PORT),
                "HostKey %s" % self.host_key,
                "PidFile %s" % self.pidfile,
                "AllowUsers %s" % user,
                "AuthorizedKeysFile .ssh/authorized_keys",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin no",
                "UsePAM no",
                "StrictModes yes",
                "X11Forwarding no",
                "AllowAgentForwarding no",
                "AllowTcpForwarding no",
                "PermitTunnel no",
                "PrintMotd no",
                "MaxSessions 64",
                "MaxStartups 64:30:128",
                "Subsystem sftp %s" % sftp,
                "",
            )), 0o600, 0, 0),
        ]
        # node path -> host source: only the node's mount namespace sees these
        self.binds = [
            (os.path.join(self.etc, "passwd"), "/etc/passwd"),
            (os.path.join(self.etc, "shadow"), "/etc/shadow"),
            (os.path.join(self.etc, "group"), "/etc/group"),
            (os.path.join(self.etc, "hosts"), "/etc/hosts"),
            (self.sudoers_d, "/etc/sudoers.d"),
            (self.home, "/home"),
        ]

    @staticmethod
    def found(path):
        """(sha256 of content or None, mode, uid, gid) of what is at path, or None."""
        try:
            st = os.lstat(path)
        except OSError:
            return None
        digest = None
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                digest = sha256(f.read())
        return (digest, st.st_mode & 0o7777, st.st_uid, st.st_gid, os.path.isdir(path) and not os.path.islink(path))


class LabSSH:
    """Observes one node's SSH access and plans the steps that make it match the request."""

    def __init__(self, module, params):
        self.module = module
        self.p = params
        self.name = params["name"]
        self.netns, self.state_dir, self.mnt, self.uts = lab.node_paths(self.name, params["state_dir"])
        try:
            sshd_user = pwd.getpwnam("sshd")  # openssh-server's privilege separation user: the same uid inside the node
        except KeyError:
            sshd_user = None
        self.files = Files(os.path.join(self.state_dir, "ssh"), params, sshd_user)
        self.authorized_key = None
        if params["state"] == "present":
            try:
                with open(params["authorized_key_file"], "rb") as f:
                    self.authorized_key = f.read()
            except OSError as e:
                raise LabError("authorized_key_file: cannot read %s: %s" % (params["authorized_key_file"], e)) from e
            if not re.match(rb"^(ssh-|ecdsa-|sk-)\S+ \S+", self.authorized_key):
                raise LabError("authorized_key_file: %s is not an OpenSSH public key" % params["authorized_key_file"])

    def run(self, argv, check=True):
        return lab.run_bounded(self.module, argv, COMMAND_TIMEOUT, check)

    def in_node(self, argv, mount=True, uts=False):
        ns = ["nsenter", "--net=" + self.netns]
        if mount:
            ns.append("--mount=" + self.mnt)
        if uts:
            ns.append("--uts=" + self.uts)
        return ns + ["--"] + argv

    def desired_content(self, path, content):
        if content is None:  # authorized_keys
            return self.authorized_key if self.authorized_key.endswith(b"\n") else self.authorized_key + b"\n"
        return content.encode()

    # -- observation -------------------------------------------------------

    def observe(self):
        mounts = host_mounts()
        s = {
            "node_up": all(mounts.get(path) == "nsfs" for path in (self.netns, self.mnt, self.uts)),
            "ssh_dir": os.path.isdir(self.files.ssh_dir),
            "netns_inode": ns_inode(self.netns) if mounts.get(self.netns) == "nsfs" else None,
        }
        s["sshd_pid"] = self.listening_sshd()
        if self.p["state"] == "absent":
            s["processes"] = self.ssh_processes(s)
            s["view"] = self.node_view() if s["node_up"] else None
            return s
        s["directories"] = {path: Files.found(path) for path, dummy, dummy2, dummy3 in self.files.directories}
        s["files"] = {path: Files.found(path) for path, dummy, dummy2, dummy3, dummy4 in self.files.files}
        s["host_key"] = self.read_host_key()
        s["sources"] = {dst: self.stat_key(src) for src, dst in self.files.binds}
        s["view"] = self.node_view() if s["node_up"] else None
        s["privsep_dir"] = os.path.isdir(PRIVSEP_DIR)
        s["sshd_current"] = bool(s["sshd_pid"]) and all(
            proc_ns_inode(s["sshd_pid"], kind) == ns_inode(path) for kind, path in (("net", self.netns), ("mnt", self.mnt), ("uts", self.uts))
        )
        s["banner"] = self.banner(0) if s["sshd_current"] else ""
        # what a restart stops besides the listener: the sessions and the ProxyCommands' socat, in the node's
        # network namespace and in the listener's (an older one after a reboot), so no control master goes on
        # talking to a session in the node's old namespaces
        s["sessions"] = self.ssh_processes(s)
        return s

    @staticmethod
    def ssh_processes(s):
        """sshd and socat processes in the node's network namespace and in its listening sshd's (they differ after a reboot)."""
        inodes = {s["netns_inode"], proc_ns_inode(s["sshd_pid"], "net") if s["sshd_pid"] else None} - {None}
        return sorted(set(pid for inode in inodes for pid in processes_in_netns(inode, SSH_PROGRAMS)))

    @staticmethod
    def stat_key(path):
        try:
            st = os.stat(path)
            return [st.st_dev, st.st_ino]
        except OSError:
            return None

    def read_host_key(self):
        try:
            with open(self.files.host_key + ".pub") as f:
                fields = f.read().split()
        except OSError:
            return None
        if not os.path.isfile(self.files.host_key) or len(fields) < 2:
            return None
        return "%s %s" % (fields[0], fields[1])

    def listening_sshd(self):
        """The pid in our pidfile if it is still our sshd (its command line names our configuration)."""
        try:
            with open(self.files.pidfile) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None
        exe = proc_exe(pid) if pid > 0 else None
        if not exe or os.path.realpath(exe) != os.path.realpath(self.p["sshd_exe"]):
            return None
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        return pid if self.files.config in cmdline else None  # else a recycled pid

    def node_view(self):
        return lab.node_view(self.run, self.netns, self.mnt, [dst for dummy, dst in self.files.binds])

    def banner(self, timeout):
        probe = [sys.executable, "-c", BANNER_PROBE, LISTEN_ADDRESS, str(PORT), str(timeout)]
        rc, out, dummy = self.run(["nsenter", "--net=" + self.netns, "--"] + probe, check=False)
        return out.strip() if rc == 0 else ""

    def binds_complete(self, s):
        view = s["view"]
        return bool(view) and all(s["sources"][dst] is not None and view["paths"].get(dst) == s["sources"][dst] for dummy, dst in self.files.binds)

    # -- diff ------------------------------------------------------------------

    def summary(self, s):
        if self.p["state"] == "absent":
            return {"sshd": bool(s["sshd_pid"]), "processes": len(s["processes"]), "ssh_dir": s["ssh_dir"]}
        return {
            "files": {path: (found or [None])[0] for path, found in sorted(s["files"].items()) if not path.endswith("authorized_keys")},
            "authorized_key": self.authorized_key.decode().split()[1] if self.files_ok(s, only_keys=True) else None,
            "host_key": s["host_key"],
            "bound_in_node": self.binds_complete(s),
            "sshd": bool(s["sshd_current"] and s["banner"].startswith("SSH-")),
        }

    def desired_summary(self, s):
        if self.p["state"] == "absent":
            return {"sshd": False, "processes": 0, "ssh_dir": False}
        out = self.summary(s)
        out.update(
            files={path: sha256(self.desired_content(path, content)) for path, content, dummy, dummy2, dummy3 in self.files.files if content is not None},
            authorized_key=self.authorized_key.decode().split()[1],
            host_key=s["host_key"] or "(generated)",
            bound_in_node=True,
            sshd=True,
        )
        return out

    def files_ok(self, s, only_keys=False):
        for path, content, mode, uid, gid in self.files.files:
            if only_keys and not path.endswith("authorized_keys"):
                continue
            if s["files"][path] != (sha256(self.desired_content(path, content)), mode, uid, gid, False):
                return False
        return True

    # -- planning: [(description, callable or argv)] ---------------------------

    def plan_present(self, s):
        if not s["node_up"]:
            raise LabError("lab node %s is not up (%s, %s, %s); run nodenet.cni.lab_node first" % (self.name, self.netns, self.mnt, self.uts))
        for dst in ("/etc/sudoers.d", "/home"):
            if not os.path.isdir(dst):
                raise LabError("%s is missing on this machine: a mount point must exist (install sudo; see docs/lab.md)" % dst)
        if not os.access(self.p["sshd_exe"], os.X_OK):
            raise LabError("sshd_exe: %s is not there (install openssh-server)" % self.p["sshd_exe"])
        steps = []
        if not s["privsep_dir"]:
            # what openssh-server's tmpfiles.d makes at boot; shared by the nodes, empty
            steps.append(
                ("create sshd's privilege separation directory %s on the host" % PRIVSEP_DIR, lambda: os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True))
            )
        for path, mode, uid, gid in self.files.directories:
            if s["directories"][path] != (None, mode, uid, gid, True):
                steps.append(("directory %s (%o, %d:%d)" % (path, mode, uid, gid), lambda a=(path, mode, uid, gid): self.ensure_directory(*a)))
        rewritten = set()  # a rewritten file is a new inode: its bind must be made again
        for path, content, mode, uid, gid in self.files.files:
            data = self.desired_content(path, content)
            found = s["files"][path]
            if found == (sha256(data), mode, uid, gid, False):
                continue
            if found is None or found[0] != sha256(data):
                rewritten.add(path)
                steps.append(("write %s" % path, lambda a=(path, data, mode, uid, gid): self.write_file(*a)))
            else:
                steps.append(("fix mode/owner of %s" % path, lambda a=(path, mode, uid, gid): self.fix_file(*a)))
        if not s["host_key"]:
            rewritten.add(self.files.host_key)
            steps.append(("generate the host key %s" % self.files.host_key, self.generate_host_key))
        view = s["view"] or {"paths": {}, "mounts": []}
        for src, dst in self.files.binds:
            if src in rewritten or s["sources"][dst] is None or view["paths"].get(dst) != s["sources"][dst]:
                if dst in view["mounts"]:
                    steps.append(("unbind %s in %s" % (dst, self.name), self.in_node(["umount", "-l", dst])))
                steps.append(("bind %s on %s in %s" % (src, dst, self.name), self.in_node(["mount", "--bind", src, dst])))
        # sshd reads its configuration and host key once, and lives in the namespaces it was started in
        reconfigured = bool(rewritten & {self.files.config, self.files.host_key})
        if reconfigured or not s["sshd_current"] or not s["banner"].startswith("SSH-"):
            # with its sessions: they would go on serving from the old namespaces or configuration
            stale = sorted(set(([s["sshd_pid"]] if s["sshd_pid"] else []) + s["sessions"]))
            if stale:
                why = "reconfigured" if reconfigured else "not in the node's current namespaces" if not s["sshd_current"] else "not answering"
                steps.append(("stop sshd %s (%s)" % (", ".join(map(str, stale)), why), lambda pids=stale: self.stop(pids)))
            steps.append(("start sshd in %s on %s:%d" % (self.name, LISTEN_ADDRESS, PORT), self.start_sshd))
        return steps

    def plan_absent(self, s):
        steps = []
        if s["processes"]:
            steps.append(("stop sshd and socat processes %s in %s" % (", ".join(map(str, s["processes"])), self.name), lambda: self.stop(s["processes"])))
        view = s["view"] or {"mounts": []}
        for dummy, dst in reversed(self.files.binds):
            if dst in view["mounts"]:
                steps.append(("unbind %s in %s" % (dst, self.name), self.in_node(["umount", "-l", dst])))
        if s["ssh_dir"]:
            steps.append(("remove %s" % self.files.ssh_dir, self.remove_ssh_dir))
        return steps

    def plan(self, s):
        return self.plan_present(s) if self.p["state"] == "present" else self.plan_absent(s)

    # -- actions ---------------------------------------------------------------

    @staticmethod
    def ensure_directory(path, mode, uid, gid):
        if not os.path.isdir(path) or os.path.islink(path):
            if os.path.lexists(path):
                os.unlink(path)
            os.mkdir(path, mode)
        os.chown(path, uid, gid)
        os.chmod(path, mode)

    @staticmethod
    def fix_file(path, mode, uid, gid):
        os.chown(path, uid, gid)
        os.chmod(path, mode)

    @staticmethod
    def write_file(path, data, mode, uid, gid):
        """Atomically: a reader (sshd, sudo) never sees half a file."""
        fd, tmp = tempfile.mkstemp(prefix=".lab_ssh-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chown(tmp, uid, gid)
            os.chmod(tmp, mode)
            os.rename(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def generate_host_key(self):
        for path in (self.files.host_key, self.files.host_key + ".pub"):
            if os.path.lexists(path):
                os.unlink(path)
        self.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "%s host key (nodenet.cni lab)" % self.name, "-f", self.files.host_key])

    def start_sshd(self):
        if os.path.exists(self.files.pidfile):
            os.unlink(self.files.pidfile)
        # the umask is the login user's: sshd does not set one (no PAM), its sessions inherit it
        script = "umask %s && exec %s -f %s -E %s" % (LOGIN_UMASK, shlex.quote(self.p["sshd_exe"]), shlex.quote(self.files.config), shlex.quote(self.files.log))
        self.run(self.in_node(["/bin/sh", "-c", script], uts=True))  # sshd forks into the background and returns
        deadline = time.monotonic() + START_TIMEOUT
        while self.listening_sshd() is None:
            if time.monotonic() > deadline:
                raise LabError("sshd in %s wrote no pid file within %ds; see %s" % (self.name, START_TIMEOUT, self.files.log))
            time.sleep(0.05)
        if not self.banner(START_TIMEOUT).startswith("SSH-"):
            raise LabError("sshd in %s does not answer on %s:%d; see %s" % (self.name, LISTEN_ADDRESS, PORT, self.files.log))

    def stop(self, pids):
        """SIGTERM, then SIGKILL after a bounded wait."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + STOP_TIMEOUT
            while any(os.path.exists("/proc/%d" % pid) and proc_exe(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            pids = [pid for pid in pids if os.path.exists("/proc/%d" % pid) and proc_exe(pid)]
            if not pids:
                return
        raise LabError("processes %s in %s do not stop" % (", ".join(map(str, pids)), self.name))

    def remove_ssh_dir(self):
        below = [m for m in host_mounts() if m == self.files.ssh_dir or m.startswith(self.files.ssh_dir + "/")]
        if below:  # never delete through a mount into someone else's files
            raise LabError("refusing to remove %s: still mounted: %s" % (self.files.ssh_dir, ", ".join(sorted(below))))
        shutil.rmtree(self.files.ssh_dir)

    def apply(self, steps):
        lab.apply_steps(steps, self.run)


def check_params(p):
    lab.check_name("name", p["name"])
    lab.check_state_dir(p["state_dir"])
    if not re.match(r"^[a-z_][a-z0-9_-]{0,30}$", p["user"]) or p["user"] in ("root", "sshd", "nobody"):
        raise LabError("user %r is not a valid login user name (lowercase, not root, sshd or nobody)" % p["user"])
    if not 1000 <= p["uid"] <= 60000:
        raise LabError("uid must be a regular user's uid (1000-60000), got %d" % p["uid"])
    if p["state"] == "present":
        if not p["authorized_key_file"]:
            raise LabError("state=present needs: authorized_key_file")
        try:
            owner = pwd.getpwuid(p["uid"]).pw_name
        except KeyError:
            owner = None
        if owner is not None:
            raise LabError("uid %d belongs to %s on this machine; choose a uid no host account has" % (p["uid"], owner))


ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    state_dir=dict(type="path", required=True),
    user=dict(type="str", default="nnadmin"),
    uid=dict(type="int", default=2999),
    authorized_key_file=dict(type="path"),
    sshd_exe=dict(type="path", default="/usr/sbin/sshd"),
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    p = module.params
    lab.require_root(module)
    result = dict(changed=False, netns=os.path.join(NETNS_DIR, p["name"]), user=p["user"], actions=[])
    try:
        check_params(p)
        node = LabSSH(module, p)
        before, after, after_summary = lab.converge(node, module.check_mode, result, "ssh on node %s" % p["name"])
        if p["state"] == "present":
            result.update(host_key=after["host_key"], address=LISTEN_ADDRESS, port=PORT)
            if not module.check_mode:
                result["pid"] = after["sshd_pid"]
    except LabError as e:
        module.fail_json(msg=str(e), **result)
    if module._diff:
        result["diff"] = lab.summary_diff(node.summary(before), after_summary, "ssh of lab node %s" % p["name"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()

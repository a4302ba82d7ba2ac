# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: labnode
short_description: Run tasks inside a node of the nodenet.cni lab
version_added: "0.1.0"
description:
  - Runs commands and moves files inside a simulated node made by C(playbooks/lab_up.yml) (role C(nodenet.cni.lab));
    the node's network, mount and UTS namespaces are entered with C(nsenter), on the machine that runs Ansible, as root.
  - Inside, the node sees only its own network devices (also in C(/sys/class/net)), its own hostname and its own
    C(/etc/cni), C(/opt/cni), C(/var/lib/cni), C(/etc/nodenet) and C(/run/netns); the rest of the file system is the
    host's. So roles run against a lab node with their normal default paths, exactly as against a real node over SSH.
  - Files are streamed through C(dd) inside the node's mount namespace, never copied by path on the host.
author:
  - nodenet.cni maintainers (@nodenet)
extends_documentation_fragment:
  - connection_pipelining
options:
  remote_addr:
    description:
      - The node's name, as lab_up made it (C(<lab_name>-node<N>)).
    type: string
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  netns:
    description:
      - The node's network namespace, a path or a name under C(/run/netns).
      - Defaults to C(/run/netns/<remote_addr>).
    type: string
    vars:
      - name: labnode_netns
  state_dir:
    description:
      - The node's state directory, holding its persisted mount (C(mnt)) and UTS (C(uts)) namespaces.
      - Defaults to C(/run/nodenet-lab/<lab_name>/<remote_addr>), where C(<lab_name>) is O(remote_addr) without its
        C(-node<N>) suffix (the lab role's default C(lab_state_dir)).
    type: string
    vars:
      - name: labnode_state_dir
  nsenter_exe:
    description: The C(nsenter) program (util-linux), a path or a name on E(PATH).
    type: string
    default: nsenter
    vars:
      - name: labnode_nsenter_exe
    env:
      - name: ANSIBLE_LABNODE_NSENTER_EXE
  executable:
    description: The shell that runs each command inside the node.
    type: string
    default: /bin/sh
    ini:
      - section: defaults
        key: executable
    env:
      - name: ANSIBLE_EXECUTABLE
    vars:
      - name: ansible_executable
notes:
  - Needs root on the machine that hosts the lab; the remote user is always C(root) and C(become) is not needed.
  - The inventory that lab_up writes sets O(netns) and O(state_dir) for every node.
  - How the lab is built, what it creates and how to bring it up and down is in the collection's C(docs/lab.md).
seealso:
  - module: nodenet.cni.lab_node
"""

EXAMPLES = r"""
# inventory/lab.yml, as lab_up writes it
all:
  children:
    k8s_nodes:
      vars:
        ansible_connection: nodenet.cni.labnode
      hosts:
        nnlab-node1:
          labnode_netns: /run/netns/nnlab-node1
          labnode_state_dir: /run/nodenet-lab/nnlab/nnlab-node1

# ad hoc: ansible -i inventory/lab.yml k8s_nodes -m ansible.builtin.command -a hostname
"""

import os
import re
import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import BUFSIZE, ConnectionBase
from ansible.utils.display import Display

display = Display()

NETNS_DIR = "/run/netns"
LAB_STATE_ROOT = "/run/nodenet-lab"


class Connection(ConnectionBase):
    """Commands and files inside a lab node, through nsenter into its namespaces."""

    transport = "nodenet.cni.labnode"
    has_pipelining = True
    has_tty = False
    default_user = "root"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._nsenter_argv = []
        self.node = None

    def _namespace_paths(self):
        node = self.get_option("remote_addr")
        netns = self.get_option("netns") or node
        if "/" not in netns:
            netns = os.path.join(NETNS_DIR, netns)
        state_dir = self.get_option("state_dir")
        if not state_dir:
            lab = re.sub(r"-node[0-9]+$", "", node)
            state_dir = os.path.join(LAB_STATE_ROOT, lab, node)
        return node, netns, os.path.join(state_dir, "mnt"), os.path.join(state_dir, "uts")

    def _connect(self):
        if self._connected:
            return self
        if os.geteuid() != 0:
            raise AnsibleConnectionFailure("the labnode connection needs root (it enters namespaces with nsenter)")
        self.node, netns, mnt, uts = self._namespace_paths()
        missing = [path for path in (netns, mnt, uts) if not os.path.exists(path)]
        if missing:
            raise AnsibleConnectionFailure("lab node %s is not up (missing %s); bring the lab up with playbooks/lab_up.yml" % (self.node, ", ".join(missing)))
        nsenter = self.get_option("nsenter_exe")
        if not os.path.isabs(nsenter):
            try:
                nsenter = get_bin_path(nsenter)
            except ValueError as e:
                raise AnsibleConnectionFailure(to_text(e)) from e
        self._nsenter_argv = [nsenter, "--net=" + netns, "--mount=" + mnt, "--uts=" + uts, "--"]
        super()._connect()
        display.vvv("ENTER LAB NODE %s" % " ".join(self._nsenter_argv), host=self.node)
        self._connected = True
        return self

    def _popen(self, cmd, stdin=subprocess.PIPE):
        """Start `cmd` under the node's shell; the caller talks to the pipes."""
        argv = self._nsenter_argv + [self.get_option("executable"), "-c", cmd]
        display.vvv("EXEC %s" % argv, host=self.node)
        return subprocess.Popen(
            [to_bytes(a, errors="surrogate_or_strict") for a in argv],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        proc = self._popen(cmd)
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    @staticmethod
    def _node_path(path):
        # relative paths are taken from / (there is no login directory to start from)
        return os.path.normpath(os.path.join(os.path.sep, path))

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self.node)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % in_path)
        node_path = shlex.quote(self._node_path(out_path))
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as in_file:
            # dd with an empty stdin still creates the file; count=0 says so explicitly
            count = "" if os.fstat(in_file.fileno()).st_size else " count=0"
            proc = self._popen("dd of=%s bs=%d%s" % (node_path, BUFSIZE, count), stdin=in_file)
            stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise AnsibleError("failed to transfer %s to %s on %s:\n%s\n%s" % (in_path, out_path, self.node, to_text(stdout), to_text(stderr)))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self.node)
        proc = self._popen("dd if=%s bs=%d" % (shlex.quote(self._node_path(in_path)), BUFSIZE), stdin=subprocess.DEVNULL)
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb+") as out_file:
            for chunk in iter(lambda: proc.stdout.read(BUFSIZE), b""):
                out_file.write(chunk)
        stderr = proc.stderr.read()
        proc.wait()
        if proc.returncode != 0:
            raise AnsibleError("failed to transfer %s on %s to %s:\n%s" % (in_path, self.node, out_path, to_text(stderr)))

    def close(self):
        super().close()
        self._connected = False

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_attach
short_description: Attach a throw-away probe to the node's CNI network and trace every plugin call
version_added: "0.1.0"
description:
  - The CNI project's C(scripts/priv-net-run.sh) as a module. Creates a network namespace, runs the network
    configuration a container runtime would use through the CNI plugins (ADD), optionally runs a command inside
    the namespace, and returns the CNI result, the command's output and a trace of every plugin exec.
  - The configuration is chosen with libcni's rules. Without O(network) it is the first file of O(conf_dir) in
    sorted order (C(.conf), C(.conflist), C(.json)), as containerd picks it. With O(network) it is the first
    C(.conflist) with that C(name), then the first C(.conf) or C(.json) (libcni C(LoadNetworkConf), as cnitool does).
  - The chain runs as libcni runs it. Plugins are executed in order with C(prevResult) on ADD and CHECK, and in
    reverse order on DEL. The final ADD result is stored in libcni's result cache
    (C(<cache_dir>/results/<network>-<name>-<ifname>), format C(cniCacheV1)), so a later CHECK or DEL works from
    another task and from other runtimes sharing the cache, such as cnitool, containerd and CRI-O.
  - An attachment is identified by O(name) (the container ID) and O(ifname). O(state=present) on an attachment
    that is already cached with the same configuration, arguments and namespace changes nothing and returns the
    cached result. If the configuration or the arguments changed, or its namespace is gone, the old attachment is
    deleted (DEL) and a new one added.
  - A failed ADD leaves nothing behind. DEL is run for the failed chain, the cache entry is removed and the
    namespace the module made is deleted. The failure still returns the trace.
  - Namespaces the module creates are recorded under C(<cache_dir>/nodenet-attach/). Only those are ever deleted.
    A namespace of the same name that the module did not make is never used implicitly.
  - Plugins are executed on the node, in the network namespace the module runs in, as the container runtime would.
author:
  - nodenet.cni maintainers (@nodenet)
extends_documentation_fragment:
  - nodenet.cni.node
  - nodenet.cni.node.cni_dirs
options:
  name:
    description:
      - The probe's name. It is the container ID passed to the plugins (C(CNI_CONTAINERID)) and, unless O(netns)
        is given, the name of the network namespace created as C(/var/run/netns/<name>).
      - Letters, digits, V(_), V(.) and V(-), starting with a letter or digit.
    type: str
    required: true
  state:
    description:
      - V(present) adds the attachment (ADD), or keeps the cached one.
      - V(checked) runs CHECK on the cached attachment (needs a config with C(cniVersion) 0.4.0 or later).
      - V(absent) runs DEL in reverse plugin order with the configuration and arguments cached at ADD, removes the
        cache entry and deletes the namespace the module made. Nothing cached and nothing made is not an error.
    type: str
    choices: [present, checked, absent]
    default: present
  network:
    description:
      - The network configuration to use, by its C(name). Default is the active configuration, the first file of
        O(conf_dir) in sorted order.
      - With O(state=absent) it limits the DEL to cached attachments of this network.
    type: str
  netns:
    description:
      - An existing network namespace to attach, by path (for example V(/var/run/netns/pod1) or V(/proc/1234/ns/net)),
        instead of creating one. It is never deleted by the module.
    type: path
  ifname:
    description: The interface name inside the namespace (C(CNI_IFNAME)).
    type: str
    default: eth0
  cni_args:
    description:
      - Extra arguments passed to the plugins as C(CNI_ARGS), in order, as C(KEY=VALUE;KEY=VALUE).
      - 'For example V({"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "probe"}).'
    type: dict
    default: {}
  capability_args:
    description:
      - Capability arguments (libcni C(CapabilityArgs)), for example C(portMappings). Each plugin receives the ones
        its C(capabilities) enables, as C(runtimeConfig).
    type: dict
    default: {}
  command:
    description:
      - A command to run inside the namespace after the attachment is in place (with O(state=present) or
        O(state=checked)), split into arguments like a shell would but without a shell. Wrap it in C(sh -c '...')
        for pipes and redirections.
      - A non-zero exit code fails the task. The attachment is kept.
      - The command does not count as a change. It does not run in check mode.
    type: str
  command_timeout:
    description: Seconds after which O(command) is killed (and the task fails).
    type: int
    default: 60
attributes:
  check_mode:
    description: Executes nothing, not even plugin VERSION, and creates nothing; reports the configuration it would use and what it would do.
    support: full
  diff_mode:
    description: Shows the probe's attachments (network, interface, namespace, addresses, arguments) and namespace before and after.
    support: full
  platform:
    description: Linux nodes; the plugins run in the network namespace the module runs in.
requirements:
  - pyroute2 (to create and delete the network namespace) and netaddr, from the node's python3 or else from the plugin
    runtime M(nodenet.cni.cni_plugin) installed in O(bin_dir)
notes:
  - Short name from the repository root, through C(library/cni_attach.py) and the repository's C(ansible.cfg)
    (C(collections_path = ./collections), C(library = ./library)), for example
    C(ansible node1 -m cni_attach -a "name=probe1 command='ip addr'").
  - The trace records only the C(CNI_*) part of each plugin's environment. The rest is the module's own environment.
seealso:
  - module: nodenet.cni.cni_facts
  - module: nodenet.cni.cni_netconf
  - name: priv-net-run.sh in containernetworking/cni
    description: The script this module replaces.
    link: https://github.com/containernetworking/cni/blob/main/scripts/priv-net-run.sh
"""

EXAMPLES = r"""
- name: Attach a probe to the active network and show its addresses
  nodenet.cni.cni_attach:
    name: probe1
    command: ip addr

- name: Ping the pod gateway from the probe
  nodenet.cni.cni_attach:
    name: probe1
    command: ping -c 1 -W 2 10.244.1.1

- name: Attach to a named network with port mappings, and keep the plugin trace
  nodenet.cni.cni_attach:
    name: probe2
    network: mynet
    capability_args:
      portMappings:
        - {hostPort: 8080, containerPort: 80, protocol: tcp}
  register: probe2

- name: Show what each plugin got and said
  ansible.builtin.debug:
    msg: "{{ probe2.trace | map(attribute='stdout') | list }}"

- name: Verify the attachment (CHECK)
  nodenet.cni.cni_attach:
    name: probe1
    state: checked

- name: Remove the probe (DEL, cache entry, namespace)
  nodenet.cni.cni_attach:
    name: probe1
    state: absent
"""

RETURN = r"""
result:
  description: The CNI result of the ADD (or the cached one when nothing changed), as the plugins printed it.
  returned: success, with O(state=present) or O(state=checked); null in check mode when an ADD would run
  type: dict
  sample:
    cniVersion: "0.3.1"
    interfaces: [{"name": "cni0", "mac": "76:02:71:5b:9c:79"}, {"name": "eth0", "sandbox": "/var/run/netns/probe1"}]
    ips: [{"version": "4", "interface": 2, "address": "10.13.3.8/22", "gateway": "10.13.3.254"}]
    routes: [{"dst": "0.0.0.0/0", "gw": "10.13.3.254"}]
config:
  description: The network configuration used, and the rule that chose it.
  returned: when a configuration was found
  type: dict
  contains:
    file:
      description: The config file (or the cache file, for DEL replayed from the cache).
      type: str
    name:
      description: The network name.
      type: str
    cniVersion:
      description: The list's spec version.
      type: str
    plugins:
      description: Plugin types in chain order.
      type: list
      elements: str
    rule:
      description: Why this configuration was chosen.
      type: str
  sample:
    file: /etc/cni/net.d/10-mynet.conflist
    name: mynet
    cniVersion: "0.3.1"
    plugins: [bridge, portmap]
    rule: "first of 1 config file(s) in lexical order (containerd's rule: the first file wins)"
trace:
  description:
    - Every plugin exec of this run in order (ADD, CHECK or DEL, including the DEL that undoes a failed ADD).
    - Also returned with a failure.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The plugin binary.
      type: str
    command:
      description: C(CNI_COMMAND).
      type: str
    argv:
      description: The exec'd argv.
      type: list
      elements: str
    env:
      description: The C(CNI_*) variables passed.
      type: dict
    stdin:
      description: The config the plugin got on stdin (with C(prevResult) and C(runtimeConfig) injected).
      type: str
    stdout:
      description: What the plugin printed (its result or error object).
      type: str
    stderr:
      description: The plugin's stderr.
      type: str
    exit_code:
      description: Exit code (-1 when it could not be exec'd, -9 when killed on timeout).
      type: int
    duration_ms:
      description: Wall time of the exec.
      type: float
    error:
      description: The decoded error, empty on success.
      type: str
actions:
  description: What was done (or would be done in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["create network namespace /var/run/netns/probe1", "ADD probe1 to network mynet (/etc/cni/net.d/cni.conf) as eth0"]
notes:
  description: Decisions that ran no plugin (cache handling, why an attachment was replaced).
  returned: always
  type: list
  elements: str
netns:
  description: The network namespace of the attachment.
  returned: always
  type: str
  sample: /var/run/netns/probe1
netns_created:
  description: The namespace is one the module made (and O(state=absent) deletes).
  returned: always
  type: bool
cache_file:
  description: The libcni cache file of the attachment.
  returned: success, with O(state=present) or O(state=checked)
  type: str
  sample: /var/lib/cni/results/mynet-probe1-eth0
cmd:
  description: O(command) split into arguments.
  returned: when O(command) ran
  type: list
  elements: str
rc:
  description: The command's exit code.
  returned: when O(command) ran
  type: int
stdout:
  description: The command's standard output.
  returned: when O(command) ran
  type: str
stdout_lines:
  description: O(command)'s standard output, line by line.
  returned: when O(command) ran
  type: list
  elements: str
stderr:
  description: The command's standard error.
  returned: when O(command) ran
  type: str
cleanup:
  description: After a failed ADD, what undoing it did (DEL outcome, cache entry and namespace removed).
  returned: failure of an ADD
  type: dict
"""

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import attach
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError


ARGUMENT_SPEC = dict(
    node_libs.CNI_DIR_OPTIONS,
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "checked", "absent"], default="present"),
    network=dict(type="str"),
    netns=dict(type="path"),
    ifname=dict(type="str", default="eth0"),
    cni_args=dict(type="dict", default={}),
    capability_args=dict(type="dict", default={}),
    command=dict(type="str"),
    command_timeout=dict(type="int", default=60),
)


def main() -> None:
    module = node_libs.node_module(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    p = module.params
    if p["command"] is not None and p["state"] == "absent":
        module.fail_json(msg="command: runs only with state=present or state=checked, not with state=absent")
    attacher = None
    try:
        req = attach.request_from_params(p)
        attacher = attach.Attacher(req, check_mode=module.check_mode)
        outcome = {"present": attacher.present, "checked": attacher.checked, "absent": attacher.absent}[p["state"]]()
    except attach.AttachError as e:
        module.fail_json(msg=str(e), **e.details)
    except CNIError as e:  # nothing expected here; still return what was traced
        details = attacher.out.as_dict() if attacher is not None else {}
        details.pop("changed", None)
        module.fail_json(msg=str(e), **details)

    result = outcome.as_dict()
    if module._diff:
        result["diff"] = dict(before=outcome.before, after=outcome.after)
    if req.command and not module.check_mode and p["state"] != "absent":
        ran = attach.run_in_netns(outcome.netns, req.command, req.command_timeout)
        result.update(cmd=ran["cmd"], rc=ran["rc"], stdout=ran["stdout"], stderr=ran["stderr"], stdout_lines=ran["stdout_lines"])
        if ran["timed_out"]:
            module.fail_json(msg="command: killed after %d seconds (command_timeout); the attachment is kept" % req.command_timeout, **result)
        if ran["rc"] != 0:
            module.fail_json(msg="command: exited with rc %s; the attachment is kept" % ran["rc"], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

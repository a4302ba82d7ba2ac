# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""host-local IPAM (plugins/ipam/host-local), sharing Go's dataDir format.

ADD leases one address per range set and answers with an abbreviated IPAM
result; DEL releases by (container ID, ifname) and never needs the netns;
CHECK asks whether any lease of the container exists. GC and STATUS (spec
1.1.0) are implemented here although Go's host-local leaves them as FIXME.
The whole config is validated before the dataDir is touched.
"""

from __future__ import annotations

import os
from typing import Optional

from ..config.host_local import IPAMConfig, check_requested_ips, load_ipam_config, load_store_location, read_resolv_conf
from ..config.netconf import parse_netconf, valid_attachments
from ..ipam import allocator
from ..ipam.store import Store
from ..skel import CmdArgs, Plugin
from ..spec import DNS, ERR_INTERNAL, ERR_NOT_AVAILABLE, CNIError, Result


def _load(args: CmdArgs) -> IPAMConfig:
    return load_ipam_config(parse_netconf(args.netconf), args.args)


def cmd_add(args: CmdArgs) -> Optional[Result]:
    conf = _load(args)
    check_requested_ips(conf)
    dns = read_resolv_conf(conf.resolv_conf) if conf.resolv_conf else DNS()
    with Store(conf.data_dir, conf.name) as store:
        allocations = allocator.allocate_all(store, conf, args.container_id, args.ifname)
    return Result(
        cni_version=conf.cni_version,
        ips=[a.ip_config() for a in allocations],
        routes=list(conf.routes),
        dns=dns,
    )


def cmd_del(args: CmdArgs) -> Optional[Result]:
    # DEL needs only where the leases are. Requested IPs, ipRanges or a
    # prevResult that do not parse must not stop the release (a failing DEL
    # strands libcni's chain); leases are found by ID, whatever their range.
    net = parse_netconf(args.netconf, lenient=True)
    data_dir, name = load_store_location(net)
    # Nothing was ever leased on this network: done, and create nothing.
    if not os.path.isdir(os.path.join(data_dir, name)):
        return None
    try:
        conf: Optional[IPAMConfig] = load_ipam_config(net, args.args)
    except CNIError:
        conf = None
    with Store(data_dir, name) as store:
        if conf is not None:
            allocator.release_all(store, conf, args.container_id, args.ifname)  # Go's pass per range set
        else:
            allocator.release_by_id(store, args.container_id, args.ifname)
    return None


def cmd_check(args: CmdArgs) -> Optional[Result]:
    conf = _load(args)
    found = False
    if os.path.isdir(conf.network_dir):
        with Store(conf.data_dir, conf.name) as store:
            found = bool(allocator.find_allocation(store, args.container_id, args.ifname))
    if not found:
        # Go's text; like Go, any lease of the container passes, whatever its address.
        raise CNIError(ERR_INTERNAL, "host-local: Failed to find address added by container %s" % args.container_id)
    return None


def cmd_gc(args: CmdArgs) -> Optional[Result]:
    conf = _load(args)
    valid = valid_attachments(args.netconf)
    if valid is None or not os.path.isdir(conf.network_dir):
        return None
    with Store(conf.data_dir, conf.name) as store:
        _released, errors = allocator.collect_garbage(store, valid)
    if errors:
        raise CNIError(ERR_INTERNAL, "; ".join(errors))
    return None


def cmd_status(args: CmdArgs) -> Optional[Result]:
    conf = _load(args)
    problem = _data_dir_problem(conf.network_dir)
    if problem:
        raise CNIError(ERR_NOT_AVAILABLE, "host-local: dataDir %s is not usable: %s" % (conf.data_dir, problem))
    return None


def _data_dir_problem(network_dir: str) -> str:
    """Why ADD could not write leases under network_dir, or "" if it could.

    Looks, without creating anything, at the nearest existing ancestor:
    it must be a directory we may write to (access(2) also reports a
    read-only filesystem, even for root).
    """
    path = os.path.abspath(network_dir)
    for _level in range(256):  # bounded walk up the tree
        if os.path.lexists(path):
            if not os.path.isdir(path):
                return "%s is not a directory" % path
            if not os.access(path, os.W_OK | os.X_OK):
                return "%s is not writable" % path
            return ""
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return "no existing parent directory"


# host-local never enters CNI_NETNS, so the caller's own netns is fine (as Go's).
PLUGIN = Plugin(name="host-local", add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc, status=cmd_status, enters_netns=False, warm=allocator.preload)

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
from typing import Optional, Set, Tuple

from ..config.hostlocal import IPAMConfig, check_requested_ips, load_ipam_config, read_resolv_conf
from ..config.netconf import parse_netconf
from ..ipam import allocator
from ..ipam.store import Store
from ..skel import CmdArgs, Plugin
from ..spec import DNS, ERR_INTERNAL, ERR_INVALID_NETCONF, ERR_NOT_AVAILABLE, CNIError, Result

VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


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
    conf = _load(args)
    # Nothing was ever leased on this network: done, and create nothing.
    if not os.path.isdir(conf.network_dir):
        return None
    with Store(conf.data_dir, conf.name) as store:
        allocator.release_all(store, conf, args.container_id, args.ifname)
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
    valid = _valid_attachments(args.netconf)
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


def _valid_attachments(netconf: dict) -> Optional[Set[Tuple[str, str]]]:
    """cni.dev/valid-attachments, or the legacy key libcni also sends (cni#1101).

    null or [] means "nothing is valid" (release everything). A request
    without either key frees nothing and succeeds: libcni sends exactly that
    when its caller gives no valid set (cnitool gc), after it already ran
    DEL for every cached attachment; guessing there would free live leases.
    """
    if not any(key in netconf for key in VALID_ATTACHMENTS_KEYS):
        return None
    valid: Set[Tuple[str, str]] = set()
    for key in VALID_ATTACHMENTS_KEYS:
        items = netconf.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise CNIError(ERR_INVALID_NETCONF, "must be a list (%s)" % key)
        for i, item in enumerate(items):
            where = "%s[%d]" % (key, i)
            if not isinstance(item, dict):
                raise CNIError(ERR_INVALID_NETCONF, "must be an object (%s)" % where)
            cid, ifname = item.get("containerID"), item.get("ifname")
            if not isinstance(cid, str) or not cid:
                raise CNIError(ERR_INVALID_NETCONF, "must be a non-empty string (%s.containerID)" % where)
            if not isinstance(ifname, str):
                raise CNIError(ERR_INVALID_NETCONF, "must be a string (%s.ifname)" % where)
            valid.add((cid, ifname))
    return valid


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


PLUGIN = Plugin(name="host-local", add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc, status=cmd_status)

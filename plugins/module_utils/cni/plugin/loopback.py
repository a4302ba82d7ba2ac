# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""loopback: bring `lo` up in the container (plugins/main/loopback).

CNI_IFNAME is ignored; the interface is always `lo`. Chained after another
plugin, the previous result passes through unchanged.
"""

from __future__ import annotations

from typing import Optional

from ..config.netconf import parse_netconf
from ..net import link as links
from ..net import loopback as lo
from ..net.netns import entered, netns_exists
from ..skel import CmdArgs, Plugin
from ..spec import ERR_INTERNAL, CNIError, Interface, IPConfig, Result


def cmd_add(args: CmdArgs) -> Optional[Result]:
    conf = parse_netconf(args.netconf)
    with entered(args.netns):
        addresses = lo.set_loopback_up()
    for address in addresses:
        if not lo.is_loopback_address(address):
            raise CNIError(ERR_INTERNAL, "loopback interface found with non-loopback address %r" % address)
    if conf.prev_result is not None:
        return conf.prev_result
    result = Result(cni_version=conf.cni_version, interfaces=[Interface(name="lo", mac="00:00:00:00:00:00", sandbox=args.netns)])
    # the first address of each family, as the reference reports them
    for family in (4, 6):
        first = next((a for a in addresses if lo.family(a) == family), None)
        if first:
            result.ips.append(IPConfig(address=first, interface=0))
    return result


def cmd_del(args: CmdArgs) -> Optional[Result]:
    parse_netconf(args.netconf, lenient=True)  # DEL needs no prevResult or runtimeConfig
    # DEL is best effort: no netns, nothing to undo.
    if not netns_exists(args.netns):
        return None
    with entered(args.netns):
        lo.set_loopback_down()
    return None


def cmd_check(args: CmdArgs) -> Optional[Result]:
    parse_netconf(args.netconf)
    with entered(args.netns):
        up = lo.loopback_is_up()
    if not up:
        raise CNIError(ERR_INTERNAL, "loopback interface is down")
    return None


PLUGIN = Plugin(name="loopback", add=cmd_add, delete=cmd_del, check=cmd_check, warm=links.preload)

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""macspoofchk: frames from a container's host veth must carry its MAC (pkg/link/spoofcheck.go).

Same layout as the reference, so either implementation tears down the
other's rules: table `bridge nat`, base chain PREROUTING (filter hook,
priority -300) with one `iifname <host veth> jump cni-br-iface-<ref>`
rule per attachment; that chain jumps to `cni-br-iface-<ref>-mac`, which
returns for the allowed source MAC and drops the rest. <ref> is
`<containerID>-<ifname>`; every rule carries the comment
`macspoofchk-<ref>`, which is how teardown finds them without the veth name.
"""

from __future__ import annotations

from typing import List

from ..spec import ERR_INVALID_ENV
from . import nftcmd

TABLE = "bridge nat"
BASE_CHAIN = "PREROUTING"


def ref_id(container_id: str, ifname: str) -> str:
    return "%s-%s" % (container_id, ifname)


def _chains(ref: str) -> List[str]:
    iface = "cni-br-iface-" + ref
    return [iface, iface + "-mac"]


def _comment(ref: str) -> str:
    return nftcmd.nft_quote("macspoofchk-" + ref)


@nftcmd.under_rules_lock
def setup_spoofcheck(host_veth: str, mac: str, container_id: str, ifname: str) -> None:
    """Allow only `mac` as source of frames entering the bridge from `host_veth`. One transaction."""
    # the script guard: all four end up in rule text or chain names
    host_veth = nftcmd.safe_ifname(host_veth, "host veth name")
    mac = nftcmd.safe_mac(mac, "container MAC")
    ref = ref_id(nftcmd.safe_name(container_id, "CNI_CONTAINERID", ERR_INVALID_ENV), nftcmd.safe_ifname(ifname, "CNI_IFNAME", ERR_INVALID_ENV))
    iface_chain, mac_chain = _chains(ref)
    comment = _comment(ref)
    # Drop a jump left by an earlier ADD of the same attachment, so setup converges.
    stale = _base_rule_handles(ref)
    lines = [
        "add table %s" % TABLE,
        "add chain %s %s { type filter hook prerouting priority -300 ; policy accept ; }" % (TABLE, BASE_CHAIN),
        "add chain %s %s" % (TABLE, iface_chain),
        "add chain %s %s" % (TABLE, mac_chain),
        "flush chain %s %s" % (TABLE, iface_chain),
        "flush chain %s %s" % (TABLE, mac_chain),
    ]
    lines += ["delete rule %s %s handle %d" % (TABLE, BASE_CHAIN, h) for h in stale]
    lines += [
        "add rule %s %s iifname %s jump %s comment %s" % (TABLE, BASE_CHAIN, nftcmd.nft_quote(host_veth), iface_chain, comment),
        "add rule %s %s jump %s comment %s" % (TABLE, iface_chain, mac_chain, comment),
        "add rule %s %s ether saddr %s return comment %s" % (TABLE, mac_chain, mac, comment),
        "add rule %s %s drop comment %s" % (TABLE, mac_chain, comment),
    ]
    nftcmd.nft_apply("\n".join(lines) + "\n")


@nftcmd.under_rules_lock
def teardown_spoofcheck(container_id: str, ifname: str) -> None:
    """Remove the attachment's jump rule and chains; whatever is already gone is fine."""
    if not nftcmd.find_tool(nftcmd.NFT):
        return
    ref = ref_id(container_id, ifname)
    objects = nftcmd.nft_list("table", "bridge", "nat")
    if objects is None:
        return
    existing = set(nftcmd.nft_chains(objects))
    lines = ["delete rule %s %s handle %d" % (TABLE, BASE_CHAIN, h) for h in _base_rule_handles(ref, objects)]
    # Empty both chains first: the iface chain's jump references the -mac chain.
    mine = [c for c in _chains(ref) if c in existing]
    lines += ["flush chain %s %s" % (TABLE, c) for c in mine]
    lines += ["delete chain %s %s" % (TABLE, c) for c in mine]
    if lines:
        nftcmd.nft_apply("\n".join(lines) + "\n")


def spoofcheck_present(container_id: str, ifname: str) -> bool:
    return bool(_base_rule_handles(ref_id(container_id, ifname)))


def _base_rule_handles(ref: str, objects=None) -> List[int]:
    if objects is None:
        objects = nftcmd.nft_list("chain", "bridge", "nat", BASE_CHAIN)
    want = "macspoofchk-" + ref
    return [int(r["handle"]) for r in nftcmd.nft_rules(objects, BASE_CHAIN) if r.get("comment") == want]

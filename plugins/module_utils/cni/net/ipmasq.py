# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ipMasq: masquerade a container's traffic leaving its subnet (pkg/ip/ipmasq_*.go).

The rule layout is the reference's, so Go and Python plugins on one node
see and clean up each other's rules:

- nftables: table `inet cni_plugins_masquerade`; base chain `postrouting`
  (rewritten on each setup) skips multicast and jumps to `masq_checks`,
  which holds one rule per container address with a comment that starts
  with a hash of (network) and of (ifname, container ID).
- iptables: per container, chain `CNI-<hash(network + containerID)>` in
  table nat: accept the container's own subnet, masquerade the rest but
  multicast; POSTROUTING jumps there for `-s <address>`. Every rule carries
  the comment `name: "<net>" id: "<containerID>"`.

Teardown needs no addresses (the fix of plugins#810): nftables rules are
found by their comment hash and the iptables chain by its name, which
derives from the network name and container ID alone; the POSTROUTING
jumps are found by their target. So DEL cleans up even when the netns, the
interface or CNI_NETNS is gone. Teardown and GC cover both backends, since
an attachment may have been made by another version or configuration.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, List, Sequence, Set, Tuple

from ..spec import ERR_INTERNAL, ERR_INVALID_ENV, CNIError
from . import nftcmd

NFT_TABLE = "cni_plugins_masquerade"
NFT_CHAIN = "masq_checks"
NFT_FAMILY_TABLE = "inet " + NFT_TABLE
IPT_TABLE = "nat"
CHAIN_PREFIX = "CNI-"
CHAIN_LEN = 28  # iptables chain names max out at 28 characters + NUL
MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}

_IPT_COMMENT_RE = re.compile(r'name:? \\"([^"\\]*)\\" id: \\"([^"\\]*)\\"')


def _hash(length: int, prefix: str, text: str) -> str:
    return (prefix + hashlib.sha512(text.encode()).hexdigest())[:length]


# -- names and comments (pkg/utils: FormatChainName, FormatComment; ipmasq_nftables) --


def chain_name(network: str, container_id: str) -> str:
    return _hash(CHAIN_LEN, CHAIN_PREFIX, network + container_id)


def iptables_comment(network: str, container_id: str) -> str:
    return 'name: "%s" id: "%s"' % (network, container_id)


def network_hash(network: str) -> str:
    return _hash(16, "", network)


def instance_hash(network: str, ifname: str, container_id: str) -> str:
    return network_hash(network) + "-" + _hash(16, "", ifname + ":" + container_id)


def nft_comment(network: str, ifname: str, container_id: str) -> str:
    text = "%s, net: %s, if: %s, id: %s" % (
        instance_hash(network, ifname, container_id),
        network.replace('"', ""),
        ifname.replace('"', ""),
        container_id.replace('"', ""),
    )
    return text[: nftcmd.COMMENT_MAX]


def default_backend() -> str:
    """nftables when `nft` works, else iptables.

    The Go plugin still prefers iptables; we prefer nftables because its
    rules carry their owner in a comment (teardown and GC without
    addresses) and because iptables is the legacy interface on new nodes.
    """
    if nftcmd.nft_available():
        return "nftables"
    if nftcmd.iptables_tool(4):
        return "iptables"
    raise CNIError(ERR_INTERNAL, "ipMasq needs nftables (nft) or iptables, and neither is usable")


def _family(cidr: str) -> int:
    return 6 if ":" in cidr else 4


def _network_of(cidr: str) -> str:
    from netaddr import IPNetwork

    return str(IPNetwork(cidr).cidr)


def _ip_of(cidr: str) -> str:
    return cidr.split("/")[0]


# ---------------------------------------------------------------------------
# setup


@nftcmd.under_rules_lock
def setup_ipmasq(backend: str, cidrs: Sequence[str], network: str, ifname: str, container_id: str) -> None:
    """Masquerade traffic from each address in `cidrs` ("10.22.0.5/16") leaving its subnet."""
    if not cidrs:
        return
    # the script guard (nftcmd.safe_*): every value below ends up in a rule
    network = nftcmd.safe_name(network, "name")
    ifname = nftcmd.safe_ifname(ifname, "CNI_IFNAME", ERR_INVALID_ENV)
    container_id = nftcmd.safe_name(container_id, "CNI_CONTAINERID", ERR_INVALID_ENV)
    cidrs = ["%s/%d" % (ip, plen) for ip, _net, plen in (nftcmd.safe_interface(c, "container address") for c in cidrs)]
    backend = backend or default_backend()
    if backend == "nftables":
        _setup_nftables(cidrs, network, ifname, container_id)
    elif backend == "iptables":
        for family in (4, 6):
            mine = [c for c in cidrs if _family(c) == family]
            if mine:
                _setup_iptables(family, mine, network, container_id)
    else:
        raise CNIError(ERR_INTERNAL, "unknown ipmasq backend %r" % backend)


def _setup_nftables(cidrs: Sequence[str], network: str, ifname: str, container_id: str) -> None:
    stale = _nft_rule_handles(instance_hash(network, ifname, container_id))
    comment = nftcmd.nft_quote(nft_comment(network, ifname, container_id))
    t = NFT_FAMILY_TABLE
    lines = [
        'add table %s { comment "Masquerading for plugins from github.com/containernetworking/plugins" ; }' % t,
        'add chain %s %s { comment "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet" ; }' % (t, NFT_CHAIN),
        "add chain %s postrouting { type nat hook postrouting priority srcnat ; }" % t,
        # rewritten every time, so a table left by any version converges
        "flush chain %s postrouting" % t,
        "add rule %s postrouting ip daddr %s return" % (t, MULTICAST[4]),
        "add rule %s postrouting ip6 daddr %s return" % (t, MULTICAST[6]),
        "add rule %s postrouting goto %s" % (t, NFT_CHAIN),
    ]
    lines += ["delete rule %s %s handle %d" % (t, NFT_CHAIN, h) for h, _comment in stale]
    for cidr in cidrs:
        ip = "ip" if _family(cidr) == 4 else "ip6"
        lines.append("add rule %s %s %s saddr %s %s daddr != %s masquerade comment %s" % (t, NFT_CHAIN, ip, _ip_of(cidr), ip, _network_of(cidr), comment))
    nftcmd.nft_apply("\n".join(lines) + "\n")


def _setup_iptables(family: int, cidrs: Sequence[str], network: str, container_id: str) -> None:
    chain = chain_name(network, container_id)
    comment = '-m comment --comment "%s"' % iptables_comment(network, container_id).replace('"', '\\"')
    current = nftcmd.iptables_save(family, IPT_TABLE)
    if current is None:
        raise CNIError(ERR_INTERNAL, "%s is not usable" % ("iptables-save" if family == 4 else "ip6tables-save"))
    lines = ["*" + IPT_TABLE]
    # Re-declaring the chain flushes it in --noflush mode: setup converges
    # instead of appending duplicates on a repeated ADD.
    lines.append(":%s - [0:0]" % chain)
    lines += _delete_jumps(current, chain)
    for cidr in cidrs:
        lines.append("-A %s -d %s %s -j ACCEPT" % (chain, _network_of(cidr), comment))
    lines.append("-A %s ! -d %s %s -j MASQUERADE" % (chain, MULTICAST[family], comment))
    for cidr in cidrs:
        lines.append("-A POSTROUTING -s %s %s -j %s" % (_ip_of(cidr), comment, chain))
    lines.append("COMMIT")
    nftcmd.iptables_restore(family, lines)


# ---------------------------------------------------------------------------
# teardown and GC


@nftcmd.under_rules_lock
def teardown_ipmasq(network: str, ifname: str, container_id: str) -> None:
    """Remove one attachment's rules from both backends. Needs no addresses; missing rules are fine."""
    errors: List[str] = []
    if nftcmd.find_tool(nftcmd.NFT):
        try:
            _delete_nft_rules(_nft_rule_handles(instance_hash(network, ifname, container_id)))
        except CNIError as e:
            errors.append(str(e))
    for family in (4, 6):
        try:
            _teardown_iptables(family, chain_name(network, container_id))
        except CNIError as e:
            errors.append(str(e))
    if errors:
        raise CNIError(ERR_INTERNAL, "failed to tear down ipMasq: " + "; ".join(errors))


def _teardown_iptables(family: int, chain: str) -> None:
    current = nftcmd.iptables_save(family, IPT_TABLE)
    if not current:
        return
    lines = _delete_jumps(current, chain)
    if _chain_declared(current, chain):
        lines += ["-F " + chain, "-X " + chain]
    if lines:
        nftcmd.iptables_restore(family, ["*" + IPT_TABLE] + lines + ["COMMIT"])


@nftcmd.under_rules_lock
def gc_ipmasq(network: str, valid: Iterable[Tuple[str, str]]) -> None:
    """Remove the rules of `network`'s attachments that are not in `valid` [(containerID, ifname)]."""
    valid = list(valid)
    errors: List[str] = []
    if nftcmd.find_tool(nftcmd.NFT):
        try:
            keep = {nft_comment(network, ifname, cid) for cid, ifname in valid}
            stale = [(h, c) for h, c in _nft_rule_handles(network_hash(network)) if c not in keep]
            _delete_nft_rules(stale)
        except CNIError as e:
            errors.append(str(e))
    # iptables chains are per container (the reference ignores ifname there)
    keep_ids: Set[str] = {cid for cid, _ifname in valid}
    for family in (4, 6):
        try:
            current = nftcmd.iptables_save(family, IPT_TABLE) or []
            for cid in sorted(_iptables_containers(current, network) - keep_ids):
                _teardown_iptables(family, chain_name(network, cid))
        except CNIError as e:
            errors.append(str(e))
    if errors:
        raise CNIError(ERR_INTERNAL, "failed to garbage-collect ipMasq rules: " + "; ".join(errors))


def ipmasq_present(backend: str, network: str, ifname: str, container_id: str) -> bool:
    """Whether the attachment's rules exist (CHECK). An empty backend means either."""
    if backend in ("", "nftables") and nftcmd.find_tool(nftcmd.NFT):
        if _nft_rule_handles(instance_hash(network, ifname, container_id)):
            return True
    if backend in ("", "iptables"):
        chain = chain_name(network, container_id)
        for family in (4, 6):
            current = nftcmd.iptables_save(family, IPT_TABLE) or []
            if _chain_declared(current, chain) and _delete_jumps(current, chain):
                return True
    return False


# -- helpers -----------------------------------------------------------------


def _nft_rule_handles(comment_prefix: str) -> List[Tuple[int, str]]:
    """(handle, comment) of masq_checks rules whose comment starts with the prefix."""
    objects = nftcmd.nft_list("chain", "inet", NFT_TABLE, NFT_CHAIN)
    out = []
    for rule in nftcmd.nft_rules(objects, NFT_CHAIN):
        comment = rule.get("comment") or ""
        if comment.startswith(comment_prefix):
            out.append((int(rule["handle"]), comment))
    return out


def _delete_nft_rules(rules: List[Tuple[int, str]]) -> None:
    if rules:
        nftcmd.nft_apply("".join("delete rule %s %s handle %d\n" % (NFT_FAMILY_TABLE, NFT_CHAIN, h) for h, _comment in rules))


def _jump_re(chain: str):
    return re.compile(r"(^|\s)-j %s(\s|$)" % re.escape(chain))


def _delete_jumps(saved: List[str], chain: str) -> List[str]:
    """`-D` lines for every POSTROUTING rule that jumps to `chain` (any -s form, old or new)."""
    jump = _jump_re(chain)
    return ["-D" + line[2:] for line in saved if line.startswith("-A POSTROUTING ") and jump.search(line)]


def _chain_declared(saved: List[str], chain: str) -> bool:
    return any(line.startswith(":%s " % chain) for line in saved)


def _iptables_containers(saved: List[str], network: str) -> Set[str]:
    """Container IDs whose CNI- chains in `saved` belong to `network` (by their rules' comment)."""
    out: Set[str] = set()
    for line in saved:
        if not line.startswith("-A " + CHAIN_PREFIX):
            continue
        m = _IPT_COMMENT_RE.search(line)
        if m and m.group(1) == network and line.split()[1] == chain_name(network, m.group(2)):
            out.add(m.group(2))
    return out

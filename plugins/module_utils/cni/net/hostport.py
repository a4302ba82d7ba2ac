# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host port forwarding rules for portmap (plugins/meta/portmap).

The rule layout is the reference's, so Go and Python portmap on one node
share and clean up each other's rules:

- nftables: table `cni_hostport` in the `ip` and `ip6` families; base chains
  `prerouting` / `output` (nat, dstnat) jump to `hostports_all` for local
  destinations, which jumps to `hostip_hostports` then `hostports`; DNAT
  rules live there, masquerade rules for hairpin/localhost in
  `masquerading` (nat, srcnat). Every per-container rule's comment is the
  container ID, which is how DEL and CHECK find them.
- iptables: `CNI-HOSTPORT-DNAT` (jumped to from PREROUTING/OUTPUT for local
  destinations) holds one multiport rule per container and protocol that
  jumps to the container's `CNI-DN-<hash>` chain; marking for masquerade via
  `CNI-HOSTPORT-SETMARK`, masquerading in `CNI-HOSTPORT-MASQ`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

from ..config.portmap import PortMapConf, PortMapping
from ..spec import ERR_INTERNAL, ERR_INVALID_ENV, CNIError
from . import nftcmd

NFT_TABLE = "cni_hostport"
NFT_FAMILIES = {4: "ip", 6: "ip6"}
NFT_RULE_CHAINS = ("hostports", "hostip_hostports", "masquerading")

DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
MAX_PORTS_PER_RULE = 15  # iptables multiport limit


@dataclass
class Target:
    """The container address of one family that mappings forward to."""

    family: int
    address: str  # without prefix
    prefixlen: int


def dn_chain(network: str, container_id: str) -> str:
    # pkg/utils FormatChainName: prefix + sha512 hex, 28 characters in all
    return ("CNI-DN-" + hashlib.sha512((network + container_id).encode()).hexdigest())[:28]


def _mappings_for(family: int, mappings: Sequence[PortMapping]) -> List[PortMapping]:
    # a mapping bound to an address of the other family is skipped (reference behaviour)
    return [m for m in mappings if m.host_ip_family in (0, family)]


def _dest(target: Target, port: int) -> str:
    return "[%s]:%d" % (target.address, port) if target.family == 6 else "%s:%d" % (target.address, port)


def _guarded(pm: PortMapConf, container_id: str, targets: Sequence[Target], backend: str) -> Tuple[PortMapConf, str, List[Target]]:
    """Every value that goes into a rule, through the script guard (nftcmd.safe_*).

    The config readers validate too; this is the defence at the writer: a
    hostile hostIP, address, condition or chain name is refused here even if
    it got past them, and what is written is the canonical spelling.
    """
    cid = nftcmd.safe_name(container_id, "CNI_CONTAINERID", ERR_INVALID_ENV)
    nftcmd.safe_name(pm.net.name, "name")
    mappings = []
    for i, m in enumerate(pm.mappings):
        where = "runtimeConfig.portMappings[%d]" % i
        mappings.append(
            replace(
                m,
                host_port=nftcmd.safe_port(m.host_port, where + ".hostPort"),
                container_port=nftcmd.safe_port(m.container_port, where + ".containerPort"),
                protocol=nftcmd.safe_protocol(m.protocol, where + ".protocol"),
                host_ip=nftcmd.safe_address(m.host_ip, where + ".hostIP") if m.host_ip else "",
            )
        )
    safe_targets = []
    for t in targets:
        address = nftcmd.safe_address(t.address, "prevResult address")
        if not isinstance(t.prefixlen, int) or not 0 <= t.prefixlen <= (32 if t.family == 4 else 128):
            raise CNIError(ERR_INTERNAL, "prevResult prefix length %r of %s is out of range" % (t.prefixlen, address))
        safe_targets.append(replace(t, address=address))
    safe = replace(
        pm,
        mappings=mappings,
        conditions_v4=[nftcmd.safe_condition(backend, c, "conditionsV4[%d]" % i) for i, c in enumerate(pm.conditions_v4)],
        conditions_v6=[nftcmd.safe_condition(backend, c, "conditionsV6[%d]" % i) for i, c in enumerate(pm.conditions_v6)],
        external_set_mark_chain=(nftcmd.safe_chain(pm.external_set_mark_chain, "externalSetMarkChain") if pm.external_set_mark_chain else ""),
    )
    return safe, cid, safe_targets


# ---------------------------------------------------------------------------
# nftables


def _nft_skeleton(fam: str, exists: bool) -> List[str]:
    t = "%s %s" % (fam, NFT_TABLE)
    lines = ["add table " + t]
    for chain in ("hostports", "hostip_hostports", "hostports_all"):
        lines.append("add chain %s %s" % (t, chain))
    lines.append("add chain %s prerouting { type nat hook prerouting priority -100 ; }" % t)
    lines.append("add chain %s output { type nat hook output priority -100 ; }" % t)
    lines.append("add chain %s masquerading { type nat hook postrouting priority 100 ; }" % t)
    if not exists:
        lines.append("add rule %s hostports_all jump hostip_hostports" % t)
        lines.append("add rule %s hostports_all jump hostports" % t)
        lines.append("add rule %s prerouting fib daddr type local jump hostports_all" % t)
        lines.append("add rule %s output fib daddr type local jump hostports_all" % t)
    return lines


@nftcmd.under_rules_lock
def nft_setup(pm: PortMapConf, container_id: str, targets: Sequence[Target]) -> None:
    pm, container_id, targets = _guarded(pm, container_id, targets, "nftables")
    for target in targets:
        fam = NFT_FAMILIES[target.family]
        mappings = _mappings_for(target.family, pm.mappings)
        if not mappings:
            continue
        existing = nftcmd.nft_list("table", fam, NFT_TABLE)
        has_jumps = bool(nftcmd.nft_rules(existing, "hostports_all"))
        t = "%s %s" % (fam, NFT_TABLE)
        comment = "comment " + nftcmd.nft_quote(container_id)
        conds = " ".join(pm.conditions_v4 if target.family == 4 else pm.conditions_v6)
        lines = _nft_skeleton(fam, has_jumps)
        # re-adding for the same container replaces its rules (a retried ADD)
        lines += _nft_delete_lines(fam, container_id, existing)
        for m in mappings:
            match = "%s dport %d" % (m.protocol, m.host_port)
            if m.binds_any():
                lines.append("add rule %s hostports %s %s dnat to %s %s" % (t, conds, match, _dest(target, m.container_port), comment))
            else:
                lines.append(
                    "add rule %s hostip_hostports %s %s daddr %s %s dnat to %s %s" % (t, conds, fam, m.host_ip, match, _dest(target, m.container_port), comment)
                )
            if pm.snat or pm.masq_all:
                inner = "%s daddr %s %s dport %d" % (fam, target.address, m.protocol, m.container_port)
                if pm.masq_all:
                    lines.append("add rule %s masquerading %s masquerade %s" % (t, inner, comment))
                else:
                    lines.append("add rule %s masquerading %s saddr %s %s masquerade %s" % (t, fam, target.address, inner, comment))
                    if target.family == 4:
                        lines.append("add rule %s masquerading ip saddr 127.0.0.1 %s masquerade %s" % (t, inner, comment))
        nftcmd.nft_apply("\n".join(lines) + "\n")


def _nft_delete_lines(fam: str, container_id: str, existing: Optional[list]) -> List[str]:
    lines = []
    for rule in nftcmd.nft_rules(existing):
        if rule.get("chain") in NFT_RULE_CHAINS and rule.get("comment") == container_id:
            lines.append("delete rule %s %s %s handle %d" % (fam, NFT_TABLE, rule["chain"], rule["handle"]))
    return lines


@nftcmd.under_rules_lock
def nft_teardown(container_id: str) -> None:
    """Delete this container's rules in both families; needs no addresses."""
    for fam in NFT_FAMILIES.values():
        lines = _nft_delete_lines(fam, container_id, nftcmd.nft_list("table", fam, NFT_TABLE))
        if lines:
            nftcmd.nft_apply("\n".join(lines) + "\n")


def nft_rule_counts(container_id: str) -> Dict[str, int]:
    """{chain: rules carrying this container's comment}, over both families."""
    counts: Dict[str, int] = {}
    for fam in NFT_FAMILIES.values():
        for rule in nftcmd.nft_rules(nftcmd.nft_list("table", fam, NFT_TABLE)):
            if rule.get("comment") == container_id:
                counts[rule["chain"]] = counts.get(rule["chain"], 0) + 1
    return counts


# ---------------------------------------------------------------------------
# iptables (written with ip(6)tables-restore --noflush: one transaction per change)


def _ipt_comment(network: str, container_id: str) -> str:
    return '"dnat name: \\"%s\\" id: \\"%s\\""' % (network, container_id)


def _ipt_entry_rules(pm: PortMapConf, container_id: str, family: int) -> List[str]:
    """The rule specs in CNI-HOSTPORT-DNAT that jump to this container's chain."""
    chain = dn_chain(pm.net.name, container_id)
    conds = " ".join(pm.conditions_v4 if family == 4 else pm.conditions_v6)
    by_proto: Dict[str, List[int]] = {}
    for m in _mappings_for(family, pm.mappings):
        ports = by_proto.setdefault(m.protocol, [])
        if m.host_port not in ports:
            ports.append(m.host_port)
    specs = []
    for proto, ports in sorted(by_proto.items()):
        for i in range(0, len(ports), MAX_PORTS_PER_RULE):
            chunk = ",".join(str(p) for p in ports[i : i + MAX_PORTS_PER_RULE])
            spec = "-p %s -m comment --comment %s -m multiport --dports %s" % (proto, _ipt_comment(pm.net.name, container_id), chunk)
            specs.append(("%s %s" % (spec, conds)).strip() + " -j " + chain)
    return specs


@nftcmd.under_rules_lock
def ipt_setup(pm: PortMapConf, container_id: str, targets: Sequence[Target]) -> None:
    pm, container_id, targets = _guarded(pm, container_id, targets, "iptables")
    chain = dn_chain(pm.net.name, container_id)
    mark = "0x%x/0x%x" % (pm.mark, pm.mark)
    for target in targets:
        mappings = _mappings_for(target.family, pm.mappings)
        if not mappings:
            continue
        saved = nftcmd.iptables_save(target.family, "nat")
        if saved is None:
            raise CNIError(ERR_INTERNAL, "portmap: %s is not usable" % ("iptables" if target.family == 4 else "ip6tables"))
        declared = {line.split()[0][1:] for line in saved if line.startswith(":")}
        present = {line[3:] for line in saved if line.startswith("-A ")}
        lines = ["*nat"]
        for c in (DNAT_CHAIN, chain) + (() if pm.external_set_mark_chain else (SETMARK_CHAIN, MASQ_CHAIN)):
            if c not in declared:
                lines.append(":%s - [0:0]" % c)

        def ensure(rule: str, insert: bool = False) -> None:
            if rule not in present:
                lines.append(("-I " + rule.split(" ", 1)[0] + " 1 " + rule.split(" ", 1)[1]) if insert else "-A " + rule)

        for hook in ("PREROUTING", "OUTPUT"):
            ensure("%s -m addrtype --dst-type LOCAL -j %s" % (hook, DNAT_CHAIN))
        setmark = pm.external_set_mark_chain or SETMARK_CHAIN
        if not pm.external_set_mark_chain:
            ensure('%s -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark %s' % (SETMARK_CHAIN, mark))
            ensure("%s -m mark --mark %s -j MASQUERADE" % (MASQ_CHAIN, mark))
            ensure('POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j %s' % MASQ_CHAIN, insert=True)
        # the container's chain is rewritten whole: flush, then its rules
        lines.append("-F " + chain)
        host = "%s/%d" % (target.address, target.prefixlen)
        for m in mappings:
            dport = "-p %s -m %s --dport %d" % (m.protocol, m.protocol, m.host_port)
            dst = " -d %s" % m.host_ip if not m.binds_any() else ""
            if pm.snat:
                src = ("0.0.0.0/0" if target.family == 4 else "::/0") if pm.masq_all else host
                lines.append("-A %s -s %s%s %s -j %s" % (chain, src, dst, dport, setmark))
                if target.family == 4 and not pm.masq_all:
                    lines.append("-A %s -s 127.0.0.1/32%s %s -j %s" % (chain, dst, dport, setmark))
            lines.append("-A %s%s %s -j DNAT --to-destination %s" % (chain, dst, dport, _dest(target, m.container_port)))
        # entry rules: replace whatever jumped here before (ports may have changed)
        for line in saved:
            if line.startswith("-A %s " % DNAT_CHAIN) and line.endswith(" -j " + chain):
                lines.append("-D " + line[3:])
        for rule in _ipt_entry_rules(pm, container_id, target.family):
            lines.append("-A %s %s" % (DNAT_CHAIN, rule))
        lines.append("COMMIT")
        nftcmd.iptables_restore(target.family, lines)


@nftcmd.under_rules_lock
def ipt_teardown(pm: PortMapConf, container_id: str) -> None:
    """Remove the jumps into the container's chain and the chain, both families."""
    chain = dn_chain(pm.net.name, container_id)
    for family in (4, 6):
        saved = nftcmd.iptables_save(family, "nat")
        if not saved:
            continue
        lines = ["*nat"]
        for line in saved:
            # every rule jumping to this container's chain, whatever ports it had
            if line.startswith("-A ") and line.endswith(" -j " + chain):
                lines.append("-D " + line[3:])
        if any(line.startswith(":%s " % chain) for line in saved):
            lines += ["-F " + chain, "-X " + chain]
        if len(lines) > 1:
            nftcmd.iptables_restore(family, lines + ["COMMIT"])


def ipt_present(pm: PortMapConf, container_id: str, families: Sequence[int]) -> List[str]:
    """What is missing for this container (empty when everything is there)."""
    chain = dn_chain(pm.net.name, container_id)
    missing = []
    for family in families:
        saved = nftcmd.iptables_save(family, "nat") or []
        if not any(line.startswith(":%s " % chain) for line in saved):
            missing.append("chain %s (IPv%d)" % (chain, family))
        entries = [line for line in saved if line.startswith("-A %s " % DNAT_CHAIN) and line.endswith(" -j " + chain)]
        if not entries:
            missing.append("jump from %s to %s (IPv%d)" % (DNAT_CHAIN, chain, family))
        dnats = [line for line in saved if line.startswith("-A %s " % chain) and "-j DNAT" in line]
        if len(dnats) < len(_mappings_for(family, pm.mappings)):
            missing.append("DNAT rules in %s (IPv%d)" % (chain, family))
    return missing

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Talking to nftables and iptables through their own commands.

nftables: we read with `nft -j` (the JSON schema is the stable interface)
and write with one `nft -f -` script per change, so every change is one
kernel transaction. iptables: `*-save` to read and `*-restore --noflush`
to write, for the same reason. The commands act on the caller's netns.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Sequence

from ..spec import ERR_INTERNAL, CNIError

NFT = "nft"
# Commands must finish; a wedged nft or xtables lock must not hang a pod.
TIMEOUT = 30.0
# nftables' comment size limit (NFT_USERDATA_MAXLEN is 256 bytes; knftables uses 128)
COMMENT_MAX = 128


def find_tool(name: str) -> Optional[str]:
    return shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin:/usr/local/sbin:/usr/local/bin")


def run_tool(argv: Sequence[str], stdin: str = "") -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(argv), input=stdin.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise CNIError(ERR_INTERNAL, "%s not found" % argv[0])
    except subprocess.TimeoutExpired:
        raise CNIError(ERR_INTERNAL, "%s timed out after %ss" % (argv[0], TIMEOUT))


def nft_available() -> bool:
    """`nft` exists and can talk to the kernel (the Go library's SupportsNFTables idea)."""
    path = find_tool(NFT)
    if not path:
        return False
    try:
        return run_tool([path, "list", "tables"]).returncode == 0
    except CNIError:
        return False


def nft_apply(script: str) -> None:
    """Run an nft script as one transaction."""
    path = find_tool(NFT) or NFT
    proc = run_tool([path, "-f", "-"], script)
    if proc.returncode != 0:
        raise CNIError(ERR_INTERNAL, "nft failed: %s" % proc.stderr.decode("utf-8", "replace").strip(), script)


def nft_list(*what: str) -> Optional[List[Dict[str, Any]]]:
    """`nft -j list <what>` as the list of objects; None when the table/chain does not exist."""
    path = find_tool(NFT) or NFT
    proc = run_tool([path, "-j", "list"] + list(what))
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")
        if "No such file or directory" in err:
            return None
        raise CNIError(ERR_INTERNAL, "nft list %s failed: %s" % (" ".join(what), err.strip()))
    try:
        return json.loads(proc.stdout or b"{}").get("nftables", [])
    except ValueError as e:
        raise CNIError(ERR_INTERNAL, "cannot read nft -j output: %s" % e)


def nft_rules(objects: Optional[List[Dict[str, Any]]], chain: str = "") -> List[Dict[str, Any]]:
    """The rule objects from an `nft -j list` answer, optionally of one chain."""
    out = []
    for obj in objects or []:
        rule = obj.get("rule")
        if rule and (not chain or rule.get("chain") == chain):
            out.append(rule)
    return out


def nft_chains(objects: Optional[List[Dict[str, Any]]]) -> List[str]:
    return [obj["chain"]["name"] for obj in objects or [] if "chain" in obj]


def nft_quote(text: str) -> str:
    """A string literal for an nft script (our comments never contain quotes; make sure)."""
    return '"%s"' % text.replace('"', "").replace("\\", "")


# ---------------------------------------------------------------------------
# iptables


def iptables_tool(family: int, suffix: str = "") -> Optional[str]:
    return find_tool(("iptables" if family == 4 else "ip6tables") + suffix)


def iptables_save(family: int, table: str) -> Optional[List[str]]:
    """`ip(6)tables-save -t table` lines; None when the tool is missing or unusable."""
    tool = iptables_tool(family, "-save")
    if not tool:
        return None
    proc = run_tool([tool, "-t", table])
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace").splitlines()


def iptables_restore(family: int, lines: List[str]) -> None:
    """Apply `lines` (one table's section, with *table and COMMIT) without flushing the rest."""
    tool = iptables_tool(family, "-restore")
    if not tool:
        raise CNIError(ERR_INTERNAL, "%s not found" % ("iptables-restore" if family == 4 else "ip6tables-restore"))
    text = "\n".join(lines) + "\n"
    proc = run_tool([tool, "-w", "5", "--noflush"], text)
    if proc.returncode != 0:
        raise CNIError(ERR_INTERNAL, "%s failed: %s" % (tool, proc.stderr.decode("utf-8", "replace").strip()), text)

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

import contextlib
import functools
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

from ..fileio import flock_bounded
from ..names import ifname_problem, valid_name
from ..spec import ERR_INTERNAL, ERR_INVALID_NETCONF, ERR_TRY_AGAIN, CNIError

T = TypeVar("T")

NFT = "nft"
# Commands must finish; a wedged nft or xtables lock must not hang a pod.
TIMEOUT = 30.0
# nftables' comment size limit (NFT_USERDATA_MAXLEN is 256 bytes; knftables uses 128)
COMMENT_MAX = 128


# Our rule changes read the tables, then write a script from what they saw
# (does the shared jump exist yet? which rules does this container have?).
# Two plugins doing that at once would both add the shared jump. One flock,
# held from the read to the write, makes each read-modify-write atomic among
# our plugins (iptables' own xtables lock only covers one command, and
# taking it here would deadlock the `-w` of the restore we then run).
RULES_LOCK = "/run/nodenet-cni-rules.lock"
RULES_LOCK_TIMEOUT = 60.0
_rules_lock_depth = threading.local()


@contextlib.contextmanager
def rules_lock() -> Iterator[None]:
    """Hold the rules lock (re-entrant within a thread) for one read-modify-write."""
    depth = getattr(_rules_lock_depth, "n", 0)
    if depth:
        _rules_lock_depth.n = depth + 1
        try:
            yield
        finally:
            _rules_lock_depth.n = depth
        return
    try:
        fd = os.open(RULES_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise CNIError(ERR_INTERNAL, "cannot open the rules lock %s: %s" % (RULES_LOCK, e.strerror or e))
    try:
        if not flock_bounded(fd, RULES_LOCK_TIMEOUT):
            raise CNIError(ERR_TRY_AGAIN, "timed out after %gs waiting for %s" % (RULES_LOCK_TIMEOUT, RULES_LOCK))
        _rules_lock_depth.n = 1
        try:
            yield
        finally:
            _rules_lock_depth.n = 0
    finally:
        os.close(fd)  # drops the lock


def under_rules_lock(func: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with rules_lock():
            return func(*args, **kwargs)

    return wrapper


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
    """Run an nft script as one transaction (after check_nft_script)."""
    check_nft_script(script)
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
    """A string literal for an nft script: the text must be a safe_comment."""
    return '"%s"' % safe_comment(text, "nft comment")


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
    check_restore_lines(lines)
    text = "\n".join(lines) + "\n"
    proc = run_tool([tool, "-w", "5", "--noflush"], text)
    if proc.returncode != 0:
        raise CNIError(ERR_INTERNAL, "%s failed: %s" % (tool, proc.stderr.decode("utf-8", "replace").strip()), text)


# ---------------------------------------------------------------------------
# The script guard.
#
# nft and ip(6)tables-restore read a *script*: a newline starts a new command
# (`COMMIT`, `*filter`, `add rule ip filter ...`), so one unchecked string is
# an injection as root into any table of the node (issue 10: an IPv6 zone id
# "fe80::1%lo\nCOMMIT\n*filter\n-I INPUT ..." in portmap's hostIP). Every
# value that goes into a script passes one of the safe_* functions below,
# which answer with the canonical spelling or refuse with a CNIError naming
# the field; and nft_apply / iptables_restore check every line of the whole
# script against the grammar of what we write, so a value that skipped its
# safe_* call still cannot add a command, switch tables or touch a table
# that is not ours. The config readers canonicalise too; this holds even
# when the script writer is handed a hostile string directly.

# container IDs and network names: names.valid_name, and not without end
NAME_MAX = 1024
# iptables chain names: at most 28 characters (XT_EXTENSION_MAXNAMELEN - 1 ... 29 with NUL)
_CHAIN_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,27}\Z")
# comment text: names, ids, ifnames, hashes -- nothing that ends a quoted string or a command
_COMMENT_CHARS = "[^\"'\\\\;#\\x00-\\x1f\\x7f]"
_COMMENT_RE = re.compile(_COMMENT_CHARS + "*\\Z")
# a condition token (conditionsV4/V6): option names, addresses, sets, marks
_COND_TOKEN_NFT_RE = re.compile(r"[A-Za-z0-9_.:/,!=<>{}\[\]@*+\-]+\Z")
_COND_TOKEN_IPT_RE = re.compile(r"[A-Za-z0-9_.:/,!=<>@*+\- ]+\Z")
PROTOCOLS = ("tcp", "udp", "sctp")
_MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}\Z")
TABLES_NFT = ("cni_hostport", "cni_plugins_masquerade")
TABLES_IPT = ("nat",)


def _refuse(where: str, value: object, grammar: str, code: int = ERR_INVALID_NETCONF) -> CNIError:
    return CNIError(code, "%s %r is not %s" % (where, value, grammar))


def _no_controls(value: str) -> bool:
    return all(c.isprintable() for c in value)


def safe_address(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> str:
    """An IP address in canonical form; no zone id ("%eth0"), no prefix, no padding."""
    if not isinstance(value, str) or "%" in value or not value or value != value.strip():
        raise _refuse(where, value, "an IP address without zone id", code)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _refuse(where, value, "an IP address without zone id", code)


def safe_interface(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> Tuple[str, str, int]:
    """"10.0.0.5/24" -> ("10.0.0.5", "10.0.0.0/24", 24), canonical; no zone ids."""
    if not isinstance(value, str) or "%" in value or value != value.strip():
        raise _refuse(where, value, "an address with prefix length", code)
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise _refuse(where, value, "an address with prefix length", code)
    return str(iface.ip), str(iface.network), iface.network.prefixlen


def safe_name(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> str:
    """A container ID or network name: [A-Za-z0-9][A-Za-z0-9_.-]*, whole string."""
    if not valid_name(value) or len(value) > NAME_MAX:  # type: ignore[arg-type]
        raise _refuse(where, value, "a name of letters, digits, '_', '.' and '-'", code)
    return value


def safe_chain(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> str:
    """An iptables chain name (28 characters at most)."""
    if not isinstance(value, str) or not _CHAIN_RE.match(value):
        raise _refuse(where, value, "an iptables chain name (letters, digits, '_', '.', '-'; 28 at most)", code)
    return value


def safe_ifname(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> str:
    problem = ifname_problem(value)
    if problem is not None:
        raise CNIError(code, "%s %r: interface name %s" % (where, value, problem))
    # quotes would end the comment they are written into
    if any(c in "\"'\\#;" for c in value):  # type: ignore[union-attr]
        raise _refuse(where, value, "an interface name without quotes, '#', ';' or '\\'", code)
    return value  # type: ignore[return-value]


def safe_mac(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> str:
    mac = value.lower() if isinstance(value, str) else value
    if not isinstance(mac, str) or not _MAC_RE.match(mac):
        raise _refuse(where, value, "a MAC address aa:bb:cc:dd:ee:ff", code)
    return mac


def safe_port(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise _refuse(where, value, "a port number 1-65535", code)
    return value


def safe_protocol(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> str:
    if value not in PROTOCOLS:
        raise _refuse(where, value, "one of " + "/".join(PROTOCOLS), code)
    return value  # type: ignore[return-value]


def safe_comment(value: object, where: str, code: int = ERR_INVALID_NETCONF) -> str:
    """Comment text (before quoting): names, IDs, hashes, ',', ':', '/', blanks."""
    if not isinstance(value, str) or len(value.encode()) > COMMENT_MAX * 2 or not _COMMENT_RE.match(value) or not _no_controls(value):
        raise _refuse(where, value, "comment text (no quotes, '\\', ';', '#' or control characters)", code)
    return value


def safe_condition(backend: str, value: object, where: str, code: int = ERR_INVALID_NETCONF) -> str:
    """One element of conditionsV4/V6: a rule fragment, on one line, that cannot end the rule.

    nftables: tokens of [A-Za-z0-9_.:/,!=<>{}[]@*+-] (no quotes, ';' or '#',
    which would end the rule or start a comment). iptables: the same plus
    double-quoted words, balanced.
    """
    if not isinstance(value, str) or not value.strip() or not _no_controls(value):
        raise _refuse(where, value, "a one-line rule condition", code)
    if backend == "nftables":
        tokens = value.split()
        if not all(_COND_TOKEN_NFT_RE.match(t) for t in tokens):
            raise _refuse(where, value, "an nftables condition (no quotes, ';', '#' or '\\')", code)
        return " ".join(tokens)
    try:
        tokens = shlex.split(value, comments=False, posix=True)
    except ValueError:
        raise _refuse(where, value, "an iptables condition with balanced quotes", code)
    if "\\" in value or "'" in value or not all(_COND_TOKEN_IPT_RE.match(t) for t in tokens):
        raise _refuse(where, value, "an iptables condition (letters, digits, '_.:/,!=<>@*+-', \"quoted words\")", code)
    return value.strip()


# -- whole-script checks (the last line of defence, at the writer) -----------

# our tables, plus the bridge-family `nat` table the reference's macspoofchk uses
_NFT_LINE_RE = re.compile(r"(add|delete|flush) (table|chain|rule) (?:(?:ip|ip6|inet) (?:%s)|bridge nat)(?: (.*))?\Z" % "|".join(TABLES_NFT))
_NFT_QUOTED_RE = re.compile('"' + _COMMENT_CHARS + '*"')
_IPT_CHAIN_LINE_RE = re.compile(r":[A-Za-z0-9_][A-Za-z0-9_.\-]{0,27} - \[0:0\]\Z")
_IPT_RULE_LINE_RE = re.compile(r"-[AIDFXN] [A-Za-z0-9_][A-Za-z0-9_.\-]{0,27}(?: .*)?\Z")


class UnsafeScript(CNIError):
    """A script line outside the grammar of what we write: refused before it runs."""


def _unsafe(kind: str, line: str) -> UnsafeScript:
    return UnsafeScript(ERR_INTERNAL, "refusing to run %s script: line %r is outside its grammar" % (kind, line))


def check_nft_script(script: str) -> None:
    """Every line adds/deletes/flushes a table, chain or rule of *our* tables, one command per line."""
    if "\0" in script or "\r" in script:
        raise _unsafe("nft", script)
    for line in script.split("\n"):
        if not line:
            continue
        m = _NFT_LINE_RE.match(line)
        if not m or not _no_controls(line):
            raise _unsafe("nft", line)
        rest = _NFT_QUOTED_RE.sub('""', m.group(3) or "")
        if any(c in rest.replace('""', "") for c in "\"'\\#"):
            raise _unsafe("nft", line)
        if ";" in rest and not (m.group(1) == "add" and m.group(2) in ("table", "chain") and re.search(r"\{[^{}]*\}\Z", rest)):
            raise _unsafe("nft", line)  # ';' ends a command: only inside a table/chain declaration


def check_restore_lines(lines: Sequence[str]) -> None:
    """One `*nat` section: `*nat`, chain declarations and rule commands on that table, `COMMIT`."""
    if len(lines) < 2 or lines[0] != "*nat" or lines[-1] != "COMMIT":
        raise _unsafe("iptables-restore", "\\n".join(lines[:1] + lines[-1:]))
    for line in lines[1:-1]:
        if not isinstance(line, str) or not _no_controls(line):
            raise _unsafe("iptables-restore", str(line))
        if _IPT_CHAIN_LINE_RE.match(line):
            continue
        if not _IPT_RULE_LINE_RE.match(line):
            raise _unsafe("iptables-restore", line)
        try:
            shlex.split(line, comments=False, posix=True)
        except ValueError:
            raise _unsafe("iptables-restore", line)

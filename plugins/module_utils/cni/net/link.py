# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Links through pyroute2: bridges, veth pairs across namespaces, bridge ports.

Every function takes the pyroute2 handle (`ipr`) of the namespace it acts
in, so a caller holds one handle per namespace. A netlink socket stays in
the namespace it was opened in even after the thread leaves it, which is how
one process drives the host and a container at once (`ipr_in_netns`).

The handles are `rtnl.Rtnl` (pyroute2's messages on a plain socket, no
event loop per call); the modules' pyroute2 IPRoute handles work too.

The equivalents in the Go reference are pkg/ip/link_linux.go and the
bridge plugin's ensureBridge/setupVeth. Netlink failures become CNIError
999 (the Go library's ErrInternal) with the operation named, all through
`netlink_op`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..spec import ERR_INTERNAL, CNIError
from .netns import entered

IFF_UP = 0x1
IFF_PROMISC = 0x100
AF_BRIDGE = 7
# bridge VLAN flags (include/uapi/linux/if_bridge.h)
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4

VETH_PREFIX = "veth"
VETH_NAME_ATTEMPTS = 10
# Backoff for a new bridge port to come up, in seconds: the reference waits
# 0, 50, 500, 1000, 1000 ms (plugins#463/#468); we poll finer at first, since
# with IPAM in-process the port is often a millisecond from UP, and stop at the
# same total (~2.6 s).
PORT_UP_DELAYS = (0.0, 0.001, 0.002, 0.004, 0.008, 0.016, 0.03, 0.5, 1.0, 1.0)


@dataclass
class LinkInfo:
    """What we read back about a link; enough for every check the plugins make."""

    index: int
    name: str
    kind: str
    mac: str
    mtu: int
    flags: int
    operstate: str
    master: int
    # IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace)
    link: int

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def promisc(self) -> bool:
        return bool(self.flags & IFF_PROMISC)

    @property
    def is_bridge(self) -> bool:
        return self.kind == "bridge"

    @property
    def is_veth(self) -> bool:
        return self.kind == "veth"


def netlink_failure(what: str, exc: BaseException) -> CNIError:
    """A netlink error as the CNIError the runtime sees ("failed to <what>: <strerror>")."""
    code = getattr(exc, "code", None)
    reason = os.strerror(code) if isinstance(code, int) and code > 0 else str(exc)
    return CNIError(ERR_INTERNAL, "failed to %s: %s" % (what, reason))


class NetlinkOp:
    """What `netlink_op` yields: `.ignored` is the errno it swallowed, or 0."""

    __slots__ = ("ignored",)

    def __init__(self) -> None:
        self.ignored = 0


def netlink_op(what: str, ignore: Sequence[int] = (), reasons: Optional[Mapping[int, str]] = None) -> "NetlinkOpContext":
    """The one wrapper around netlink calls.

    A NetlinkError in the body becomes `netlink_failure(what, e)`, or the
    CNIError message `reasons[errno]` when given; an errno in `ignore` ends
    the body quietly and is left in `.ignored` for the caller to act on.
    """
    return NetlinkOpContext(what, ignore, reasons)


class NetlinkOpContext:
    """netlink_op's context manager (a class, not a generator: a call makes some twenty)."""

    __slots__ = ("what", "ignore", "reasons", "op")

    def __init__(self, what: str, ignore: Sequence[int] = (), reasons: Optional[Mapping[int, str]] = None) -> None:
        self.what, self.ignore, self.reasons = what, ignore, reasons
        self.op = NetlinkOp()

    def __enter__(self) -> NetlinkOp:
        return self.op

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        if exc is None:
            return False
        from pyroute2.netlink.exceptions import NetlinkError

        if not isinstance(exc, NetlinkError):
            return False
        if exc.code in self.ignore:
            self.op.ignored = exc.code
            return True
        if self.reasons and exc.code in self.reasons:
            raise CNIError(ERR_INTERNAL, self.reasons[exc.code]) from None
        raise netlink_failure(self.what, exc) from None


# ---------------------------------------------------------------------------
# handles


_THREAD = threading.local()


def preload() -> None:
    """What net/'s netlink calls import on first use (net/rtnl.py's pyroute2
    parts, and netaddr's address types that addr.py and route.py use), now:
    a plugin's `warm` (skel.Plugin) for a resident agent."""
    from . import rtnl

    rtnl.preload()
    from netaddr import IPAddress, IPNetwork  # noqa: F401


def _in_home_netns() -> bool:
    """Is this thread in the process's own netns (the main thread's; an agent's host side)?"""
    try:
        mine, home = os.stat("/proc/thread-self/ns/net"), os.stat("/proc/self/ns/net")
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (home.st_dev, home.st_ino)


@contextlib.contextmanager
def open_ipr() -> Iterator[Any]:
    """An rtnetlink handle (`rtnl.Rtnl`) in the calling thread's current netns.

    In the process's own netns each thread keeps one for all its calls (an
    agent worker opens no socket per call); anywhere else it is a fresh
    one, closed after use. A socket belongs to the netns it was opened in,
    whichever thread uses it later, so a kept one can never act in a pod's.
    """
    from .rtnl import Rtnl

    if _in_home_netns():
        ipr = getattr(_THREAD, "host_rtnl", None)
        if ipr is None:
            ipr = _THREAD.host_rtnl = Rtnl()
        try:
            yield ipr
        except OSError:
            _THREAD.host_rtnl = None  # the socket itself failed: do not reuse it
            ipr.close()
            raise
        return
    ipr = Rtnl()
    try:
        yield ipr
    finally:
        ipr.close()


@contextlib.contextmanager
def ipr_in_netns(path: str) -> Iterator[Any]:
    """An rtnetlink handle bound to the netns at `path`, usable after we left it again."""
    from .rtnl import Rtnl

    with entered(path):
        ipr = Rtnl()
    try:
        yield ipr
    finally:
        ipr.close()


# ---------------------------------------------------------------------------
# reading


_INFO_ATTRS = frozenset(("IFLA_IFNAME", "IFLA_ADDRESS", "IFLA_MTU", "IFLA_OPERSTATE", "IFLA_MASTER", "IFLA_LINK", "IFLA_LINKINFO"))


def _info(msg: Any) -> LinkInfo:
    # One pass over the attributes, decoding only the ones we keep (a link
    # message carries some forty; get_attr would scan them once per name).
    attrs = {}
    for slot in msg["attrs"]:
        name = slot[0]
        if name in _INFO_ATTRS and name not in attrs:
            attrs[name] = slot[1]
    linkinfo = attrs.get("IFLA_LINKINFO")
    kind = linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else ""
    return LinkInfo(
        index=msg["index"],
        name=attrs.get("IFLA_IFNAME") or "",
        kind=kind or "",
        mac=(attrs.get("IFLA_ADDRESS") or "").lower(),
        mtu=attrs.get("IFLA_MTU") or 0,
        flags=msg["flags"],
        operstate=attrs.get("IFLA_OPERSTATE") or "UNKNOWN",
        master=attrs.get("IFLA_MASTER") or 0,
        link=attrs.get("IFLA_LINK") or 0,
    )


def known_link(index: int, name: str, kind: str = "") -> LinkInfo:
    """A link we know by index and name without reading it (e.g. a veth's peer
    from the other end's IFLA_LINK); enough to act on, not to report."""
    return LinkInfo(index=index, name=name, kind=kind, mac="", mtu=0, flags=0, operstate="UNKNOWN", master=0, link=0)


def _read(ipr: Any, what: str, **key: Any) -> Optional[LinkInfo]:
    read = getattr(ipr, "read_link", None)  # rtnl.Rtnl decodes only what LinkInfo needs
    msgs = []
    with netlink_op("look up link %s" % what, ignore=(errno.ENODEV, errno.ENOENT)):
        msgs = read(**key) if read is not None else ipr.link("get", **key)
    return _info(msgs[0]) if msgs else None


def get_link(ipr: Any, name: str) -> Optional[LinkInfo]:
    """The link called `name`, or None."""
    return _read(ipr, repr(name), ifname=name)


def get_link_by_index(ipr: Any, index: int) -> Optional[LinkInfo]:
    return _read(ipr, "#%d" % index, index=index)


def require_link(ipr: Any, name: str) -> LinkInfo:
    link = get_link(ipr, name)
    if link is None:
        raise CNIError(ERR_INTERNAL, "link %r not found" % name)
    return link


def reread(ipr: Any, link: LinkInfo) -> LinkInfo:
    """`link` read again: by its index (the request carries no name), and by
    its name only if that index is gone or now has another name."""
    again = get_link_by_index(ipr, link.index) if link.index else None
    return again if again is not None and again.name == link.name else require_link(ipr, link.name)


# ---------------------------------------------------------------------------
# changing


def set_link_up(ipr: Any, link: LinkInfo) -> None:
    with netlink_op("set %r up" % link.name):
        ipr.link("set", index=link.index, state="up")


def set_link_mac(ipr: Any, link: LinkInfo, mac: str) -> None:
    with netlink_op("set the MAC address of %r to %s" % (link.name, mac)):
        ipr.link("set", index=link.index, address=mac)


def set_promisc_on(ipr: Any, link: LinkInfo) -> None:
    with netlink_op("set promiscuous mode on %r" % link.name):
        ipr.link("set", index=link.index, flags=IFF_PROMISC, change=IFF_PROMISC)


def delete_link(ipr: Any, name: str) -> bool:
    """Delete `name` if it exists; True if something was deleted. Missing is fine (DEL).

    One request: the kernel finds the link by name (no read first).
    """
    with netlink_op("delete link %r" % name, ignore=(errno.ENODEV, errno.ENOENT)) as op:
        ipr.link("del", ifname=name)
    return not op.ignored


def ensure_bridge(ipr: Any, name: str, mtu: int = 0, promisc: bool = False, vlan_filtering: bool = False) -> LinkInfo:
    """Create bridge `name` if missing (MTU and vlan_filtering only at creation), make it usable, return it.

    An existing non-bridge link of that name is an error: we never adopt it.
    Idempotent, and safe against a concurrent ADD creating the same bridge.
    """
    existing = get_link(ipr, name)
    if existing is None:
        spec = {"ifname": name, "kind": "bridge"}
        if mtu:
            spec["mtu"] = mtu
        reasons = {}
        if vlan_filtering:
            spec["br_vlan_filtering"] = 1
            reasons[errno.EOPNOTSUPP] = "could not add bridge %r: VLAN filtering is not supported by this kernel (CONFIG_BRIDGE_VLAN_FILTERING)" % name
        with netlink_op("add bridge %r" % name, ignore=(errno.EEXIST,), reasons=reasons):  # EEXIST: another ADD won the race
            ipr.link("add", **spec)
    link = existing if existing is not None else require_link(ipr, name)
    if not link.is_bridge:
        raise CNIError(ERR_INTERNAL, "%r already exists but is not a bridge" % name)
    fresh = True
    if promisc and not link.promisc:
        set_promisc_on(ipr, link)
        fresh = False
    # We own the bridge's routes; router advertisements must not add more (reference, errors ignored).
    from .sysctl import try_write_sysctl

    try_write_sysctl("net/ipv6/conf/%s/accept_ra" % name, "0")
    if link.up and fresh:
        return link  # nothing changed: no second read
    if not link.up:
        set_link_up(ipr, link)
    return require_link(ipr, name)


def random_veth_name(prefix: str = VETH_PREFIX) -> str:
    """`veth` + 8 hex characters, as the reference names host ends."""
    return prefix + os.urandom(4).hex()  # os.urandom: `secrets` costs an import on every exec


def create_veth_pair(ipr_container: Any, ifname: str, host_ns_fd: int, mtu: int = 0, mac: str = "", host_name: str = "") -> Tuple[str, LinkInfo]:
    """Create a veth pair from inside the container: `ifname` there, the peer directly in the host netns.

    Creating it in the container means a host link that happens to be called
    `ifname` (eth0 on most hosts) can never collide, and no end ever moves
    between namespaces (Go's order). Returns (host end name, container
    end); the container end's `link` is the host end's ifindex (in the host
    netns). Both ends are left down. `ipr_container` is an `rtnl.Rtnl`.
    """
    for _attempt in range(VETH_NAME_ATTEMPTS if not host_name else 1):
        peer_name = host_name or random_veth_name()
        reasons = {errno.EADDRNOTAVAIL: "failed to create veth %r with MAC %s: %s" % (ifname, mac, os.strerror(errno.EADDRNOTAVAIL))} if mac else None
        with netlink_op("create veth pair %s <-> %s" % (ifname, peer_name), ignore=(errno.EEXIST,), reasons=reasons) as op:
            ipr_container.add_veth(ifname, peer_name, host_ns_fd, mtu=mtu, mac=mac)
        if not op.ignored:
            return peer_name, require_link(ipr_container, ifname)
        # Either end's name can be taken; only the container's is the caller's fault.
        if get_link(ipr_container, ifname) is not None:
            raise CNIError(ERR_INTERNAL, "container veth name provided (%s) already exists" % ifname)
        # the random host name was taken: draw another
    raise CNIError(
        ERR_INTERNAL, "failed to create veth pair for %s (no free host name after %d tries): %s" % (ifname, VETH_NAME_ATTEMPTS, os.strerror(errno.EEXIST))
    )


def set_master(ipr: Any, port: LinkInfo, bridge: LinkInfo, up: bool = False) -> None:
    """Make `port` a port of `bridge` (and set it up in the same request when `up`)."""
    with netlink_op("connect %r to bridge %s" % (port.name, bridge.name)):
        if up:
            ipr.link("set", index=port.index, master=bridge.index, state="up")
        else:
            ipr.link("set", index=port.index, master=bridge.index)


def set_port_flags(ipr: Any, port: LinkInfo, hairpin: bool, isolated: bool) -> None:
    """Bridge port flags, set explicitly every time (on or off), as the reference does; one request."""
    with netlink_op("setup hairpin and isolation mode for %s" % port.name):
        ipr.brport("set", index=port.index, mode=1 if hairpin else 0, isolated=1 if isolated else 0)


def port_flags(ipr: Any, port: LinkInfo) -> Tuple[bool, bool]:
    """(hairpin, isolated) of a bridge port."""
    msgs = ipr.brport("show", index=port.index)
    for msg in msgs:
        info = msg.get_attr("IFLA_PROTINFO")
        if info is not None:
            return bool(info.get_attr("IFLA_BRPORT_MODE")), bool(info.get_attr("IFLA_BRPORT_ISOLATED"))
    return False, False


def port_vlans(ipr: Any, port: LinkInfo) -> List[Tuple[int, int]]:
    """(vid, flags) entries of a bridge port's VLAN table."""
    out: List[Tuple[int, int]] = []
    for msg in ipr.get_vlans():
        if msg["index"] != port.index:
            continue
        spec = msg.get_attr("IFLA_AF_SPEC")
        if spec is None:
            continue
        for name, value in spec["attrs"]:
            if name == "IFLA_BRIDGE_VLAN_INFO":
                out.append((value["vid"], value["flags"]))
    return out


def setup_port_vlans(ipr: Any, port: LinkInfo, vlan: int, trunk: Sequence[int], preserve_default: bool) -> None:
    """Access VLAN (PVID, untagged) and/or trunk VIDs (tagged) on a bridge port.

    Without `preserve_default` the port's existing entries (the bridge's
    default VID 1) go first. A trunk without an access VLAN keeps native
    VLAN 1 untagged, as the reference does for backwards compatibility.
    """
    if not vlan and not trunk:
        return
    with netlink_op("setup vlan tag on interface %r" % port.name):
        if not preserve_default:
            for vid, _flags in port_vlans(ipr, port):
                ipr.vlan_filter("del", index=port.index, vlan_info={"vid": vid})
        if vlan:
            ipr.vlan_filter("add", index=port.index, vlan_info={"vid": vlan, "flags": BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED})
        elif trunk:
            ipr.vlan_filter("add", index=port.index, vlan_info={"vid": 1, "flags": BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED})
        for vid in trunk:
            ipr.vlan_filter("add", index=port.index, vlan_info={"vid": vid})


def wait_oper_up(ipr: Any, port: LinkInfo, delays: Sequence[float] = PORT_UP_DELAYS) -> LinkInfo:
    """Poll until `port` is operationally UP (the bridge port forwards); bounded by `delays`."""
    link: Optional[LinkInfo] = None
    for delay in delays:
        if delay:
            time.sleep(delay)
        link = reread(ipr, port)
        if link.operstate == "UP":
            return link
    raise CNIError(ERR_INTERNAL, "bridge port in error state: %s" % (link.operstate if link else "missing"))

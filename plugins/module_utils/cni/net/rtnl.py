# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A synchronous rtnetlink socket on pyroute2's messages: IPRoute's calls without its event loop.

pyroute2 0.9's IPRoute runs every call through asyncio: a new event loop
and transport per call (about 70% of a bridge ADD's time in a warm agent),
and its socket lives in a thread-local, so a handle made in one thread and
used from another silently opens a second socket wherever *that* thread is.
`Rtnl` keeps pyroute2 as the netlink library (its message classes encode
the requests and decode the answers, its request filters build what the
fast path does not) and replaces only the transport: one plain
NETLINK_ROUTE socket, opened in the network namespace the calling thread
is in when `Rtnl()` runs, and bound to that namespace for its whole life,
whichever thread uses it later.

It offers the subset of IPRoute's API that net/ uses, with IPRoute's
arguments and return values (lists of pyroute2 messages), so the functions
in link.py, addr.py and route.py take either. Errors are pyroute2's
NetlinkError, as from IPRoute.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from types import SimpleNamespace

# Kernel ABI numbers (include/uapi/linux/netlink.h, rtnetlink.h); pyroute2
# itself is imported on first use (`_pyroute2`): link.py imports this module
# only where netlink is needed, and module_utils import checks run without it.
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
NLM_F_DUMP = 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
NETLINK_ROUTE = 0
AF_BRIDGE = 7
RECV_SIZE = 1 << 16
SOCKET_BUFFER = 1 << 20

_FLAGS = {
    "dump": NLM_F_REQUEST | NLM_F_DUMP,
    "get": NLM_F_REQUEST | NLM_F_ACK,
    "req": NLM_F_REQUEST | NLM_F_ACK,
    "create": NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    "append": NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
    "change": NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE,
    "replace": NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE,
}
_LINK_COMMANDS = {
    "set": (RTM_NEWLINK, "req"),
    "update": (RTM_SETLINK, "create"),
    "add": (RTM_NEWLINK, "create"),
    "del": (RTM_DELLINK, "req"),
    "remove": (RTM_DELLINK, "req"),
    "delete": (RTM_DELLINK, "req"),
    "dump": (RTM_GETLINK, "dump"),
    "get": (RTM_GETLINK, "get"),
}
_ADDR_COMMANDS = {
    "add": (RTM_NEWADDR, "create"),
    "del": (RTM_DELADDR, "req"),
    "remove": (RTM_DELADDR, "req"),
    "delete": (RTM_DELADDR, "req"),
    "replace": (RTM_NEWADDR, "replace"),
    "dump": (RTM_GETADDR, "dump"),
}
_ROUTE_COMMANDS = {
    "add": (RTM_NEWROUTE, "create"),
    "set": (RTM_NEWROUTE, "replace"),
    "replace": (RTM_NEWROUTE, "replace"),
    "change": (RTM_NEWROUTE, "change"),
    "append": (RTM_NEWROUTE, "append"),
    "del": (RTM_DELROUTE, "req"),
    "remove": (RTM_DELROUTE, "req"),
    "delete": (RTM_DELROUTE, "req"),
    "get": (RTM_GETROUTE, "get"),
    "show": (RTM_GETROUTE, "dump"),
    "dump": (RTM_GETROUTE, "dump"),
}
_VLAN_COMMANDS = {"add": (RTM_SETLINK, "req"), "del": (RTM_DELLINK, "req")}


# The requests a CNI ADD/DEL makes most, built straight into pyroute2's
# message classes: the same messages pyroute2's request filters build
# (tests/unit/test_rtnl_messages.py compares them), without the filters'
# per-call cost. Anything else goes through the filters.
IFF_UP = 0x1
_LINK_FAST_COMMANDS = ("get", "set", "del")
_LINK_FAST_ATTRS = (("ifname", "IFLA_IFNAME"), ("mtu", "IFLA_MTU"), ("address", "IFLA_ADDRESS"), ("master", "IFLA_MASTER"), ("net_ns_fd", "IFLA_NET_NS_FD"))
_LINK_FAST_KEYS = frozenset(["index", "state", "flags", "change"] + [key for key, _nla in _LINK_FAST_ATTRS])
_ADDR_FAST_KEYS = frozenset(("index", "address", "prefixlen", "broadcast"))
_BRPORT_FAST = (("mode", "IFLA_BRPORT_MODE"), ("isolated", "IFLA_BRPORT_ISOLATED"))
_BRPORT_FAST_KEYS = frozenset(["index"] + [key for key, _nla in _BRPORT_FAST])
# a bridge as net/link.py's ensure_bridge creates it
_BRIDGE_FAST_KEYS = frozenset(("ifname", "kind", "mtu", "br_vlan_filtering"))
# a unicast route as net/route.py adds it (no metrics, a main-range table)
_ROUTE_FAST_KEYS = frozenset(("family", "dst", "dst_len", "table", "proto", "type", "scope", "gateway", "oif", "priority"))
_ANY_DST = ("0.0.0.0", "::")


def _link_msg(kwarg: Dict[str, Any]) -> Any:
    msg = _pyroute2().link_request()
    flags, change = kwarg.get("flags", 0), kwarg.get("change", 0)
    state = kwarg.get("state")
    if state is not None:
        change |= IFF_UP
        flags = flags | IFF_UP if state == "up" else flags & ~IFF_UP
    msg["family"], msg["__align"], msg["ifi_type"] = 0, 0, 0
    msg["index"], msg["flags"], msg["change"] = kwarg.get("index", 0), flags, change
    msg["attrs"] = [[nla, kwarg[key]] for key, nla in _LINK_FAST_ATTRS if kwarg.get(key) is not None]
    return msg


def _addr_msg(kwarg: Dict[str, Any]) -> Any:
    msg = _pyroute2().addr_request()
    address = kwarg["address"]
    v6 = ":" in address
    msg["family"] = socket.AF_INET6 if v6 else socket.AF_INET
    msg["prefixlen"], msg["flags"], msg["scope"], msg["index"] = kwarg.get("prefixlen", 0), 0, 0, kwarg.get("index", 0)
    attrs = [["IFA_ADDRESS", address]]
    if kwarg.get("broadcast"):
        attrs.append(["IFA_BROADCAST", kwarg["broadcast"]])
    if not v6:
        attrs.append(["IFA_LOCAL", address])
    msg["attrs"] = attrs
    return msg


def _bridge_msg(kwarg: Dict[str, Any]) -> Any:
    msg = _link_msg({"ifname": kwarg["ifname"], "mtu": kwarg.get("mtu") or None})
    info: List[Any] = [["IFLA_INFO_KIND", "bridge"]]
    if kwarg.get("br_vlan_filtering") is not None:
        info.append(["IFLA_INFO_DATA", {"attrs": [["IFLA_BR_VLAN_FILTERING", kwarg["br_vlan_filtering"]]]}])
    msg["attrs"].append(["IFLA_LINKINFO", {"attrs": info}])
    return msg


def _brport_msg(kwarg: Dict[str, Any]) -> Any:
    msg = _link_msg({"index": kwarg.get("index", 0)})
    data = [(nla, kwarg[key]) for key, nla in _BRPORT_FAST if kwarg.get(key) is not None]
    msg["attrs"] = [["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "bridge_slave"], ("IFLA_INFO_SLAVE_DATA", {"attrs": data})]}]]
    return msg


def _route_fast(kwarg: Dict[str, Any]) -> bool:
    """Is this a route the fast path builds exactly as the filters would?"""
    if not _ROUTE_FAST_KEYS.issuperset(kwarg) or not isinstance(kwarg.get("proto"), int) or not isinstance(kwarg.get("type"), int):
        return False
    table = kwarg.get("table", 254)
    return isinstance(table, int) and 0 < table < 256 and kwarg.get("priority", 1) != 0 and (kwarg.get("dst_len") or kwarg.get("dst", "::") in _ANY_DST)


def _route_msg(kwarg: Dict[str, Any]) -> Any:
    msg = _pyroute2().route_request()
    table = kwarg.get("table", 254)
    msg["family"], msg["dst_len"], msg["src_len"], msg["tos"] = kwarg["family"], kwarg.get("dst_len", 0), 0, 0
    msg["table"], msg["proto"], msg["scope"], msg["type"], msg["flags"] = table, kwarg["proto"], kwarg.get("scope", 0), kwarg["type"], 0
    attrs: List[Any] = [["RTA_DST", kwarg["dst"]]] if kwarg.get("dst_len") else []
    attrs.append(["RTA_TABLE", table])
    for key, nla in (("gateway", "RTA_GATEWAY"), ("oif", "RTA_OIF"), ("priority", "RTA_PRIORITY")):
        if kwarg.get(key):
            attrs.append([nla, kwarg[key]])
    msg["attrs"] = attrs
    return msg


RTEXT_FILTER_SKIP_STATS = 1 << 3  # older kernels ignore bits they do not know


def _read_msg(kwarg: Dict[str, Any]) -> Any:
    msg = _link_msg({"index": kwarg.get("index", 0), "ifname": kwarg.get("ifname") or None})
    msg["attrs"].append(["IFLA_EXT_MASK", RTEXT_FILTER_SKIP_STATS])
    return msg


def _addr_dump_msg(kwarg: Dict[str, Any]) -> Any:
    msg = _pyroute2().addr_request()
    msg["family"], msg["prefixlen"], msg["flags"], msg["scope"], msg["index"] = kwarg["family"], 0, 0, 0, 0
    msg["attrs"] = []
    return msg


def _veth_msg(kwarg: Dict[str, Any]) -> Any:
    """A veth pair: `ifname` here, its peer `peer` created in the netns open at `peer_netns_fd`."""
    peer_attrs: List[Any] = [["IFLA_IFNAME", kwarg["peer"]]]
    attrs: List[Any] = [["IFLA_IFNAME", kwarg["ifname"]]]
    if kwarg.get("mtu"):
        attrs.append(["IFLA_MTU", kwarg["mtu"]])
        peer_attrs.append(["IFLA_MTU", kwarg["mtu"]])
    if kwarg.get("mac"):
        attrs.append(["IFLA_ADDRESS", kwarg["mac"]])
    peer_attrs.append(["IFLA_NET_NS_FD", kwarg["peer_netns_fd"]])
    info = {"attrs": [["IFLA_INFO_KIND", "veth"], ["IFLA_INFO_DATA", {"attrs": [["VETH_INFO_PEER", {"attrs": peer_attrs}]]}]]}
    msg = _link_msg({})
    msg["attrs"] = attrs + [["IFLA_LINKINFO", info]]
    return msg


# The fast path's requests as pyroute2 encoded them, by what they ask. A node
# asks the same things again and again (its bridge read and its MAC pinned,
# a pod's `eth0` read, its default route): each is encoded once, then sent
# as those bytes with the call's own sequence number and port id.
#
# What differs from pod to pod (a port's ifindex, the pod's address, the host
# veth's random name and the host netns fd: `_SLOTS`) is not part of what a
# request is kept by: it is written into the kept bytes where pyroute2 put
# it, in the primitive encoding pyroute2 uses for it (`_SLOT_BYTES`). Where
# that is, is proven when a request is first encoded: twice, with two
# different sentinel values in every slot; the sentinels' bytes must sit at
# the same offsets in both encodings, and the first encoding with the second
# sentinels' bytes written at those offsets must equal the second encoding.
# A request for which that does not hold is encoded by pyroute2 every time.
_ENCODED: Dict[Tuple[Any, ...], Any] = {}
_ENCODED_MAX = 512
NLMSG_SEQ_OFFSET = 8  # nlmsghdr: length, type, flags, then sequence number and port id


def _u32_bytes(value: Any) -> Optional[bytes]:
    # ifinfmsg's index is "i", ifaddrmsg's "I", IFLA_NET_NS_FD a uint32: one spelling for 0..2**31-1
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 31:
        return struct.pack("I", value)
    return None


def _name_bytes(value: Any) -> Optional[bytes]:
    # pyroute2's asciiz: the UTF-8 bytes, then NUL and padding (kept in the template: same length only)
    return value.encode("utf-8") if isinstance(value, str) and value and "\0" not in value else None


def _ip_bytes(value: Any) -> Optional[bytes]:
    # pyroute2's ipaddr: inet_pton of the address
    if not isinstance(value, str):
        return None
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    except (OSError, ValueError):
        return None


_SLOT_BYTES: Dict[str, Callable[[Any], Optional[bytes]]] = {"index": _u32_bytes, "peer_netns_fd": _u32_bytes, "peer": _name_bytes, "address": _ip_bytes}
_SENTINELS: Dict[Tuple[Callable[[Any], Optional[bytes]], int], Tuple[Any, Any]] = {
    (_u32_bytes, 4): (0x5AA55AA5, 0x3CC33CC3),
    (_ip_bytes, 4): ("198.51.100.126", "203.0.113.129"),
    (_ip_bytes, 16): ("2001:db8:7e7e:7e7e:7e7e:7e7e:7e7e:7e7e", "2001:db8:8181:8181:8181:8181:8181:8181"),
}


def _sentinels(to_bytes: Callable[[Any], Optional[bytes]], size: int) -> Optional[Tuple[Any, Any]]:
    if to_bytes is _name_bytes:
        return ("~" * size, "^" * size)
    return _SENTINELS.get((to_bytes, size))


def _offsets(data: bytes, needle: bytes) -> List[int]:
    out, at = [], data.find(needle)
    while at >= 0:
        out.append(at)
        at = data.find(needle, at + 1)
    return out


def _encode(build: Callable[[Dict[str, Any]], Any], kwarg: Dict[str, Any], msg_type: int, flags: int) -> bytes:
    """pyroute2's encoding of `build(kwarg)`, sequence number and port id 0."""
    msg = build(kwarg)
    header = msg["header"]
    header["type"], header["flags"], header["sequence_number"], header["pid"] = msg_type, flags, 0, 0
    msg.encode()
    return bytes(msg.data)


_Template = Tuple[bytes, Tuple[Tuple[str, Tuple[int, ...]], ...]]


def _template(build: Callable[[Dict[str, Any]], Any], kwarg: Dict[str, Any], slots: Dict[str, bytes], msg_type: int, flags: int) -> Optional[_Template]:
    """(the encoding with sentinels, where each slot's value goes), or None when not proven (see above)."""
    first, second = dict(kwarg), dict(kwarg)
    pairs = {}
    for key, value in slots.items():
        pair = _sentinels(_SLOT_BYTES[key], len(value))
        if pair is None:
            return None
        first[key], second[key] = pair
        pairs[key] = (_SLOT_BYTES[key](pair[0]), _SLOT_BYTES[key](pair[1]))
    data_a, data_b = _encode(build, first, msg_type, flags), _encode(build, second, msg_type, flags)
    if len(data_a) != len(data_b):
        return None
    where = []
    taken: set = set()
    patched = bytearray(data_a)
    for key, (bytes_a, bytes_b) in pairs.items():
        offsets = _offsets(data_a, bytes_a)
        if not offsets or offsets != _offsets(data_b, bytes_b):
            return None
        spans = {offset + i for offset in offsets for i in range(len(bytes_a))}
        if spans & taken:  # two slots' sentinels in the same bytes: not told apart
            return None
        taken |= spans
        for offset in offsets:
            patched[offset: offset + len(bytes_b)] = bytes_b
        where.append((key, tuple(offsets)))
    if bytes(patched) != data_b:
        return None
    return data_a, tuple(where)


# the slots of each fast-path request (see above)
_SLOTS: Dict[Callable[[Dict[str, Any]], Any], Tuple[str, ...]] = {
    _link_msg: ("index",),
    _read_msg: ("index",),
    _brport_msg: ("index",),
    _addr_msg: ("index", "address"),
    _veth_msg: ("peer", "peer_netns_fd"),
}
_UNPROVEN = (b"", ())


def _keep(key: Tuple[Any, ...], kept: Any) -> None:
    if len(_ENCODED) >= _ENCODED_MAX:
        _ENCODED.clear()
    _ENCODED[key] = kept


def _encoded(build: Callable[[Dict[str, Any]], Any], kwarg: Dict[str, Any], msg_type: int, flags: int) -> Any:
    """The request `build(kwarg)` encoded (sequence number and port id 0), from _ENCODED when asked before.

    bytes, or a fresh bytearray when slot values were written into kept bytes.
    """
    slots: Dict[str, bytes] = {}
    for name in _SLOTS.get(build, ()):
        if name in kwarg:
            value = _SLOT_BYTES[name](kwarg[name])
            if value is None:  # not a value the slot takes: the plain way
                slots = {}
                break
            slots[name] = value
    if slots:
        try:
            shape: Optional[Tuple[Any, ...]] = (build, msg_type, flags, tuple(sorted(item for item in kwarg.items() if item[0] not in slots)),
                                                tuple((name, len(value)) for name, value in slots.items()))
            kept = _ENCODED.get(shape)  # type: ignore[arg-type]
        except TypeError:  # an unhashable value: the plain way
            shape, kept = None, _UNPROVEN
        if kept is None and shape is not None:
            kept = _template(build, kwarg, slots, msg_type, flags) or _UNPROVEN
            _keep(shape, kept)
        if kept is not _UNPROVEN:
            out = bytearray(kept[0])
            for name, offsets in kept[1]:
                value = slots[name]
                for offset in offsets:
                    out[offset: offset + len(value)] = value
            return out
    try:
        key: Optional[Tuple[Any, ...]] = (build, msg_type, flags, tuple(sorted(kwarg.items())))
        data = _ENCODED.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable value: encode, do not keep
        key, data = None, None
    if data is None:
        data = _encode(build, kwarg, msg_type, flags)
        if key is not None:
            _keep(key, data)
    return data


# The attributes LinkInfo reads (net/link.py), with pyroute2's decoders.
_BRIEF_NLAS = (
    (1, "IFLA_ADDRESS", "l2addr"),
    (3, "IFLA_IFNAME", "asciiz"),
    (4, "IFLA_MTU", "uint32"),
    (5, "IFLA_LINK", "uint32"),
    (10, "IFLA_MASTER", "uint32"),
    (16, "IFLA_OPERSTATE", "state"),
    (18, "IFLA_LINKINFO", "ifinfo"),
)
_BRIEF_TYPES = frozenset(nla_type for nla_type, _name, _fmt in _BRIEF_NLAS)
IFLA_LINKINFO, IFLA_INFO_KIND = 18, 1
IFINFOMSG_LEN = 16


def _kept_attrs(data: bytes, start: int, end: int, types: "frozenset[int]") -> List[bytes]:
    """The attributes in data[start:end] whose type is in `types`, each with its padding."""
    kept = []
    offset = start
    while offset + 4 <= end:
        nla_len, nla_type = struct.unpack_from("HH", data, offset)
        if nla_len < 4:
            break
        step = (nla_len + 3) & ~3
        if nla_type & 0x3FFF in types:
            if nla_type & 0x3FFF == IFLA_LINKINFO:
                # only the kind: a bridge's IFLA_INFO_DATA or a port's
                # IFLA_INFO_SLAVE_DATA is some forty attributes to decode
                kind = b"".join(_kept_attrs(data, offset + 4, offset + nla_len, _KIND_ONLY))
                kept.append(struct.pack("HH", 4 + len(kind), nla_type) + kind)
            else:
                kept.append(data[offset: offset + step])
        offset += step
    return kept


_KIND_ONLY = frozenset((IFLA_INFO_KIND,))


def _brief(data: bytes) -> bytes:
    """An RTM_NEWLINK message with only the _BRIEF_NLAS attributes, and of
    IFLA_LINKINFO only the kind (the netlink and ifinfomsg headers as they
    are, the lengths fixed)."""
    length = struct.unpack_from("I", data, 0)[0]
    start = 16 + IFINFOMSG_LEN
    out = b"".join([data[:start]] + _kept_attrs(data, start, min(length, len(data)), _BRIEF_TYPES))
    return struct.pack("I", len(out)) + out[4:]


class BriefAnswer(dict):
    """A link answer as LinkInfo reads it, decoded without pyroute2's message machinery (see `_brief_answer`).

    The parts of pyroute2's message interface net/link.py uses: `msg["header"]`,
    `msg["index"]`, `msg["flags"]`, `msg["attrs"]` as (name, value) pairs in
    the message's order, and `get_attr`.
    """

    def get_attr(self, name: str, default: Any = None) -> Any:
        for attr, value in self["attrs"]:
            if attr == name:
                return value
        return default


def _asciiz(raw: bytes) -> Optional[str]:
    # pyroute2's asciiz: the payload with NULs stripped at both ends; only plain ASCII here
    value = raw.strip(b"\0")
    return value.decode("ascii") if value.isascii() and b"\0" not in value else None


def _u32(raw: bytes) -> Optional[int]:
    return struct.unpack("I", raw)[0] if len(raw) == 4 else None


def _l2addr(raw: bytes) -> Optional[str]:
    # pyroute2's l2addr: six bytes as lower-case hex pairs (another length: pyroute2 decides)
    return "%02x:%02x:%02x:%02x:%02x:%02x" % struct.unpack("6B", raw) if len(raw) == 6 else None


def _kind_only(raw: bytes) -> Optional[BriefAnswer]:
    # IFLA_LINKINFO: of its attributes only IFLA_INFO_KIND, as `_kept_attrs` keeps
    attrs: List[Tuple[str, Any]] = []
    offset = 0
    while offset + 4 <= len(raw):
        nla_len, nla_type = struct.unpack_from("HH", raw, offset)
        if nla_len < 4 or offset + nla_len > len(raw):
            return None
        if nla_type & 0x3FFF == IFLA_INFO_KIND and not attrs:
            kind = _asciiz(raw[offset + 4: offset + nla_len])
            if kind is None:
                return None
            attrs.append(("IFLA_INFO_KIND", kind))
        offset += (nla_len + 3) & ~3
    return BriefAnswer(attrs=attrs)


_BRIEF_DECODERS: Dict[int, Tuple[str, Callable[[bytes], Any]]] = {
    1: ("IFLA_ADDRESS", _l2addr),
    3: ("IFLA_IFNAME", _asciiz),
    4: ("IFLA_MTU", _u32),
    5: ("IFLA_LINK", _u32),
    10: ("IFLA_MASTER", _u32),
    18: ("IFLA_LINKINFO", _kind_only),
}
IFLA_OPERSTATE = 16


def _brief_answer(data: bytes, states: Dict[int, str]) -> Optional[BriefAnswer]:
    """An RTM_NEWLINK answer as LinkInfo reads it: the ifinfomsg header's index and
    flags and the _BRIEF_NLAS attributes (the first of each), each value as
    pyroute2's decoder for it gives it (`states`: pyroute2's operstate names).

    None for anything not in the plain shapes those decoders' rules are
    written out for here (a name that is not plain ASCII, an address that is
    not six bytes, an unknown operstate, a malformed attribute): pyroute2
    decodes those (BriefMarshal). tests/unit/test_rtnl_messages.py holds both
    ways to the same LinkInfo.
    """
    length, mtype, flags, seq, pid = struct.unpack_from("IHHII", data, 0)
    end = min(length, len(data))
    if mtype != RTM_NEWLINK or end < 16 + IFINFOMSG_LEN:
        return None
    family, ifi_type, index, ifi_flags, change = struct.unpack_from("BxHiII", data, 16)
    attrs: List[Tuple[str, Any]] = []
    seen = set()
    offset = 16 + IFINFOMSG_LEN
    while offset + 4 <= end:
        nla_len, nla_type = struct.unpack_from("HH", data, offset)
        if nla_len < 4 or offset + nla_len > end:
            return None
        nla_type &= 0x3FFF
        if nla_type in _BRIEF_TYPES and nla_type not in seen:
            seen.add(nla_type)
            raw = data[offset + 4: offset + nla_len]
            if nla_type == IFLA_OPERSTATE:
                name, value = "IFLA_OPERSTATE", states.get(raw[0]) if len(raw) == 1 else None
            else:
                name, decode = _BRIEF_DECODERS[nla_type]
                value = decode(raw)
            if value is None:
                return None
            attrs.append((name, value))
        offset += (nla_len + 3) & ~3
    header = {"length": length, "type": mtype, "flags": flags, "sequence_number": seq, "pid": pid, "error": None}
    return BriefAnswer(attrs=attrs, header=header, family=family, ifi_type=ifi_type, index=index, flags=ifi_flags, change=change,
                       event="RTM_NEWLINK")


_PR: Optional[SimpleNamespace] = None
_FILTERS: Optional[Dict[str, Callable[[str], List[Any]]]] = None


def _pyroute2() -> SimpleNamespace:
    """pyroute2's message classes and a marshal decoding them, imported once.

    The marshal is pyroute2's base `Marshal` with the message types net/
    meets (links, addresses, routes, errors): not `MarshalRtnl`, whose module
    imports pyroute2's socket layer (`nlsocket`: asyncio, ssl,
    multiprocessing) and every other rtnetlink message class (tc, neighbours,
    rules, ...), more than an exec'd plugin's whole work costs.
    """
    global _PR
    if _PR is not None:
        return _PR
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.marshal import Marshal
    from pyroute2.netlink.rtnl import RTM_VALUES
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg, state_by_code
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    class RtnlMarshal(Marshal):
        """MarshalRtnl's decoding for the messages net/ asks for."""

        msg_map = {
            **dict.fromkeys((RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK), ifinfmsg),
            **dict.fromkeys((RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR), ifaddrmsg),
            **dict.fromkeys((RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE), rtmsg),
        }

        def fix_message(self, msg: Any) -> None:
            event = RTM_VALUES.get(msg["header"]["type"])  # as MarshalRtnl does
            if event is not None:
                msg["event"] = event

    class DirectFields:
        """A request message whose fixed header fields are read straight from
        the message. pyroute2's ft_encode reads each one with `msg.get(name)`,
        which first searches the attributes for one of that name (none of our
        requests carries one): a third of the cost of encoding a request."""

        def ft_encode(self, offset: int) -> Tuple[int, int]:
            zstring = getattr(self, "zstring", 0)
            for name, fmt in self.fields:  # type: ignore[attr-defined]
                value = dict.get(self, name)  # type: ignore[call-overload]
                if value is None:
                    value = self.defaults.get(name, 0)  # type: ignore[attr-defined]
                offset = self.encode_field(fmt, self.data, offset, value, zstring)  # type: ignore[attr-defined]
            diff = 0
            if self.align > 0:  # type: ignore[attr-defined]
                diff = ((offset + self.align - 1) & ~(self.align - 1)) - offset  # type: ignore[attr-defined]
                offset += diff
                self.data.extend([0] * diff)  # type: ignore[attr-defined]
            return offset, diff

    class LinkRequest(DirectFields, ifinfmsg):
        pass

    class AddrRequest(DirectFields, ifaddrmsg):
        pass

    class RouteRequest(DirectFields, rtmsg):
        pass

    class BriefLink(ifinfmsg):
        """A link message decoding only what net/link.py's LinkInfo reads."""

        nla_map = _BRIEF_NLAS

    class BriefMarshal(RtnlMarshal):
        msg_map = {**RtnlMarshal.msg_map, RTM_NEWLINK: BriefLink}

        def parse(self, data: bytes, *args: Any, **kwarg: Any) -> Any:
            if len(data) >= 16 + IFINFOMSG_LEN and struct.unpack_from("H", data, 4)[0] == RTM_NEWLINK:
                answer = _brief_answer(data, state_by_code)
                if answer is not None:
                    return iter((answer,))
                data = _brief(data)
            return super().parse(data, *args, **kwarg)

    _PR = SimpleNamespace(
        NetlinkError=NetlinkError,
        ifinfmsg=ifinfmsg,
        ifaddrmsg=ifaddrmsg,
        rtmsg=rtmsg,
        link_request=LinkRequest,
        addr_request=AddrRequest,
        route_request=RouteRequest,
        Marshal=RtnlMarshal,
        brief_marshal=BriefMarshal(),
    )
    return _PR


def _filters() -> Dict[str, Callable[[str], List[Any]]]:
    """pyroute2's request filters per kind of request, imported on first use
    (the hot requests are built without them)."""
    global _FILTERS
    if _FILTERS is None:
        from pyroute2.requests import address, bridge, link, route

        _FILTERS = {
            "link": lambda command: [link.LinkFieldFilter(), link.LinkIPRouteFilter(command)],
            "addr": lambda command: [address.AddressFieldFilter(), address.AddressIPRouteFilter(command)],
            "route": lambda command: [route.RouteFieldFilter(add_defaults=(command not in ("dump", "show"))), route.RouteIPRouteFilter(command)],
            "brport": lambda command: [bridge.BridgePortFieldFilter(command)],
            "vlan_filter": lambda command: [bridge.BridgeFieldFilter(), bridge.BridgeIPRouteFilter(command)],
        }
    return _FILTERS


def preload() -> None:
    """Import now what requests import on first use: pyroute2's message
    classes and marshal, its request filters and their processor."""
    _pyroute2()
    _filters()
    from pyroute2.requests.main import RequestProcessor  # noqa: F401


def _processor(mode: str, command: str, query: Dict[str, Any], parameters: Optional[Dict[str, Any]] = None) -> Any:
    """pyroute2's request filters for one kind of request (IPRoute's get_arguments_processor)."""
    from pyroute2.requests.main import RequestProcessor

    processor = RequestProcessor(context=query, prime=query, parameters=parameters)
    for rf in _filters()[mode](command):
        processor.add_filter(rf)
    processor.finalize()
    return processor


def _dump_filter(mode: str, command: str, query: Dict[str, Any], parameters: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict[str, Any]]:
    """(filter for the answers, what goes into the request), as IPRoute's get_dump_filter."""
    if "dump_filter" in query:
        return query.pop("dump_filter"), query
    if command not in ("dump", "show"):
        return None, query
    request = {key: query.pop(key) for key in ("family", "ext_mask", "dump_flags") if key in query}
    if "match" in query:
        query = query["match"]
    if callable(query):
        return query, request
    if not query:
        return None, request
    return _processor(mode, command, dict(query), parameters), request


def _matches(dump_filter: Any, msg: Any) -> bool:
    if dump_filter is None:
        return True
    if callable(dump_filter):
        return bool(dump_filter(msg))
    for key, want in dump_filter.items():
        if not isinstance(key, (str, tuple)):
            continue
        value = msg.get(key)
        if value is not None and callable(want):
            if not want(value):
                return False
        elif want != value:
            return False
    return True


class Rtnl:
    """One NETLINK_ROUTE socket in the netns the calling thread is in now; synchronous; no event loop."""

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            sock.bind((0, 0))
            self.pid = sock.getsockname()[0]
        except OSError:
            sock.close()
            raise
        self.sock: Optional[socket.socket] = sock
        self.marshal = _pyroute2().Marshal()
        self.seq = 0
        self.status = {"strict_check": False}

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the transport ------------------------------------------------------

    def request(self, msg: Any, msg_type: int, flags: int, dump_filter: Any = None, marshal: Any = None, only_index: int = 0) -> List[Any]:
        """Send one message (a pyroute2 message, or bytes from _encoded); every answer to it, filtered; NetlinkError on a NACK."""
        if self.sock is None:
            raise OSError(errno.EBADF, "rtnetlink socket closed")
        self.seq = self.seq % 0x7FFFFFFF + 1
        seq = self.seq
        if isinstance(msg, (bytes, bytearray)):  # encoded by _encoded: only the sequence number and port id are ours
            data = msg if isinstance(msg, bytearray) else bytearray(msg)  # a bytearray from _encoded is this call's own
            struct.pack_into("II", data, NLMSG_SEQ_OFFSET, seq, self.pid)
        else:
            header = msg["header"]
            header["type"] = msg_type
            header["flags"] = flags
            header["sequence_number"] = seq
            header["pid"] = self.pid
            msg.encode()
            data = msg.data
        self.sock.send(data)
        out: List[Any] = []
        while True:
            data = self.sock.recv(RECV_SIZE)
            done = False
            for answer in self._parse(data, seq, marshal or self.marshal, only_index):
                if answer is None:
                    done = True  # the ACK
                    break
                mtype = answer["header"]["type"]
                error = answer["header"].get("error")
                if error is not None:
                    raise error
                if mtype in (NLMSG_DONE, NLMSG_ERROR):
                    done = True  # end of a dump, or the ACK
                    break
                if _matches(dump_filter, answer):
                    out.append(answer)
                if not flags & NLM_F_ACK and not answer["header"]["flags"] & NLM_F_MULTI:
                    done = True
            if done:
                return out

    def _parse(self, data: bytes, seq: int, marshal: Any, only_index: int = 0) -> Iterable[Any]:
        """The messages answering `seq` (others are late answers to an abandoned request); None for a plain ACK
        or the plain end of a dump. With `only_index`, a link's or address's answer about another ifindex is
        skipped undecoded (ifinfmsg's and ifaddrmsg's index, read from the header as the kernel wrote it)."""
        offset = 0
        while offset + 16 <= len(data):
            length, mtype, _flags, msg_seq = struct.unpack_from("IHHI", data, offset)
            if length < 16:
                return
            if msg_seq == seq:
                if mtype in (NLMSG_ERROR, NLMSG_DONE) and length >= 20 and struct.unpack_from("i", data, offset + 16)[0] == 0:
                    yield None  # success, or a dump's end: nothing to decode (errors go to pyroute2, for its NetlinkError)
                elif only_index and mtype in (RTM_NEWLINK, RTM_NEWADDR) and length >= 24 and struct.unpack_from("I", data, offset + 20)[0] != only_index:
                    pass
                else:
                    yield from marshal.parse(data[offset: offset + length])
            offset += (length + 3) & ~3

    def _fast(self, build: Callable[[Dict[str, Any]], Any], kwarg: Dict[str, Any], command: str, commands: Dict[str, Tuple[int, str]],
              dump_filter: Any = None, marshal: Any = None, only_index: int = 0) -> List[Any]:
        msg_type, mode = commands[command]
        flags = _FLAGS[mode]
        if only_index:
            return self.request(_encoded(build, kwarg, msg_type, flags), msg_type, flags, dump_filter, marshal, only_index=only_index)
        return self.request(_encoded(build, kwarg, msg_type, flags), msg_type, flags, dump_filter, marshal)

    def _run(self, msg: Any, command: str, commands: Dict[str, Tuple[int, str]], request: Any, dump_filter: Any = None) -> List[Any]:
        if command not in commands:
            raise TypeError("command %r not supported" % command)
        msg_type, mode = commands[command]
        if request is not None:
            for name, _fmt in msg.fields:
                msg[name] = request.get_value(name, default=0, mode="field")
            for key, value in request.items():
                nla = type(msg).name2nla(key)
                if msg.valid_nla(nla) and value is not None:
                    msg["attrs"].append([nla, value])
            if "attrs" in request:
                msg["attrs"].extend(request["attrs"])
        return self.request(msg, msg_type, _FLAGS[mode], dump_filter)

    # -- IPRoute's API, the part net/ uses ------------------------------------

    def link(self, command: str, **kwarg: Any) -> List[Any]:
        if command in _LINK_FAST_COMMANDS and _LINK_FAST_KEYS.issuperset(kwarg):
            return self._fast(_link_msg, kwarg, command, _LINK_COMMANDS)
        if command == "add" and kwarg.get("kind") == "bridge" and _BRIDGE_FAST_KEYS.issuperset(kwarg) and kwarg.get("ifname"):
            return self._fast(_bridge_msg, kwarg, command, _LINK_COMMANDS)
        commands = kwarg.pop("command_map", _LINK_COMMANDS)
        if isinstance(kwarg.get("match"), str):
            kwarg["match"] = {"ifname": kwarg["match"]}
        dump_filter, kwarg = _dump_filter("link", command, kwarg)
        request = kwarg.pop("request_filter", None) or _processor("link", command, kwarg)
        return self._run(_pyroute2().ifinfmsg(), command, commands, request, dump_filter)

    def addr(self, command: str, **kwarg: Any) -> List[Any]:
        if command == "add" and _ADDR_FAST_KEYS.issuperset(kwarg) and "address" in kwarg:
            return self._fast(_addr_msg, kwarg, command, _ADDR_COMMANDS)
        dump_filter, kwarg = _dump_filter("addr", command, kwarg)
        return self._run(_pyroute2().ifaddrmsg(), command, _ADDR_COMMANDS, _processor("addr", command, kwarg), dump_filter)

    def route(self, command: str, **kwarg: Any) -> List[Any]:
        if command == "add" and _route_fast(kwarg):
            return self._fast(_route_msg, kwarg, command, _ROUTE_COMMANDS)
        if command in ("add", "set", "replace", "change", "append"):
            kwarg["proto"] = kwarg.get("proto", "static") or "static"
            kwarg["type"] = kwarg.get("type", "unicast") or "unicast"
        parameters = {"strict_check": False}
        dump_filter, kwarg = _dump_filter("route", command, kwarg, parameters)
        return self._run(_pyroute2().rtmsg(), command, _ROUTE_COMMANDS, _processor("route", command, kwarg, parameters), dump_filter)

    def brport(self, command: str, **kwarg: Any) -> List[Any]:
        if command == "set" and _BRPORT_FAST_KEYS.issuperset(kwarg):
            return self._fast(_brport_msg, kwarg, "set", _LINK_COMMANDS)
        if command == "set":
            query = {"index": kwarg.pop("index", 0), "kind": "bridge_slave"}
            query.update(kwarg)
            return self.link("set", **query)
        if command not in ("dump", "show"):
            raise TypeError("command not supported")
        dump_filter, kwarg = _dump_filter("brport", command, kwarg)
        return self._run(_pyroute2().ifinfmsg(), command, {command: (RTM_GETLINK, "dump")}, _processor("brport", command, kwarg), dump_filter)

    def vlan_filter(self, command: str, **kwarg: Any) -> List[Any]:
        kwarg["family"] = AF_BRIDGE
        request = _processor("vlan_filter", command, kwarg)
        return self._run(_pyroute2().ifinfmsg(), command, _VLAN_COMMANDS, request, None)

    def add_veth(self, ifname: str, peer: str, peer_netns_fd: int, mtu: int = 0, mac: str = "") -> None:
        """Create veth `ifname` here with its peer `peer` created directly in the netns open at `peer_netns_fd`.

        Both ends start down: the kernel cannot open a veth before its peer
        is linked (ENOTCONN), and NLM_F_ECHO with the peer in another netns
        fails the same way, so the caller reads the new link.
        """
        kwarg = {"ifname": ifname, "peer": peer, "peer_netns_fd": peer_netns_fd, "mtu": mtu, "mac": mac}
        self._fast(_veth_msg, kwarg, "add", _LINK_COMMANDS)

    def read_link(self, index: int = 0, ifname: str = "") -> List[Any]:
        """`link("get", ...)` for net/link.py's LinkInfo: the kernel leaves the
        statistics out, and only the attributes LinkInfo reads are decoded (a
        link message carries some forty): a plain answer into a BriefAnswer
        (`_brief_answer`), any other by pyroute2 from a buffer holding only
        those attributes."""
        return self._fast(_read_msg, {"index": index, "ifname": ifname}, "get", _LINK_COMMANDS, marshal=_pyroute2().brief_marshal)

    def get_links(self, *indexes: int, **kwarg: Any) -> List[Any]:
        if not indexes or indexes[0] in (0, "all"):
            return self.link("dump", **kwarg)
        out: List[Any] = []
        for index in indexes:
            out.extend(self.link("get", index=index, **kwarg))
        return out

    def get_addr(self, family: int = socket.AF_UNSPEC, match: Optional[Callable[[Any], bool]] = None, **kwarg: Any) -> List[Any]:
        if match is None and set(kwarg) <= {"index"}:
            # the one dump net/ makes (a link's addresses): no request filters
            index = kwarg.get("index")
            match_index = (lambda answer: answer["index"] == index) if index else None
            only_index = index if isinstance(index, int) and not isinstance(index, bool) and index > 0 else 0  # the others undecoded
            return self._fast(_addr_dump_msg, {"family": family}, "dump", _ADDR_COMMANDS, match_index, only_index=only_index)
        return self.addr("dump", family=family, match=match or kwarg)

    def get_routes(self, family: int = 255, match: Optional[Callable[[Any], bool]] = None, **kwarg: Any) -> List[Any]:
        if isinstance(kwarg.get("dst"), str):
            return self.route("get", dst=kwarg["dst"])
        return self.route("dump", family=family, match=match or kwarg)

    def get_vlans(self, **kwarg: Any) -> List[Any]:
        return self.link("dump", family=AF_BRIDGE, ext_mask=2, match=kwarg)

    def link_lookup(self, **kwarg: Any) -> List[int]:
        try:
            return [msg["index"] for msg in self.link("get", **kwarg)][:1]
        except _pyroute2().NetlinkError:
            return []

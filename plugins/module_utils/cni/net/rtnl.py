# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A synchronous rtnetlink socket on pyroute2's messages: IPRoute's calls without its event loop.

pyroute2 0.9's IPRoute runs every call through asyncio: a new event loop
and transport per call (about 70% of a bridge ADD's time in a warm agent),
and its socket lives in a thread-local, so a handle made in one thread and
used from another silently opens a second socket wherever *that* thread is.
`Rtnl` keeps pyroute2 as the netlink library (its request filters encode
the messages, its message classes and marshal decode the answers) and
replaces only the transport: one plain NETLINK_ROUTE socket, opened in the
network namespace the calling thread is in when `Rtnl()` runs, and bound to
that namespace for its whole life, whichever thread uses it later.

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

from pyroute2.netlink import NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_MULTI, NLM_F_REPLACE, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    RTM_SETLINK,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.rtmsg import rtmsg
from pyroute2.requests.address import AddressFieldFilter, AddressIPRouteFilter
from pyroute2.requests.bridge import BridgeFieldFilter, BridgeIPRouteFilter, BridgePortFieldFilter
from pyroute2.requests.link import LinkFieldFilter, LinkIPRouteFilter
from pyroute2.requests.main import RequestProcessor
from pyroute2.requests.route import RouteFieldFilter, RouteIPRouteFilter

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


def _filters(mode: str, command: str) -> List[Any]:
    """pyroute2's request filters for one kind of request (IPRoute's get_default_request_filters)."""
    if mode == "link":
        return [LinkFieldFilter(), LinkIPRouteFilter(command)]
    if mode == "addr":
        return [AddressFieldFilter(), AddressIPRouteFilter(command)]
    if mode == "route":
        return [RouteFieldFilter(add_defaults=(command not in ("dump", "show"))), RouteIPRouteFilter(command)]
    if mode == "brport":
        return [BridgePortFieldFilter(command)]
    if mode == "vlan_filter":
        return [BridgeFieldFilter(), BridgeIPRouteFilter(command)]
    raise ValueError(mode)


def _processor(mode: str, command: str, query: Dict[str, Any], parameters: Optional[Dict[str, Any]] = None) -> RequestProcessor:
    processor = RequestProcessor(context=query, prime=query, parameters=parameters)
    for rf in _filters(mode, command):
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
        self.marshal = MarshalRtnl()
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

    def request(self, msg: Any, msg_type: int, flags: int, dump_filter: Any = None) -> List[Any]:
        """Send one encoded-on-the-fly message; every answer to it, filtered; NetlinkError on a NACK."""
        if self.sock is None:
            raise OSError(errno.EBADF, "rtnetlink socket closed")
        self.seq = self.seq % 0x7FFFFFFF + 1
        seq = self.seq
        header = msg["header"]
        header["type"] = msg_type
        header["flags"] = flags
        header["sequence_number"] = seq
        header["pid"] = self.pid
        msg.encode()
        self.sock.send(msg.data)
        out: List[Any] = []
        while True:
            data = self.sock.recv(RECV_SIZE)
            done = False
            for answer in self._parse(data, seq):
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

    def _parse(self, data: bytes, seq: int) -> Iterable[Any]:
        offset = 0
        while offset + 16 <= len(data):
            length, _mtype, _flags, msg_seq = struct.unpack_from("IHHI", data, offset)
            if length < 16:
                return
            if msg_seq == seq:  # anything else is a late answer to an abandoned request
                for msg in self.marshal.parse(data[offset: offset + length]):
                    yield msg
            offset += (length + 3) & ~3

    def _run(self, msg: Any, command: str, commands: Dict[str, Tuple[int, str]], request: Optional[RequestProcessor], dump_filter: Any = None) -> List[Any]:
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
        commands = kwarg.pop("command_map", _LINK_COMMANDS)
        if isinstance(kwarg.get("match"), str):
            kwarg["match"] = {"ifname": kwarg["match"]}
        dump_filter, kwarg = _dump_filter("link", command, kwarg)
        request = kwarg.pop("request_filter", None) or _processor("link", command, kwarg)
        return self._run(ifinfmsg(), command, commands, request, dump_filter)

    def addr(self, command: str, **kwarg: Any) -> List[Any]:
        dump_filter, kwarg = _dump_filter("addr", command, kwarg)
        return self._run(ifaddrmsg(), command, _ADDR_COMMANDS, _processor("addr", command, kwarg), dump_filter)

    def route(self, command: str, **kwarg: Any) -> List[Any]:
        if command in ("add", "set", "replace", "change", "append"):
            kwarg["proto"] = kwarg.get("proto", "static") or "static"
            kwarg["type"] = kwarg.get("type", "unicast") or "unicast"
        parameters = {"strict_check": False}
        dump_filter, kwarg = _dump_filter("route", command, kwarg, parameters)
        return self._run(rtmsg(), command, _ROUTE_COMMANDS, _processor("route", command, kwarg, parameters), dump_filter)

    def brport(self, command: str, **kwarg: Any) -> List[Any]:
        if command == "set":
            query = {"index": kwarg.pop("index", 0), "kind": "bridge_slave"}
            query.update(kwarg)
            return self.link("set", **query)
        if command not in ("dump", "show"):
            raise TypeError("command not supported")
        dump_filter, kwarg = _dump_filter("brport", command, kwarg)
        return self._run(ifinfmsg(), command, {command: (RTM_GETLINK, "dump")}, _processor("brport", command, kwarg), dump_filter)

    def vlan_filter(self, command: str, **kwarg: Any) -> List[Any]:
        kwarg["family"] = AF_BRIDGE
        request = _processor("vlan_filter", command, kwarg)
        return self._run(ifinfmsg(), command, _VLAN_COMMANDS, request, None)

    def get_links(self, *indexes: int, **kwarg: Any) -> List[Any]:
        if not indexes or indexes[0] in (0, "all"):
            return self.link("dump", **kwarg)
        out: List[Any] = []
        for index in indexes:
            out.extend(self.link("get", index=index, **kwarg))
        return out

    def get_addr(self, family: int = socket.AF_UNSPEC, match: Optional[Callable[[Any], bool]] = None, **kwarg: Any) -> List[Any]:
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
        except NetlinkError:
            return []


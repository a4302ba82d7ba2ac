# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files a reboot must find, as one desired state (module cni_boot).

A node's pod network survives a reboot through four things on disk: a
sysctl.d drop-in (forwarding, applied by systemd-sysctl early at boot), the
JSON desired state the boot unit replays (boot.py reads it), the oneshot
boot unit itself, and its WantedBy link (what `systemctl enable` makes).
This module plans them together: observe each path, compare with the
desired bytes / link target / mode / owner, then write only what differs
(atomically, fileio.atomic_write). Nothing here calls systemctl: the unit
runs at the next boot; the state of this boot is made by cni_bridge and
cni_routes.

Pure Python (stdlib only): it runs on a stock node's python3.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..fileio import atomic_write
from .part import PartFailed

FILE_MODE = 0o644
DIR_MODE = 0o755
SYSCTL_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]+([./][A-Za-z0-9_\-]+)+$")
UNIT_NAME_RE = re.compile(r"^[A-Za-z0-9:_.\\@\-]+\.(service|target)$")
# cni_boot's options; also cni_node_state's O(boot)
ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["present", "absent"], default="present"),
    sysctls=dict(type="dict", default={}),
    sysctl_file=dict(type="path", default="/etc/sysctl.d/90-nodenet-cni.conf"),
    restore=dict(type="dict", default={}),
    restore_file=dict(type="path", default="/etc/nodenet/boot.json"),
    systemd_dir=dict(type="path", default="/etc/systemd/system"),
    unit=dict(type="str", default="nodenet-cni-boot.service"),
    command=dict(type="list", elements="str"),
    description=dict(type="str", default="nodenet.cni: restore the pod network (bridge, pod-subnet routes)"),
    before=dict(type="list", elements="str", default=["containerd.service", "crio.service", "kubelet.service"]),
    wanted_by=dict(type="str", default="multi-user.target"),
)
REQUIRED_IF = [("state", "present", ["command"])]

HEADER = "Written by nodenet.cni (module cni_boot)"


class BootFilesError(Exception):
    """Bad input, naming the option (a module fails with it, changing nothing)."""

    def __init__(self, option: str, msg: str) -> None:
        super().__init__("%s: %s" % (option, msg))
        self.option = option
        self.msg = "%s: %s" % (option, msg)


@dataclass(frozen=True)
class Desired:
    """One path's desired state: a regular file with `content`, a symlink to
    `target`, or a directory; `None` for all three means absent."""

    path: str
    kind: str  # file | link | dir | absent
    content: bytes = b""
    target: str = ""
    mode: int = FILE_MODE


@dataclass
class Observed:
    path: str
    kind: str  # file | link | dir | absent | other
    content: bytes = b""
    target: str = ""
    mode: int = 0
    uid: int = -1
    gid: int = -1


@dataclass
class Change:
    desired: Desired
    observed: Observed
    reasons: List[str] = field(default_factory=list)

    @property
    def action(self) -> str:
        if self.desired.kind == "absent":
            return "removed"
        return "created" if self.observed.kind == "absent" else "updated"


# -- validation and rendering (pure) -------------------------------------------------------------


def _scalar(option: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if not isinstance(value, (int, str)) or isinstance(value, str) and ("\n" in value or value.strip() == ""):
        raise BootFilesError(option, "must be a number or a one-line string, got %r" % (value,))
    return str(value).strip()


def render_sysctls(sysctls: Mapping[str, Any]) -> bytes:
    """A sysctl.d drop-in: `name = value`, one a line, sorted (stable bytes)."""
    lines = ["# %s: pods reach other nodes through this node." % HEADER]
    for name in sorted(sysctls):
        if not isinstance(name, str) or not SYSCTL_NAME_RE.fullmatch(name):
            raise BootFilesError("sysctls", "%r is not a sysctl name (like net.ipv4.ip_forward)" % (name,))
        lines.append("%s = %s" % (name, _scalar("sysctls.%s" % name, sysctls[name])))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _check_restore(restore: Mapping[str, Any]) -> None:
    """The shape boot.restore reads, checked here so a bad state never reaches a boot."""
    unknown = sorted(set(restore) - {"bridge", "routes"})
    if unknown:
        raise BootFilesError("restore", "unknown key(s) %s; only bridge and routes" % ", ".join(unknown))
    bridge = restore.get("bridge")
    if bridge is not None:
        if not isinstance(bridge, Mapping) or not isinstance(bridge.get("name"), str) or not bridge.get("name"):
            raise BootFilesError("restore.bridge", "must be a dict with a name (the pod bridge)")
        for addr in bridge.get("addresses") or []:
            try:
                ipaddress.ip_interface(addr)
            except (TypeError, ValueError):
                raise BootFilesError("restore.bridge.addresses", "%r is not an address with a prefix length" % (addr,)) from None
        mtu = bridge.get("mtu")
        if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535):
            raise BootFilesError("restore.bridge.mtu", "must be null or 68-65535, got %r" % (mtu,))
    routes = restore.get("routes")
    if routes is not None:
        if not isinstance(routes, Mapping):
            raise BootFilesError("restore.routes", "must be a dict (protocol, table, routes)")
        for key in ("protocol", "table"):
            if key in routes and (isinstance(routes[key], bool) or not isinstance(routes[key], int)):
                raise BootFilesError("restore.routes.%s" % key, "must be an integer, got %r" % (routes[key],))
        for route in routes.get("routes") or []:
            try:
                subnet = ipaddress.ip_network(route["subnet"])
                via = ipaddress.ip_address(route["via"])
            except (KeyError, TypeError, ValueError):
                raise BootFilesError("restore.routes.routes", "%r needs a subnet (host bits zero) and a via address" % (route,)) from None
            if subnet.version != via.version:
                raise BootFilesError("restore.routes.routes", "%s via %s mixes address families" % (subnet, via))


def render_restore(restore: Mapping[str, Any]) -> bytes:
    _check_restore(restore)
    return (json.dumps(restore, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _exec_arg(arg: str) -> str:
    # systemd expands %-specifiers and $VARIABLES in ExecStart; the quoting itself is shell-like
    return shlex.quote(arg).replace("%", "%%").replace("$", "$$")


def render_unit(command: Sequence[str], description: str, before: Sequence[str], wanted_by: str) -> bytes:
    """The oneshot boot unit: after the network is online, before the runtimes."""
    if not command or not all(isinstance(a, str) and a and "\n" not in a for a in command):
        raise BootFilesError("command", "must be the non-empty argv of the restore command (one-line strings)")
    if not os.path.isabs(command[0]):
        raise BootFilesError("command", "its first element must be an absolute path (systemd runs no PATH search), got %r" % command[0])
    if "\n" in description:
        raise BootFilesError("description", "must be one line")
    for name in before:
        if not UNIT_NAME_RE.fullmatch(name):
            raise BootFilesError("before", "%r is not a unit name" % (name,))
    lines = [
        "# %s; do not edit." % HEADER,
        "[Unit]",
        "Description=%s" % description,
        "Wants=network-online.target",
        "After=network-online.target",
    ]
    if before:
        lines.append("Before=%s" % " ".join(before))
    lines += ["", "[Service]", "Type=oneshot", "RemainAfterExit=yes", "ExecStart=%s" % " ".join(_exec_arg(a) for a in command)]
    if wanted_by:
        lines += ["", "[Install]", "WantedBy=%s" % wanted_by]
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass
class BootSpec:
    state: str = "present"
    sysctl_file: str = "/etc/sysctl.d/90-nodenet-cni.conf"
    sysctls: Dict[str, Any] = field(default_factory=dict)
    restore_file: str = "/etc/nodenet/boot.json"
    restore: Dict[str, Any] = field(default_factory=dict)
    systemd_dir: str = "/etc/systemd/system"
    unit: str = "nodenet-cni-boot.service"
    command: List[str] = field(default_factory=list)
    description: str = "nodenet.cni: restore the pod network (bridge, pod-subnet routes)"
    before: List[str] = field(default_factory=lambda: ["containerd.service", "crio.service", "kubelet.service"])
    wanted_by: str = "multi-user.target"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "BootSpec":
        spec = cls(**{k: params[k] for k in cls.__dataclass_fields__ if params.get(k) is not None})
        for option in ("sysctl_file", "restore_file", "systemd_dir"):
            if not os.path.isabs(getattr(spec, option)):
                raise BootFilesError(option, "must be an absolute path, got %r" % getattr(spec, option))
        if not UNIT_NAME_RE.fullmatch(spec.unit) or not spec.unit.endswith(".service"):
            raise BootFilesError("unit", "must be a service unit name like nodenet-cni-boot.service, got %r" % spec.unit)
        if spec.wanted_by and not UNIT_NAME_RE.fullmatch(spec.wanted_by):
            raise BootFilesError("wanted_by", "must be a target name like multi-user.target, got %r" % spec.wanted_by)
        if spec.state == "present" and not spec.command:
            raise BootFilesError("command", "is required with state=present (the restore command the unit runs)")
        desired_paths(spec)  # renders, and so checks, sysctls, restore and the unit before anything is observed
        return spec

    @property
    def unit_path(self) -> str:
        return os.path.join(self.systemd_dir, self.unit)

    def link_path(self, wanted_by: Optional[str] = None) -> str:
        return os.path.join(self.systemd_dir, (wanted_by or self.wanted_by) + ".wants", self.unit)


def desired_paths(spec: BootSpec) -> List[Desired]:
    """Every path cni_boot manages, in the order they are written (the unit
    before its link; a drop-in with no sysctls is removed)."""
    if spec.state == "absent":
        paths = [spec.link_path(), spec.unit_path, spec.sysctl_file, spec.restore_file]
        return [Desired(p, "absent") for p in paths if p]
    out = [
        Desired(spec.sysctl_file, "file", render_sysctls(spec.sysctls)) if spec.sysctls else Desired(spec.sysctl_file, "absent"),
        Desired(spec.restore_file, "file", render_restore(spec.restore)),
        Desired(spec.unit_path, "file", render_unit(spec.command, spec.description, spec.before, spec.wanted_by)),
    ]
    if spec.wanted_by:
        out.append(Desired(os.path.dirname(spec.link_path()), "dir", mode=DIR_MODE))
        out.append(Desired(spec.link_path(), "link", target=spec.unit_path))
    return out


# -- observe, compare, act -----------------------------------------------------------------------


def observe(path: str) -> Observed:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Observed(path, "absent")
    import stat

    obs = Observed(path, "other", mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
    if stat.S_ISLNK(st.st_mode):
        obs.kind, obs.target = "link", os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        obs.kind = "dir"
    elif stat.S_ISREG(st.st_mode):
        obs.kind = "file"
        with open(path, "rb") as f:
            obs.content = f.read()
    return obs


def compare(desired: Desired, observed: Observed, uid: int, gid: int) -> List[str]:
    """Why `observed` is not `desired` ([] when it is)."""
    if desired.kind == "absent":
        return [] if observed.kind == "absent" else ["present"]
    if observed.kind != desired.kind:
        return ["missing" if observed.kind == "absent" else "a %s, not a %s" % (observed.kind, desired.kind)]
    reasons = []
    if desired.kind == "file" and observed.content != desired.content:
        reasons.append("content")
    if desired.kind == "link" and observed.target != desired.target:
        reasons.append("target")
    if desired.kind != "link":
        if observed.mode != desired.mode:
            reasons.append("mode %04o" % observed.mode)
        if (observed.uid, observed.gid) != (uid, gid):
            reasons.append("owner %d:%d" % (observed.uid, observed.gid))
    return reasons


def plan(spec: BootSpec, uid: int = 0, gid: int = 0) -> List[Change]:
    return plan_paths(desired_paths(spec), uid, gid)


def plan_paths(wanted: Sequence[Desired], uid: int = 0, gid: int = 0) -> List[Change]:
    """The changes that make each path as desired (also used for the pod subnets file)."""
    changes = []
    for desired in wanted:
        observed = observe(desired.path)
        if desired.kind == "dir" and observed.kind == "dir":
            continue  # an existing WantedBy directory is systemd's, whatever its mode
        if desired.kind != "dir" and observed.kind == "dir":
            raise BootFilesError("path", "%s is a directory; refusing to replace it" % desired.path)
        reasons = compare(desired, observed, uid, gid)
        if reasons:
            changes.append(Change(desired, observed, reasons))
    return changes


def _make_parent(path: str) -> None:
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, DIR_MODE)


def apply(changes: Sequence[Change], uid: int = 0, gid: int = 0) -> None:
    for change in changes:
        d, o = change.desired, change.observed
        if d.kind == "absent" or (o.kind not in ("absent", d.kind)):
            os.unlink(d.path)
        if d.kind == "file":
            _make_parent(d.path)
            atomic_write(d.path, d.content, d.mode)
            os.chown(d.path, uid, gid)
        elif d.kind == "link":
            _make_parent(d.path)
            if os.path.lexists(d.path):
                os.unlink(d.path)
            os.symlink(d.target, d.path)
        elif d.kind == "dir":
            if not os.path.isdir(d.path):
                os.makedirs(d.path, d.mode)
            os.chmod(d.path, d.mode)
            os.chown(d.path, uid, gid)


def _text(kind: str, content: bytes, target: str) -> str:
    if kind == "file":
        return content.decode("utf-8", "replace")
    if kind == "link":
        return "-> %s\n" % target
    if kind == "dir":
        return "(directory)\n"
    return ""


def diffs(changes: Sequence[Change]) -> List[Dict[str, str]]:
    """One before/after per changed path (Ansible shows a list of diffs in turn)."""
    out = []
    for c in changes:
        out.append(
            dict(
                before_header=c.desired.path,
                after_header=c.desired.path,
                before=_text(c.observed.kind, c.observed.content, c.observed.target),
                after=_text(c.desired.kind, c.desired.content, c.desired.target),
            )
        )
    return out


def reconcile(spec: BootSpec, check_mode: bool, want_diff: bool) -> Dict[str, Any]:
    """Observe, compare and (unless check_mode) act: cni_boot's result (with `diff` when asked),
    as the user the module runs as. Raises BootFilesError (bad input, a directory in the way)
    or PartFailed (a write failed)."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        changes = plan(spec, uid, gid)
        if changes and not check_mode:
            apply(changes, uid, gid)
    except OSError as e:
        raise PartFailed("cannot write the boot files: %s" % e) from e
    result: Dict[str, Any] = dict(
        changed=bool(changes),
        files=[dict(path=c.desired.path, action=c.action, reasons=c.reasons) for c in changes],
    )
    if want_diff:
        result["diff"] = diffs(changes)
    return result

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A network config file in the conf dir, as declared state.

Rendering is deterministic and `changed` compares parsed JSON, so a file
that differs only in formatting is left alone. Writes are atomic (temp
file + rename in the same directory), so a runtime reading the conf dir
during a change sees the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..fileio import atomic_write, open_dir_nofollow
from ..names import valid_name
from ..spec import ERR_INVALID_NETCONF, SUPPORTED_VERSIONS, CNIError
from ..runtime.confdir import CONF_EXTENSIONS, NetworkConfigList, conf_files, load_conf_file, parse_conf_list, parse_single_conf
from . import lint
from .part import PartFailed

DISABLED_SUFFIX = ".nodenet-disabled"  # not a config extension: libcni skips it
DEFAULT_DATA_DIR = "/var/lib/cni/networks"


# cni_netconf's options (bin_dir aside: node_libs.node_module adds it); also cni_node_state's O(netconf)
ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    plugins=dict(type="list", elements="dict"),
    cni_version=dict(type="str", default="1.0.0"),
    format=dict(type="str", choices=["conflist", "conf"], default="conflist"),
    priority=dict(type="str", default="10"),
    conf_dir=dict(type="path", default="/etc/cni/net.d"),
    disable_check=dict(type="bool", default=False),
    disable_gc=dict(type="bool", default=False),
    lint=dict(type="str", choices=["fail", "warn", "ignore"], default="fail"),
    exclusive=dict(type="bool", default=False),
    exclusive_action=dict(type="str", choices=["rename", "remove"], default="rename"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)
REQUIRED_IF = [("state", "present", ["plugins"])]


@dataclass
class NetconfSpec:
    name: str
    cni_version: str
    plugins: List[Dict[str, Any]]
    conf_dir: str = "/etc/cni/net.d"
    priority: str = "10"
    fmt: str = "conflist"  # "conflist" | "conf"
    disable_check: bool = False
    disable_gc: bool = False

    @property
    def filename(self) -> str:
        return "%s-%s.%s" % (self.priority, self.name, self.fmt) if self.priority else "%s.%s" % (self.name, self.fmt)

    @property
    def path(self) -> str:
        return os.path.join(self.conf_dir, self.filename)


def spec_from_params(p: Mapping[str, Any]) -> NetconfSpec:
    """cni_netconf's options as a spec; a CNIError naming the option when one is invalid."""
    if not valid_name(p["name"]):
        raise CNIError(ERR_INVALID_NETCONF, "name %r is not a valid network name (letters, digits, '_', '.', '-'; not starting with a symbol)" % p["name"])
    if p["cni_version"] not in SUPPORTED_VERSIONS:
        raise CNIError(ERR_INVALID_NETCONF, "cni_version %r is not a CNI spec version (%s)" % (p["cni_version"], ", ".join(SUPPORTED_VERSIONS)))
    if not p["priority"].isalnum():
        raise CNIError(ERR_INVALID_NETCONF, "priority %r must be letters/digits only (it prefixes the file name)" % p["priority"])
    return NetconfSpec(
        name=p["name"],
        cni_version=p["cni_version"],
        plugins=p["plugins"] or [],
        conf_dir=p["conf_dir"],
        priority=p["priority"],
        fmt=p["format"],
        disable_check=p["disable_check"],
        disable_gc=p["disable_gc"],
    )


def render(spec: NetconfSpec) -> Dict[str, Any]:
    """The file's JSON object."""
    if spec.fmt == "conf":
        if len(spec.plugins) != 1:
            raise CNIError(ERR_INVALID_NETCONF, "format conf holds exactly one plugin; plugins has %d (use format conflist)" % len(spec.plugins))
        out = {"cniVersion": spec.cni_version, "name": spec.name}
        out.update({k: v for k, v in spec.plugins[0].items() if k not in ("cniVersion", "name")})
        return out
    out = {"cniVersion": spec.cni_version, "name": spec.name}
    if spec.disable_check:
        out["disableCheck"] = True
    if spec.disable_gc:
        out["disableGC"] = True
    out["plugins"] = [dict(p) for p in spec.plugins]
    return out


def dump(obj: Dict[str, Any]) -> str:
    return json.dumps(obj, indent=2) + "\n"


def parse_rendered(spec: NetconfSpec, obj: Dict[str, Any]) -> NetworkConfigList:
    """Parse what we would write with the runtime's own parser (errors name the option)."""
    for i, plugin in enumerate(spec.plugins):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin.get("type"):
            raise CNIError(ERR_INVALID_NETCONF, "plugins[%d] needs a non-empty string 'type'" % i)
    data = dump(obj).encode()
    parse = parse_single_conf if spec.fmt == "conf" else parse_conf_list
    return parse(data, spec.path)


def render_checked(spec: NetconfSpec) -> Tuple[Dict[str, Any], NetworkConfigList]:
    """The file's JSON and the runtime's parse of it; a CNIError prefixed with the option."""
    try:
        desired = render(spec)
        return desired, parse_rendered(spec, desired)
    except CNIError as e:
        raise CNIError(e.code, "plugins: %s" % e, e.details) from e


def other_networks(conf_dir: str, exclude: Sequence[str]) -> List[NetworkConfigList]:
    """The conf dir's other loadable networks (unparseable files are skipped)."""
    nets = []
    for path in conf_files(conf_dir):
        if path in exclude:
            continue
        try:
            nets.append(load_conf_file(path))
        except CNIError:
            continue
    return nets


def lint_findings(spec: NetconfSpec, parsed: NetworkConfigList, bin_dirs: Sequence[str]) -> List["lint.Finding"]:
    """Lint of the list itself, then its overlaps with the conf dir's other networks."""
    findings = lint.lint_network(parsed, bin_dirs)
    others = other_networks(spec.conf_dir, [spec.path])
    return findings + lint.findings_about(lint.overlapping_networks([parsed] + others), parsed.name)


def read_current(path: str) -> Optional[Any]:
    """The file's JSON, the raw text if it does not parse, or None if absent."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def competitors(spec: NetconfSpec) -> List[str]:
    """Config files that a runtime would pick before ours (first file in sorted order wins)."""
    return [p for p in conf_files(spec.conf_dir, CONF_EXTENSIONS) if p < spec.path]


def data_dirs(net: NetworkConfigList) -> List[str]:
    """host-local dataDirs the list uses (default when unset)."""
    out = []
    for plugin in net.plugins:
        ipam = plugin.get("ipam")
        if isinstance(ipam, dict) and str(ipam.get("type", "")).endswith("host-local"):
            d = ipam.get("dataDir") or DEFAULT_DATA_DIR
            if d not in out:
                out.append(d)
    return out


def write_file(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    atomic_write(path, text.encode(), mode)


def disable(path: str, remove: bool) -> str:
    """Take a competing config out of the runtime's view; returns where it went."""
    if remove:
        os.unlink(path)
        return ""
    target = path + DISABLED_SUFFIX
    os.rename(path, target)
    return target


def ensure_data_dir(path: str) -> bool:
    """host-local's dataDir, private to root (0700). True if created or fixed.

    A symlink in its place is refused (OSError), never followed: its target
    is not ours to chmod. The mode is set through the directory's own fd.
    """
    created = False
    if not os.path.lexists(path):
        os.makedirs(path, mode=0o700)
        created = True
    fd = open_dir_nofollow(path)
    try:
        if created or os.fstat(fd).st_mode & 0o777 != 0o700:
            os.fchmod(fd, 0o700)
            return True
    finally:
        os.close(fd)
    return False


def data_dir_ok(path: str) -> bool:
    """A real directory (not a symlink to one) of mode 0700."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_mode & 0o777 == 0o700


@dataclass
class Plan:
    write: bool = False
    disable: List[str] = field(default_factory=list)
    data_dirs: List[str] = field(default_factory=list)
    remove: List[str] = field(default_factory=list)
    remove_competitors: bool = False  # exclusive_action=remove: competitors are deleted, not renamed

    @property
    def changed(self) -> bool:
        return bool(self.write or self.disable or self.data_dirs or self.remove)

    def disabled(self) -> List[str]:
        """Each competitor as `from -> to` (empty `to` when removed)."""
        return ["%s -> %s" % (path, self._target(path)) for path in self.disable]

    def _target(self, path: str) -> str:
        return "" if self.remove_competitors else path + DISABLED_SUFFIX


def plan_absent(spec: NetconfSpec, before: Optional[Any]) -> Plan:
    return Plan(remove=[spec.path] if before is not None else [])


def plan_present(
    spec: NetconfSpec, before: Optional[Any], desired: Dict[str, Any], parsed: NetworkConfigList, exclusive: bool, remove_competitors: bool
) -> Plan:
    """Write when the parsed JSON differs; take competitors out when exclusive; fix dataDirs not 0700."""
    return Plan(
        write=before != desired,
        disable=competitors(spec) if exclusive else [],
        data_dirs=[d for d in data_dirs(parsed) if not data_dir_ok(d)],
        remove_competitors=remove_competitors,
    )


def _text(value: Optional[Any]) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dump(value)


def plan_diff(spec: NetconfSpec, plan: Plan, before: Optional[Any], desired: Optional[Dict[str, Any]]) -> List[Dict[str, str]]:
    """Ansible's diff list: the file, each competitor, each dataDir."""
    diffs = [dict(before_header=path, after_header=path, before=_text(before), after="") for path in plan.remove]
    if plan.write and desired is not None:
        diffs.append(dict(before_header=spec.path, after_header=spec.path, before=_text(before), after=dump(desired)))
    for path in plan.disable:
        diffs.append(dict(before_header=path, after_header=plan._target(path) or "(removed)", before=_text(read_current(path)), after=""))
    for d in plan.data_dirs:
        diffs.append(dict(before_header="dataDir %s" % d, after_header="dataDir %s" % d, before="absent or not 0700\n", after="directory, mode 0700\n"))
    return diffs


def apply_plan(spec: NetconfSpec, plan: Plan, desired: Optional[Dict[str, Any]]) -> None:
    """dataDirs before the file, the file before competitors go: a runtime always sees a usable config."""
    for path in plan.remove:
        os.unlink(path)
    for d in plan.data_dirs:
        ensure_data_dir(d)
    if plan.write and desired is not None:
        write_file(spec.path, dump(desired))
    for path in plan.disable:
        disable(path, remove=plan.remove_competitors)


def lint_verdict(findings: Sequence["lint.Finding"], mode: str, path: str) -> List[str]:
    """lint=fail stops before anything is written (PartFailed); returns the warnings to show:
    warnings always, errors too with lint=warn."""
    errors = [f for f in findings if f.level == lint.ERROR]
    if errors and mode == "fail":
        raise PartFailed("lint failed for plugins: %s" % "; ".join(f.msg for f in errors), findings=[f.as_dict() for f in findings], path=path)
    return ["%s: %s" % (f.rule, f.msg) for f in findings if f.level == lint.WARNING or mode == "warn"]


def reconcile(spec: NetconfSpec, p: Mapping[str, Any], check_mode: bool, want_diff: bool) -> Tuple[Dict[str, Any], List[str]]:
    """Observe, compare and (unless check_mode) act for cni_netconf's options `p`.

    Returns the module result (with `diff` when asked) and the warnings to show;
    raises PartFailed (nothing written) on a bad config or a lint error."""
    result: Dict[str, Any] = dict(changed=False, path=spec.path)
    warnings: List[str] = []
    before = read_current(spec.path)  # observe
    desired = None
    if p["state"] == "absent":  # compare
        plan = plan_absent(spec, before)
    else:
        try:
            desired, parsed = render_checked(spec)
        except CNIError as e:
            raise PartFailed(e.msg, names_option=True, path=spec.path) from e
        findings = lint_findings(spec, parsed, p["bin_dir"])
        result.update(findings=[f.as_dict() for f in findings], config=desired, data_dirs=data_dirs(parsed))
        warnings = lint_verdict(findings, p["lint"], spec.path)
        plan = plan_present(spec, before, desired, parsed, p["exclusive"], p["exclusive_action"] == "remove")
    result.update(changed=plan.changed, disabled=plan.disabled())
    if want_diff:
        result["diff"] = plan_diff(spec, plan, before, desired)
    if plan.changed and not check_mode:  # act
        try:
            apply_plan(spec, plan, desired)
        except OSError as e:
            raise PartFailed("writing the config failed: %s" % e, path=spec.path) from e
    return result, warnings

# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The layers of plugins/module_utils/cni (docs/internals.md, "Layers"): every
import in every file, function-local ones included, read with `ast`; a lower
layer importing a higher one fails here."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

MODULE_UTILS = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"
PACKAGE = MODULE_UTILS / "cni"

# layer: (its modules, by dotted name inside cni ("" is cni/__init__.py; a
# package name covers everything below it), the layers it may import).
# Docs: the table in docs/internals.md says the same.
LAYERS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    "spec": (("", "spec", "names", "fileio", "lazy"), ()),
    "agent protocol": (("agent", "agent.shim"), ()),
    "install": (("node.installer",), ("spec", "agent protocol")),
    "config": (("config",), ("spec",)),
    "invoke": (("invoke",), ("spec", "config")),
    "ipam": (("ipam",), ("spec", "config")),
    "net": (("net",), ("spec", "config")),
    "runtime": (("runtime",), ("spec", "config", "invoke")),
    "skel": (("skel",), ("spec", "config", "invoke", "agent protocol")),
    "plugin": (("plugin",), ("spec", "config", "invoke", "ipam", "net", "skel")),
    "agent": (("agent.server", "agent.client", "agent.fallback"), ("spec", "config", "invoke", "skel", "agent protocol")),
    "node": (("node",), ("spec", "config", "invoke", "ipam", "net", "runtime", "agent", "agent protocol", "install")),
}
# The module side, beside the package in module_utils: what it may take from cni.
MODULE_SIDE = ("install_boot", "node_libs", "podcidr", "mountinfo")
MODULE_SIDE_MAY_IMPORT = ("spec", "agent protocol", "install")
# Imported lazily, inside the functions that need them (the plugins' exec path stays lean).
LAZY_ONLY = ("pyroute2", "netaddr")


def layer_of(module: str) -> str:
    """The layer of a dotted module name inside cni: an exact member first, else the longest package prefix."""
    best: Optional[Tuple[int, str]] = None
    for layer, (members, _allowed) in LAYERS.items():
        for member in members:
            if module == member:
                return layer
            if member and module.startswith(member + "."):
                if best is None or len(member) > best[0]:
                    best = (len(member), layer)
    if best is None:
        raise AssertionError("module %r is in no layer: add it to LAYERS and to docs/internals.md" % module)
    return best[1]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    base = root.joinpath(*dotted.split(".")) if dotted else root
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(source: str, module: str, is_package: bool, root: Path) -> Iterator[Tuple[int, str, bool]]:
    """(line, target, top level) for every import: a relative target as a dotted
    name inside `root` ("../x" past it as "<outside>:x"), an absolute one as "abs:<name>"."""
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    here = module.split(".") if module else []
    package = here if is_package else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, "abs:" + alias.name, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, "abs:" + (node.module or ""), id(node) in top_level
                continue
            if node.level - 1 > len(package):
                yield node.lineno, "<outside>:" + "." * node.level + (node.module or ""), id(node) in top_level
                continue
            base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            for alias in node.names:
                candidate = ".".join(base + [alias.name])
                yield node.lineno, candidate if _is_module(root, candidate) else ".".join(base), id(node) in top_level


def violations(source: str, module: str, is_package: bool = False) -> List[str]:
    """Every import of one cni module that breaks the layers."""
    layer = layer_of(module)
    allowed = set(LAYERS[layer][1]) | {layer}
    out = []
    for line, target, top in imports(source, module, is_package, PACKAGE):
        where = "cni/%s:%d" % (module.replace(".", "/") or "__init__", line)
        if target.startswith("<outside>:"):
            out.append("%s imports %s from outside the package (it runs alone, as nodenet_cni)" % (where, target[10:]))
        elif target.startswith("abs:"):
            name = target[4:]
            if name.split(".")[0] in ("ansible_collections", "nodenet_cni", "ansible"):
                out.append("%s imports %s absolutely (imports inside the package are relative)" % (where, name))
            elif top and name.split(".")[0] in LAZY_ONLY:
                out.append("%s imports %s at module level (import it inside the function)" % (where, name))
        elif layer_of(target) not in allowed:
            out.append("%s (%s) imports %s (%s)" % (where, layer, target, layer_of(target)))
    return out


def _package_files() -> List[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_lower_layer_imports_a_higher_one(path):
    module = _module_name(path, PACKAGE)
    assert violations(path.read_text(encoding="utf-8"), module, path.name == "__init__.py") == []


@pytest.mark.parametrize("name", MODULE_SIDE)
def test_the_module_side_takes_only_the_base_and_the_agent_protocol_from_cni(name):
    source = (MODULE_UTILS / (name + ".py")).read_text(encoding="utf-8")
    for line, target, _top in imports(source, name, False, MODULE_UTILS):
        if target.startswith("cni.") or target == "cni":
            inside = target[4:] if target.startswith("cni.") else ""
            assert layer_of(inside) in MODULE_SIDE_MAY_IMPORT, "%s.py:%d imports %s" % (name, line, target)
        elif not target.startswith("abs:"):
            assert target in MODULE_SIDE, "%s.py:%d imports %s" % (name, line, target)


def test_the_layers_form_no_cycle():
    done: Dict[str, bool] = {}

    def visit(layer: str, path: Tuple[str, ...]) -> None:
        assert layer not in path, "cycle: %s" % " -> ".join(path + (layer,))
        if layer not in done:
            for lower in LAYERS[layer][1]:
                visit(lower, path + (layer,))
            done[layer] = True

    for layer in LAYERS:
        visit(layer, ())


@pytest.mark.parametrize(
    "module, source, words",
    [
        ("config.bridge", "from ..runtime import chain\n", "(config) imports runtime.chain (runtime)"),
        ("net.link", "def f():\n    from ..plugin import bridge\n", "(net) imports plugin.bridge (plugin)"),
        ("spec", "from .config.decode import Fields\n", "(spec) imports config.decode (config)"),
        ("skel", "from .agent.server import Agent\n", "(skel) imports agent.server (agent)"),
        ("runtime.chain", "from ...podcidr import allocate\n", "from outside the package"),
        ("plugin.bridge", "from ansible_collections.nodenet.cni.plugins.module_utils.cni import spec\n", "absolutely"),
        ("net.link", "from pyroute2 import IPRoute\n", "at module level"),
    ],
)
def test_the_check_finds_an_upward_import(module, source, words):
    found = violations(source, module)
    assert len(found) == 1 and words in found[0], found


def test_a_lazy_netlink_import_and_a_downward_import_pass():
    assert violations("def f():\n    from pyroute2 import IPRoute\nfrom ..spec import CNIError\n", "net.link") == []

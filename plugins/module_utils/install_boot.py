# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The boot code of an install without a module run (cni_plugin's action plugin).

It runs on the node as `<python> -B -I -S -c LOADER`: LOADER reads this
file's source from stdin (after its length on a line of its own) and runs
it as __main__; it then reads the rest of stdin: the request (one JSON line,
cni/node/install_cli.py) and the plugin bundle (the tar.gz cni_plugin
would otherwise copy to the node). It imports the bundle's own
`nodenet_cni.node.install_cli` from memory (the controller's pycs where the
node's Python loads them, else compiled from the bundle's sources) and hands
it the bundle's members: the installer checks the bundle's digest before it
writes anything, and gzip's CRC has checked the bytes.

Standard library only, Python 3.9 or newer (cni_plugin's floor for the node):
the node has nothing else yet. Where it cannot go on (an older Python, a
bundle it cannot read, one without this entry point or of another
protocol) it prints {"nodenet_cni_fallback": why} and exits FALLBACK_RC;
the action plugin then copies the bundle and runs the module as always, which
reports what is wrong in its own words.

Imported by the action plugin (for LOADER, FALLBACK_RC and its own source),
it does nothing.
"""

from __future__ import annotations

import sys

FALLBACK_RC = 3
LOADER = "import sys; b = sys.stdin.buffer; exec(compile(b.read(int(b.readline())), 'nodenet-cni-install-boot', 'exec'))"
PACKAGE = "nodenet_cni"
ENTRY = PACKAGE + "/node/install_cli.py"


def fallback(why: str) -> None:
    import json

    sys.stdout.write(json.dumps({"nodenet_cni_fallback": why}) + "\n")
    raise SystemExit(FALLBACK_RC)


def bundle_members(data: bytes) -> list:
    """The tar.gz's members in order: (name, bytes; None for anything but a regular file)."""
    import gzip
    import io
    import tarfile

    raw = gzip.decompress(data)  # the whole stream: its CRC and length are checked
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return [(m.name, tar.extractfile(m).read() if m.isfile() else None) for m in tar]


class BundleImporter:
    """`nodenet_cni` and its modules from the bundle's members, in memory."""

    def __init__(self, members: list) -> None:
        import importlib.util

        self.files = {name: data for name, data in members if data is not None}
        self.tag = sys.implementation.cache_tag
        self.magic = importlib.util.MAGIC_NUMBER

    def find_spec(self, name, path=None, target=None):
        import importlib.util

        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            return None
        rel = name.replace(".", "/")
        for origin, package in ((rel + "/__init__.py", True), (rel + ".py", False)):
            if origin in self.files:
                # a location that is not a path on the node: nothing reads files beside it
                spec = importlib.util.spec_from_loader(name, self, origin="<plugin bundle>/" + origin, is_package=package)
                spec.has_location = True
                return spec
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        import importlib.util
        import marshal

        rel = module.__spec__.origin[len("<plugin bundle>/"):]
        source = self.files[rel]
        head, tail = rel.rsplit("/", 1)  # (installer.pyc_path's rule: the installer is not loaded yet)
        pyc = self.files.get("%s/__pycache__/%s.%s.pyc" % (head, tail[:-3], self.tag)) if self.tag else None
        if pyc and pyc[:4] == self.magic and pyc[8:16] == importlib.util.source_hash(source):
            code = marshal.loads(pyc[16:])  # compiled by the controller from exactly this source
        else:
            code = compile(source, module.__spec__.origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)


def main() -> None:
    import json

    if sys.version_info < (3, 9):
        fallback("Python %d.%d is older than the plugins' 3.9" % sys.version_info[:2])
    stdin = sys.stdin.buffer
    request = json.loads(stdin.readline())
    try:
        members = bundle_members(stdin.read())
    except Exception as e:  # pylint: disable=broad-except  # (any damage: the module path reports it)
        fallback("the plugin bundle on stdin cannot be read: %s" % e)
    importer = BundleImporter(members)
    if ENTRY not in importer.files:
        fallback("the plugin bundle has no %s" % ENTRY)
    sys.meta_path.insert(0, importer)
    from nodenet_cni.node import install_cli  # pylint: disable=import-error

    if install_cli.PROTOCOL != request.get("protocol"):
        fallback("the bundle's install entry point speaks protocol %s, not %s" % (install_cli.PROTOCOL, request.get("protocol")))
    raise SystemExit(install_cli.main_boot(request, members))


if __name__ == "__main__":
    main()

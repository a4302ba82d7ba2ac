# SPDX-License-Identifier: GPL-3.0-or-later
"""A tiny sandbox ("pause") image built locally from Debian's busybox-static.

No registry is reachable, so the test writes an OCI image layout tarball
itself: one layer with /bin/busybox and a few applet links, a config whose
entrypoint sleeps forever, a manifest and an index naming the image, ready
for `ctr images import`. Deterministic: the same busybox gives the same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import tarfile
from typing import Dict, List, Tuple

BUSYBOX = "/bin/busybox"  # busybox-static; a static binary needs nothing else in the rootfs
APPLETS = ("sh", "sleep", "ip", "ping", "nc", "cat", "ls")
SLEEP_FOREVER = ["/bin/sleep", "2147483647"]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def _tarinfo(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o755, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname, info.mtime = kind, mode, size, link, 0
    return info


def rootfs_layer(busybox: str = BUSYBOX) -> bytes:
    """An uncompressed layer tar: the directories a runtime mounts over, busybox and its applet links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "var", "run"):
            tar.addfile(_tarinfo(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        with open(busybox, "rb") as f:
            data = f.read()
        tar.addfile(_tarinfo("bin/busybox", size=len(data)), io.BytesIO(data))
        for applet in APPLETS:
            tar.addfile(_tarinfo("bin/" + applet, tarfile.SYMTYPE, 0o777, link="busybox"))
        for name, text in (("etc/passwd", "root:x:0:0:root:/:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            body = text.encode()
            tar.addfile(_tarinfo(name, mode=0o644, size=len(body)), io.BytesIO(body))
    return buf.getvalue()


def _blob(blobs: Dict[str, bytes], data: bytes, media_type: str) -> Dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def build_oci_archive(path: str, name: str, busybox: str = BUSYBOX) -> Tuple[str, str]:
    """Write an OCI image layout tar for image `name` (e.g. "nodenet.test/pause:1"); returns (path, manifest digest)."""
    arch = GOARCH.get(platform.machine(), platform.machine())
    layer = rootfs_layer(busybox)
    blobs: Dict[str, bytes] = {}
    layer_desc = _blob(blobs, gzip.compress(layer, mtime=0), OCI_LAYER_GZIP)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Entrypoint": SLEEP_FOREVER, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "nodenet.cni tests: busybox-static sandbox image", "created": "1970-01-01T00:00:00Z"}],
        "created": "1970-01-01T00:00:00Z",
    }
    config_desc = _blob(blobs, json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": [layer_desc]}
    manifest_desc = _blob(blobs, json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST)
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
    # containerd's importer names the image from io.containerd.image.name; the OCI tag is the layout's own name
    manifest_desc["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}
    files: List[Tuple[str, bytes]] = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", json.dumps(index).encode())]
    files += [("blobs/sha256/" + digest.split(":", 1)[1], data) for digest, data in sorted(blobs.items())]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(_tarinfo(d, tarfile.DIRTYPE))
        for fname, data in files:
            tar.addfile(_tarinfo(fname, mode=0o644, size=len(data)), io.BytesIO(data))
    os.chmod(path, 0o644)
    return path, str(manifest_desc["digest"])

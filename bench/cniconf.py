# SPDX-License-Identifier: GPL-3.0-or-later
"""The one netconf both implementations get, the runtime's env, and the
host-local dataDir seen from outside (pre-filling and counting leases in
the Go on-disk format: a file per IP holding `<id>\\r\\n<ifname>`)."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from typing import Any, Dict, List, Optional

CNI_VERSION = "1.0.0"  # the newest that Debian's Go plugins (v1.1.1) accept
NETWORK_NAME = "nnbench"
SUBNET = "10.123.0.0/16"
BRIDGE = "cni0"
PLUGIN_PATH_ENV = "/usr/sbin:/usr/bin:/sbin:/bin"


def netconf(data_dir: str, ip_masq: bool = False) -> Dict[str, Any]:
    """bridge + host-local, the shape of a typical node config (and the seed's)."""
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipMasq": ip_masq,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": SUBNET}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": data_dir,
        },
    }


def with_prev_result(conf: Dict[str, Any], add_stdout: Optional[str]) -> Dict[str, Any]:
    """DEL's stdin as libcni sends it for >= 0.4.0: the cached ADD result as prevResult."""
    if not add_stdout:
        return conf
    try:
        prev = json.loads(add_stdout)
    except ValueError:
        return conf
    return dict(conf, prevResult=prev)


def runtime_env(command: str, container_id: str, netns: str, cni_path: str, ifname: str = "eth0") -> Dict[str, str]:
    return {
        "PATH": PLUGIN_PATH_ENV,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": cni_path,
    }


def new_container_id() -> str:
    return secrets.token_hex(32)  # the shape of a containerd/CRI-O sandbox ID


def result_addresses(add_stdout: str) -> List[str]:
    try:
        result = json.loads(add_stdout)
    except ValueError:
        return []
    return [ip["address"].split("/")[0] for ip in result.get("ips", []) if isinstance(ip, dict) and "address" in ip]


def network_dir(data_dir: str) -> str:
    return os.path.join(data_dir, NETWORK_NAME)


def prefill_leases(data_dir: str, count: int) -> List[str]:
    """Write `count` leases as the Go host-local does, from the first address
    after the gateway on, and point `last_reserved_ip.0` at the last one
    (a node that allocated them in order)."""
    net = ipaddress.ip_network(SUBNET)
    if count > net.num_addresses - 4:
        raise ValueError("%d leases do not fit in %s" % (count, SUBNET))
    directory = network_dir(data_dir)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    first = int(net.network_address) + 2  # .1 is the default gateway
    addresses = [str(ipaddress.ip_address(first + i)) for i in range(count)]
    for i, address in enumerate(addresses):
        with open(os.path.join(directory, address), "w") as f:
            f.write("%s\r\n%s" % ("prefill%06d" % i, "eth0"))
    if addresses:
        with open(os.path.join(directory, "last_reserved_ip.0"), "w") as f:
            f.write(addresses[-1])
    return addresses


def count_leases(data_dir: str) -> int:
    """Lease files (named by IP) in the network's directory."""
    try:
        names = os.listdir(network_dir(data_dir))
    except FileNotFoundError:
        return 0
    count = 0
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            continue
        count += 1
    return count

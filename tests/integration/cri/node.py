# SPDX-License-Identifier: GPL-3.0-or-later
"""A private containerd with its CRI plugin: a kubelet node's runtime, inside namespaces the test makes.

Safety (see the brief's network rules):
- containerd runs in a network namespace made here (unique prefix); pod
  namespaces are made by containerd itself and bind-mounted under its own
  state dir (`netns_mounts_under_state_dir`), never in /run/netns;
- it runs in a private mount namespace whose view of the machine is
  overlaid, so nothing it or the plugins write lands in the machine's
  directories: /etc, /opt and /var/lib are overlayfs with upper dirs under
  the work dir (libcni's result cache /var/lib/cni is therefore
  <work>/overlay/var/lib/upper/cni), /run is a tmpfs (shim sockets, fifos,
  iptables lock), /etc/cni/net.d and /opt/cni/bin are the private conf dir
  and the plugin bin dir (that is where `ctr run --cni` looks: it has no
  flags for them);
- its root, state, socket, runc root and the pods' cgroup parent are
  private and uniquely named; `close()` removes sandboxes through CRI, stops
  containerd, kills what is left of its shims and pods (found by exact socket
  path and cgroup), and removes every cgroup, namespace and directory it
  made. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Dict, Iterable, List, Optional

from cnitest import RUN_PREFIX, NetNS

from .api import CRIClient, CRIError
from .image import build_oci_archive

K8S_NAMESPACE = "k8s.io"  # CRI's containerd namespace
# apt: containerd runc busybox-static (scripts/setup.sh); util-linux
REQUIRED_TOOLS = ("containerd", "ctr", "runc", "busybox", "nsenter", "unshare")
SANDBOX_IMAGE = "nodenet.test/pause:busybox"
CGROUP_ROOT = "/sys/fs/cgroup"
# a systemd unit's environment, plus a marker the tests look for in the plugins' environment
NODE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
ENV_MARKER = "NODENET_TEST_CONTAINERD_ENV"
NET_NAME = "crinet"
POD_SUBNET = "10.99.0.0/24"
POD_GATEWAY = "10.99.0.1"
# the node's own address (a kubelet node's InternalIP; TEST-NET-1), on lo of the node's namespace
NODE_IP = "192.0.2.10"

NODE_VIEW = r"""
set -eu
work=$1 bin_dir=$2 conf_dir=$3
shift 3
mount --make-rprivate /
# drop our copies of other namespaces' bind mounts (other tests' /run/netns/*): a copy would keep
# a namespace alive after its owner deleted it
awk '$0 ~ / - nsfs / {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" || true; done
mount -t tmpfs -o mode=0755,size=64m nodenet-run /run
for d in etc opt var/lib; do
  mkdir -p "$work/overlay/$d/upper" "$work/overlay/$d/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/overlay/$d/upper,workdir=$work/overlay/$d/work" "/$d"
done
mkdir -p /etc/cni/net.d /opt/cni/bin /var/lib/cni
mount --bind "$conf_dir" /etc/cni/net.d
mount --bind "$bin_dir" /opt/cni/bin
exec "$@"
"""

CONFIG_TOML = """\
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  level = "{log_level}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # runc on this kind of VM cannot lower oom_score_adj below the caller's
  restrict_oom_score_adj = true
  # pod netns under our state dir, not /run/netns
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{runc_root}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin_dir}"
    conf_dir = "{conf_dir}"
    max_conf_num = 1
"""


def missing_tools() -> List[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def kubelet_conflist(data_dir: str, name: str = NET_NAME, subnet: str = POD_SUBNET) -> Dict[str, Any]:
    """What kubelet nodes use with containerd: bridge + host-local, then portmap with the portMappings capability."""
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {"type": "host-local", "dataDir": data_dir, "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


class ContainerdNode:
    """containerd (CRI enabled) in its own network and mount namespace, with a private CNI conf dir."""

    def __init__(self, tag: str, bin_dir: str, conflist: Optional[Dict[str, Any]] = None, *, conf_name: str = "10-nodenet.conflist",
                 log_level: str = "info", extra_env: Optional[Dict[str, str]] = None) -> None:
        self.tag = tag
        self.bin_dir = bin_dir
        self.conflist = conflist
        self.conf_name = conf_name
        self.log_level = log_level
        self.extra_env = dict(extra_env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.client: Optional[CRIClient] = None
        self.netns: Optional[NetNS] = None
        self.sandboxes: List[str] = []
        # short: unix socket paths are limited to 107 bytes
        self.work = tempfile.mkdtemp(prefix=RUN_PREFIX + "cri-", dir="/tmp")
        self.name = os.path.basename(self.work)
        self.cgroup_parent = "/" + self.name
        self.socket = os.path.join(self.work, "containerd.sock")
        self.conf_dir = os.path.join(self.work, "net.d")
        self.data_dir = os.path.join(self.work, "ipam")
        self.log_path = os.path.join(self.work, "containerd.log")
        # libcni's cache, seen from outside the node's mount namespace
        self.cache_dir = os.path.join(self.work, "overlay", "var", "lib", "upper", "cni")
        for d in (self.conf_dir, self.data_dir, os.path.join(self.work, "root"), os.path.join(self.work, "state")):
            os.makedirs(d, mode=0o700, exist_ok=True)

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60.0) -> "ContainerdNode":
        try:
            self.netns = NetNS(self.tag)
            subprocess.run(["ip", "-n", self.netns.name, "addr", "add", NODE_IP + "/32", "dev", "lo"], check=True, timeout=10)
            self.write_conflist(self.conflist or kubelet_conflist(self.data_dir))
            config = os.path.join(self.work, "config.toml")
            with open(config, "w", encoding="utf-8") as f:
                f.write(CONFIG_TOML.format(root=os.path.join(self.work, "root"), state=os.path.join(self.work, "state"),
                                           socket=self.socket, image=SANDBOX_IMAGE, runc_root=os.path.join(self.work, "runc"),
                                           bin_dir=self.bin_dir, conf_dir=self.conf_dir, log_level=self.log_level))
            env = dict(NODE_ENV, **{ENV_MARKER: self.name}, **self.extra_env)
            argv = self.node_argv(["containerd", "--config", config])
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            self.client = CRIClient(self.socket)
            self._wait_ready(timeout)
            self.import_sandbox_image(timeout)
            return self
        except BaseException:
            self.close()
            raise

    def node_argv(self, argv: List[str]) -> List[str]:
        """argv run in the node: its network namespace, then a private mount namespace with the node's view."""
        assert self.netns is not None
        return ["nsenter", "--net=" + self.netns.path, "unshare", "--mount", "--propagation", "private",
                "sh", "-c", NODE_VIEW, "node-view", self.work, self.bin_dir, self.conf_dir] + argv

    def enter(self) -> List[str]:
        """argv prefix entering containerd's network and mount namespaces (what ctr needs: the same /run fifos)."""
        assert self.proc is not None and self.netns is not None
        return ["nsenter", "--net=" + self.netns.path, "--mount=/proc/%d/ns/mnt" % self.containerd_pid()]

    def ctr_argv(self, *args: str) -> List[str]:
        return self.enter() + ["ctr", "--address", self.socket, "--namespace", K8S_NAMESPACE] + list(args)

    def containerd_pid(self) -> int:
        """The containerd process (the Popen is the nsenter/unshare/sh chain that exec'd into it)."""
        assert self.proc is not None
        return self.proc.pid

    def _wait_ready(self, timeout: float) -> None:
        assert self.client is not None and self.proc is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("containerd exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            if os.path.exists(self.socket):
                try:
                    self.client.version(timeout=2)
                    return
                except CRIError as exc:
                    last = str(exc)
            time.sleep(0.1)
        raise TimeoutError("containerd CRI not ready after %.0fs (%s):\n%s" % (timeout, last, self.log_tail()))

    def ctr(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.ctr_argv(*args), timeout=timeout, check=check, capture_output=True, env=dict(NODE_ENV))

    def import_sandbox_image(self, timeout: float) -> None:
        archive, _digest = build_oci_archive(os.path.join(self.work, "pause.oci.tar"), SANDBOX_IMAGE)
        proc = self.ctr("images", "import", archive, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError("ctr images import failed: %s %s" % (proc.stdout.decode(), proc.stderr.decode()))
        assert self.client is not None
        self.client.wait_image(SANDBOX_IMAGE, timeout=timeout)

    def write_conflist(self, conflist: Dict[str, Any]) -> None:
        """containerd watches the conf dir and reloads (atomic rename, as a node's installer writes it)."""
        path = os.path.join(self.conf_dir, self.conf_name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(conflist, f, indent=2)
        os.rename(tmp, path)

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    # ---------------------------------------------------------------- pods

    def run_pod(self, name: str, port_mappings: Iterable[Dict[str, Any]] = ()) -> str:
        assert self.client is not None
        sandbox_id = self.client.run_pod_sandbox(name, uid="%s-%s" % (self.name, name), namespace="default",
                                                 port_mappings=port_mappings, cgroup_parent=self.cgroup_parent)
        self.sandboxes.append(sandbox_id)
        return sandbox_id

    def pod_info(self, sandbox_id: str) -> Dict[str, Any]:
        """PodSandboxStatus (verbose): state, ip, and containerd's info (pid, netns path, CNI result)."""
        assert self.client is not None
        resp = self.client.pod_sandbox_status(sandbox_id)
        info = json.loads(resp.info.get("info", "{}"))
        return {"state": resp.status.state, "ip": resp.status.network.ip, "pid": info.get("pid"),
                "netns": info.get("runtimeSpec", {}).get("linux", {}).get("namespaces", []), "info": info}

    def pod_netns(self, sandbox_id: str) -> str:
        """A path to the pod's network namespace usable from the test's mount namespace."""
        pid = self.pod_info(sandbox_id)["pid"]
        if not pid:
            raise RuntimeError("sandbox %s has no pid" % sandbox_id)
        return "/proc/%d/ns/net" % pid

    def remove_pod(self, sandbox_id: str) -> None:
        """What the kubelet does when a pod goes: StopPodSandbox, then RemovePodSandbox."""
        assert self.client is not None
        self.client.stop_pod_sandbox(sandbox_id)
        self.client.remove_pod_sandbox(sandbox_id)
        if sandbox_id in self.sandboxes:
            self.sandboxes.remove(sandbox_id)

    # ---------------------------------------------------------------- teardown

    def close(self) -> None:
        """Remove everything this node made, even after a failure: every step runs; a step that failed is reported."""
        errors = []
        for step in (self._remove_sandboxes, self._close_client, self._stop_containerd, self._kill_leftovers,
                     self._remove_cgroups, self._delete_netns, self._remove_work):
            try:
                step()
            except Exception as exc:  # pylint: disable=broad-except  # the next steps must still run
                errors.append("%s: %r" % (step.__name__, exc))
        if errors:
            raise RuntimeError("containerd node %s not fully cleaned up: %s" % (self.name, "; ".join(errors)))

    def _close_client(self) -> None:
        if self.client is not None:
            self.client.close()

    def _delete_netns(self) -> None:
        if self.netns is not None:
            self.netns.delete()

    def _remove_work(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def _remove_sandboxes(self) -> None:
        if self.client is None or self.proc is None or self.proc.poll() is not None:
            return
        try:
            ids = [s.id for s in self.client.list_pod_sandbox()]
        except CRIError:
            ids = list(self.sandboxes)
        for sandbox_id in ids:
            for call in (self.client.stop_pod_sandbox, self.client.remove_pod_sandbox):
                try:
                    call(sandbox_id)
                except CRIError:
                    pass

    def _stop_containerd(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def _own_pids(self) -> List[int]:
        """Shims started by this containerd (their argv names our socket) and the processes in our pods' cgroups."""
        pids = set()
        needle = self.socket.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if needle in args:
                pids.add(int(entry))
        for path in self._cgroup_dirs():
            try:
                with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as f:
                    pids.update(int(line) for line in f if line.strip())
            except OSError:
                continue
        pids.discard(os.getpid())
        return sorted(pids)

    def _kill_leftovers(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pids = self._own_pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)

    def _cgroup_dirs(self) -> List[str]:
        """Our cgroup parent in every hierarchy, deepest first."""
        found = []
        if not os.path.isdir(CGROUP_ROOT):
            return found
        for hierarchy in sorted(os.listdir(CGROUP_ROOT)):
            top = os.path.join(CGROUP_ROOT, hierarchy, self.name)
            if os.path.isdir(top):
                for dirpath, _dirs, _files in os.walk(top, topdown=False):
                    found.append(dirpath)
        return found

    def _remove_cgroups(self) -> None:
        for _attempt in range(20):
            left = [d for d in self._cgroup_dirs() if not self._rmdir(d)]
            if not left:
                return
            time.sleep(0.1)

    @staticmethod
    def _rmdir(path: str) -> bool:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def __enter__(self) -> "ContainerdNode":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

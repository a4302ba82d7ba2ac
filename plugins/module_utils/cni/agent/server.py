# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nodenet-agent: one resident process per network namespace serving the shims.

Worker threads accept on 127.0.0.1:<port> themselves (loopback exists per
network namespace, so only shims exec'd in *this* namespace reach us: a
caller elsewhere reaches its own namespace's agent or nobody), greet, read
the request, check the token, run `skel.run` and answer: a call never waits
for a hand-over between threads (each costs a wake-up and, under load, a
GIL switch interval). The main thread only waits for signals. A worker
enters pods' namespaces on its own thread
(setns is per thread); after every call it checks it is back in the
agent's namespace, and one that is not retires (the thread exits and a new
one takes its place), so no call ever runs in a pod's namespace by mistake.

SIGTERM/SIGINT: stop accepting (shutdown() of the listener wakes every
worker blocked in accept), finish every call already accepted, exit 0.
"""

from __future__ import annotations

import argparse
import errno
import gc
import hmac
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

from . import DEFAULT_PORT, DEFAULT_RUN_DIR, GREETING, STATS, token_path

MAX_REQUEST = 16 << 20  # bytes: a netconf with a big prevResult is a few KB
REQUEST_TIMEOUT = 30.0  # seconds a greeted shim has to send its request
DEFAULT_WORKERS = 16
# How long a thread that wants the GIL waits before asking the holder to
# drop it (CPython's default is 5 ms). The agent's threads mostly wait on
# sockets and the kernel; a short interval keeps one call's CPU work from
# holding up another's answer.
SWITCH_INTERVAL = 0.0005
THREAD_NETNS = "/proc/thread-self/ns/net"


class BadRequest(Exception):
    """A request we refuse without running anything."""


def _ns_id(path: str) -> Tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def read_request(conn: socket.socket) -> Tuple[bytes, str, Dict[str, str], bytes]:
    """token, plugin, env, stdin from one connection (layout in shim.py)."""
    buf = b""
    while True:
        end_env = buf.find(b"\0\0")
        if end_env >= 0 and buf.find(b"\0", end_env + 2) >= 0:
            break
        if len(buf) > MAX_REQUEST:
            raise BadRequest("request too large")
        chunk = conn.recv(65536)
        if not chunk:
            raise BadRequest("connection closed mid-request")
        buf += chunk
    head, rest = buf[:end_env], buf[end_env + 2:]
    stdin = rest[: rest.index(b"\0")]
    fields = head.split(b"\0")
    if len(fields) < 2:
        raise BadRequest("malformed request")
    token, plugin = fields[0], fields[1].decode("utf-8", "replace")
    env: Dict[str, str] = {}
    for entry in fields[2:]:
        name, sep, value = entry.decode("utf-8", "surrogateescape").partition("=")
        if not sep or not name:
            raise BadRequest("malformed env entry")
        env[name] = value
    return token, plugin, env, stdin


def encode_answer(code: int, out: str, err: str) -> bytes:
    ob, eb = out.encode("utf-8", "surrogateescape"), err.encode("utf-8", "surrogateescape")
    return b"%d %d %d\n" % (code, len(ob), len(eb)) + ob + eb


class Agent:
    def __init__(self, port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR, workers: int = DEFAULT_WORKERS) -> None:
        self.port = port
        self.run_dir = run_dir
        self.workers = max(1, workers)
        self.home = _ns_id(THREAD_NETNS)
        self.key = "%d-%d" % (self.home[1], os.getpid())
        self.token = os.urandom(24).hex().encode()
        self.token_file = token_path(run_dir, self.key)
        self.lock = threading.Lock()
        self.threads: List[threading.Thread] = []
        self.stats: Dict[str, object] = {
            "pid": os.getpid(),
            "port": port,
            "netns_inode": self.home[1],
            "started": time.time(),
            "runtime": _runtime_dir(),
            "digest": _runtime_digest(),
            "calls": 0,
            "errors": 0,
            "refused": 0,
            "in_flight": 0,
            "retired_workers": 0,
        }
        self.listener: Optional[socket.socket] = None
        self.stopping = False

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        self._write_token()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.set_inheritable(False)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            self._remove_token()
            raise
        sock.listen(256)
        self.listener = sock
        for _worker in range(self.workers):
            self._spawn_worker()

    def serve_forever(self) -> None:
        """Wait for SIGTERM/SIGINT (the workers serve), then shut down."""
        if self.listener is None:
            raise RuntimeError("serve_forever() before start()")
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        signal.set_wakeup_fd(wfd)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        sel = selectors.DefaultSelector()
        sel.register(rfd, selectors.EVENT_READ)
        try:
            while not self.stopping:
                for _key, _mask in sel.select():
                    os.read(rfd, 512)
        finally:
            sel.close()
            self.shutdown()
            os.close(rfd)
            os.close(wfd)

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        """Stop accepting; every queued or running call finishes; then remove the token."""
        self.stopping = True
        if self.listener is not None:
            try:
                # wakes every worker blocked in accept(); new connections are refused
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        while True:
            with self.lock:
                alive = [t for t in self.threads if t.is_alive()]
            if not alive:
                break
            for thread in alive:
                thread.join()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self._remove_token()
        _log("stopped; served %(calls)d calls (%(errors)d errors), refused %(refused)d" % self.stats)

    def _write_token(self) -> None:
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        os.chmod(self.run_dir, 0o700)
        self._sweep_stale_tokens()
        tmp = self.token_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, self.token + b"\n")
        finally:
            os.close(fd)
        os.rename(tmp, self.token_file)

    def _sweep_stale_tokens(self) -> None:
        # kill -9 leaves a token file behind; its pid is the second part of the key.
        for entry in os.listdir(self.run_dir):
            if not (entry.startswith("agent-") and entry.endswith(".token")):
                continue
            pid = entry[len("agent-"): -len(".token")].partition("-")[2]
            if pid.isdigit() and not os.path.exists("/proc/%s" % pid):
                try:
                    os.unlink(os.path.join(self.run_dir, entry))
                except OSError:
                    pass

    def _remove_token(self) -> None:
        try:
            os.unlink(self.token_file)
        except OSError:
            pass

    # -- accepting and serving --------------------------------------------

    def _accept(self) -> Optional[socket.socket]:
        """The next connection, greeted; None once the listener is shut down."""
        while not self.stopping:
            listener = self.listener
            if listener is None:
                return None
            try:
                conn, _peer = listener.accept()
            except InterruptedError:
                continue
            except OSError as e:
                if self.stopping or e.errno in (errno.EINVAL, errno.EBADF):
                    return None
                _log("accept failed: %s" % e)
                time.sleep(0.01)  # e.g. EMFILE: do not spin
                continue
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.sendall(("%s %s\n" % (GREETING, self.key)).encode())
            except OSError:
                conn.close()
                continue
            return conn
        return None

    def _spawn_worker(self) -> None:
        thread = threading.Thread(target=self._worker, name="nodenet-agent-worker", daemon=True)
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def _at_home(self) -> bool:
        try:
            return _ns_id(THREAD_NETNS) == self.home
        except OSError:
            return False

    def _worker(self) -> None:
        while True:
            conn = self._accept()
            if conn is None:
                return
            try:
                self._serve(conn)
            finally:
                conn.close()
            if not self._at_home():
                # setns back failed: this thread must never serve again.
                _log("a worker could not return to the agent's network namespace; retiring it")
                with self.lock:
                    self.stats["retired_workers"] = int(self.stats["retired_workers"]) + 1  # type: ignore[call-overload]
                if not self.stopping:
                    self._spawn_worker()
                return

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            token, plugin, env, stdin = read_request(conn)
        except (BadRequest, OSError) as e:
            self._count("refused")
            _log("dropped a request: %s" % e)
            return
        if not hmac.compare_digest(token, self.token):
            self._count("refused")
            _send(conn, encode_answer(1, '{"code":4,"msg":"the nodenet agent refused the call: bad token (root only)"}\n', ""))
            return
        conn.settimeout(None)
        if plugin == STATS:
            with self.lock:
                out = json.dumps(self.stats, sort_keys=True)
            _send(conn, encode_answer(0, out + "\n", ""))
            return
        with self.lock:
            self.stats["in_flight"] = int(self.stats["in_flight"]) + 1  # type: ignore[call-overload]
        from .. import fileio

        code, out, err = 1, "", ""
        # A lease file the call replaces or removes is freed after the answer
        # (freeing can wait on the disk: fileio.hold_freed_inodes).
        fileio.hold_freed_inodes()
        try:
            try:
                if not self._at_home():
                    code, out, err = 1, '{"code":11,"msg":"nodenet agent worker is not in the agent\'s network namespace; try again"}\n', ""
                else:
                    from .. import skel

                    code, out, err = skel.run(plugin, env, stdin)
            finally:
                with self.lock:
                    self.stats["in_flight"] = int(self.stats["in_flight"]) - 1  # type: ignore[call-overload]
                    self.stats["calls"] = int(self.stats["calls"]) + 1  # type: ignore[call-overload]
                    if code != 0:
                        self.stats["errors"] = int(self.stats["errors"]) + 1  # type: ignore[call-overload]
            _send(conn, encode_answer(code, out, err))
        finally:
            fileio.free_held_inodes()

    def _count(self, what: str) -> None:
        with self.lock:
            self.stats[what] = int(self.stats[what]) + 1  # type: ignore[call-overload]


def _send(conn: socket.socket, data: bytes) -> None:
    try:
        conn.sendall(data)
    except OSError:
        pass  # the shim is gone (its runtime gave up); nothing to tell


def _log(msg: str) -> None:
    try:
        sys.stderr.write("nodenet-agent[%d]: %s\n" % (os.getpid(), msg))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _runtime_dir() -> str:
    from .shim import own_runtime_dir

    return own_runtime_dir()


def _runtime_digest() -> str:
    try:
        with open(os.path.join(_runtime_dir(), "MANIFEST.json")) as f:
            return str(json.load(f).get("digest", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _print_status(port: int, run_dir: str, expect_digest: Optional[str] = None) -> int:
    from .client import status

    rc, counters, error = status(port, run_dir, expect_digest)
    if error:
        _log(error)
    else:
        sys.stdout.write(json.dumps(counters, sort_keys=True) + "\n")
    return rc


def preload() -> None:
    """Import now what the calls use, so that the first call pays nothing.

    pyroute2 and netaddr are lazy packages (lazy.py), as in the shims'
    fallback: their `__init__` imports the whole library to re-export its
    names (pyroute2: its asyncio socket layer, NDB with sqlite, ...; netaddr:
    its EUI/OUI databases), which the calls never use: they use pyroute2's
    message classes and request filters on our own socket (net/rtnl.py) and
    netaddr's address types. That halves the agent's start (CPU) and its
    memory. A name the calls do ask a lazy package for still works: the real
    `__init__` runs then, once (lazy.py).
    """
    from ..lazy import lazy_package

    lazy_package("pyroute2")
    lazy_package("netaddr")
    from .. import skel

    for name in skel.PLUGIN_MODULES:
        plugin = skel.load_plugin(name)
        if plugin.warm is not None:
            try:
                plugin.warm()
            except ImportError:
                pass  # a runtime without them fails its calls with that error, as an exec'd plugin would


def main(argv: List[str], port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR) -> int:
    parser = argparse.ArgumentParser(prog="nodenet-agent", description="Serve the nodenet CNI shims exec'd in this network namespace.")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--run-dir", default=run_dir)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--status", action="store_true", help="print the running agent's counters as JSON (exit 3: none runs here)")
    parser.add_argument("--expect-digest", metavar="DIGEST", help="with --status: exit 4 when the running agent serves another runtime")
    opts = parser.parse_args(argv)
    if os.environ.get("CNI_COMMAND"):
        # exec'd as if it were a plugin (a bin-dir scan): answer like one, never start serving
        sys.stdout.write('{"code":4,"msg":"nodenet-agent is the node agent, not a CNI plugin"}\n')
        return 1
    if os.geteuid() != 0:
        _log("must run as root")
        return 1
    if opts.status:
        return _print_status(opts.port, opts.run_dir, opts.expect_digest)
    sys.setswitchinterval(SWITCH_INTERVAL)
    agent = Agent(opts.port, opts.run_dir, opts.workers)
    preload()
    # What is loaded now lives as long as the agent: keep it out of every
    # garbage collection (a full one over it costs ~10 ms, a p95 spike).
    gc.collect()
    gc.freeze()
    try:
        agent.start()
    except OSError as e:
        _log("cannot listen on 127.0.0.1:%d: %s" % (opts.port, e))
        return 1
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    agent.serve_forever()
    return 0

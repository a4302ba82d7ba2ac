#!/usr/bin/env bash
# Set up this checkout for `make demo` / `make test` on Debian 12 (idempotent).
#
#   1. Debian packages the plugins, tests and demo use (installed only when missing)
#   2. .venv in the repository root with the pinned requirements.txt
#   3. collections/ansible_collections/nodenet/cni -> the checkout (ansible.cfg uses it)
#   4. the get-pip stand-in ansible-test needs on machines without its download host
#
# Needs root for step 1 (apt-get); the rest runs as anyone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PACKAGES=(
  iproute2 nftables iptables conntrack iputils-ping   # what the plugins drive, and ping for checks
  containernetworking-plugins                         # the Go reference plugins, for interop tests and bench
  containerd runc busybox-static                      # a private containerd (CRI, ctr) for the kubelet-path tests
  jq make git rsync ca-certificates procps util-linux # tooling for scripts and tests
  shellcheck                                          # ansible-test sanity checks shell scripts with it
  python3 python3-venv                                # the node's own python3 that runs the plugins
  openssh-server openssh-client sudo socat            # the lab's ssh flavour: sshd + sudo in nodes, ProxyCommand
  systemd                                             # systemd-analyze verify reads the units the role installs (nothing is started)
)

say() { printf '==> %s\n' "$*"; }

missing_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
      printf '%s\n' "$pkg"
    fi
  done
}

install_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if [[ ${#missing[@]} -eq 0 ]]; then
    say "Debian packages: all present"
    return
  fi
  say "Debian packages: installing ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  # containerd and openssh-server ship services; the tests and the lab run them
  # privately inside namespaces they make, never in this machine's root
  # namespaces. A policy-rc.d answering 101 stops the install from starting them.
  local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 0755 "$policy"
    made_policy=1
  fi
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  if [[ $made_policy -eq 1 ]]; then
    "${sudo[@]}" rm -f "$policy"
  fi
  return "$rc"
}

pick_python() {
  # The python3 on PATH (3.11 here), else Debian's; ansible-core 2.19 needs >= 3.11.
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3 /usr/bin/python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null &&
      "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  echo "setup: no Python >= 3.11 with venv found (set PYTHON=/path/to/python3)" >&2
  exit 1
}

make_venv() {
  local stamp=.venv/.requirements.sha256 want
  want="$(sha256sum requirements.txt | cut -d' ' -f1)"
  if [[ -x .venv/bin/python && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && .venv/bin/python -c 'import ansible, pyroute2, netaddr' 2>/dev/null; then
    say ".venv: up to date with requirements.txt"
    return
  fi
  if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
    local python
    python="$(pick_python)"
    say ".venv: creating with $python ($("$python" --version 2>&1))"
    rm -rf .venv
    "$python" -m venv .venv
  fi
  say ".venv: installing requirements.txt"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  printf '%s\n' "$want" >"$stamp"
}

link_collection() {
  local link=collections/ansible_collections/nodenet/cni
  if [[ -L "$link" && "$(readlink "$link")" == "../../.." ]]; then
    return
  fi
  say "collections: linking $link to the checkout"
  mkdir -p "$(dirname "$link")"
  rm -rf "$link"
  ln -s ../../.. "$link"
}

install_get_pip_shim() {
  # ansible-test bootstraps pip in its sanity venvs by downloading get-pip from a
  # host this machine cannot reach; a cached script at this path is used instead.
  local shim="$HOME/.ansible/test/cache/get_pip_24_2.py"
  local body
  body='"""Stand-in for get-pip.py (written by nodenet.cni scripts/setup.sh).

ansible-test runs this inside a fresh venv to bootstrap pip. We take pip from
ensurepip, then install the requested pip with the machine'"'"'s CA bundle.
"""
import subprocess
import sys

CERT = "/etc/ssl/certs/ca-certificates.crt"
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--cert", CERT] + args)
'
  if [[ -f "$shim" ]] && printf '%s' "$body" | cmp -s - "$shim"; then
    return
  fi
  say "ansible-test: installing the get-pip stand-in at $shim"
  mkdir -p "$(dirname "$shim")"
  printf '%s' "$body" >"$shim"
}

install_packages
make_venv
link_collection
install_get_pip_shim
say "setup done: ansible-core $(.venv/bin/python -c 'import ansible.release as r; print(r.__version__)') in $ROOT/.venv"

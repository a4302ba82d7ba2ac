#!/usr/bin/env bash
# The main job on one machine (what `make demo` runs after setup):
#   1. a lab of simulated kubelet nodes (network + mount + UTS namespaces,
#      joined by an underlay that lives in its own namespace; nothing is
#      linked to this machine's network),
#   2. playbooks/site.yml: the pod network rolled out to every node in
#      batches, each batch probed before the next,
#   3. playbooks/verify.yml: a probe pod on every node, ping between every
#      pair, a table of nodes, pod subnets and results.
# The lab is removed at exit (also on failure or Ctrl-C) unless KEEP_LAB=1;
# then use it with `ansible -i inventory/lab.yml k8s_nodes ...` and remove it
# with `ansible-playbook playbooks/lab_down.yml -e lab_name=<name>`.
#
# LAB_CONNECTION=ssh reaches the nodes over real SSH (an sshd in each node, a
# non-root login user, become with sudo, the node's own python3) instead of
# the labnode connection; see docs/lab.md.
#
#   NODES=3 BATCH=1 KEEP_LAB=0 LAB_CONNECTION=labnode scripts/lab_demo.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"

if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root (it creates network namespaces)" >&2
  exit 1
fi

NODES="${NODES:-3}"
BATCH="${BATCH:-1}"
# a unique lab name per run (<= 11 characters; see roles/lab/defaults/main.yml)
LAB_NAME="${LAB_NAME:-nndemo$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')}"
INVENTORY="$ROOT/inventory/lab.yml"
LAB_CONNECTION="${LAB_CONNECTION:-labnode}"

lab_down() {
  if [[ "${KEEP_LAB:-0}" == 1 ]]; then
    echo
    echo "demo: lab $LAB_NAME kept; inventory: $INVENTORY"
    echo "demo: remove it with: .venv/bin/ansible-playbook playbooks/lab_down.yml -e lab_name=$LAB_NAME -e lab_inventory_path=$INVENTORY"
    return
  fi
  echo
  echo "== removing lab $LAB_NAME"
  ansible-playbook playbooks/lab_down.yml -e "lab_name=$LAB_NAME" -e "lab_inventory_path=$INVENTORY" >/dev/null ||
    echo "demo: lab_down failed; run it again: ansible-playbook playbooks/lab_down.yml -e lab_name=$LAB_NAME" >&2
}
trap lab_down EXIT
trap 'exit 130' INT TERM

echo "== lab $LAB_NAME: $NODES nodes, reached by $LAB_CONNECTION"
ansible-playbook playbooks/lab_up.yml -e "lab_name=$LAB_NAME" -e "lab_node_count=$NODES" -e "lab_inventory_path=$INVENTORY" \
  -e "lab_connection=$LAB_CONNECTION"

echo
echo "== site.yml (batches of $BATCH)"
ansible-playbook -i "$INVENTORY" playbooks/site.yml -e "cni_rollout_batch=$BATCH"

echo
echo "== site.yml again: nothing to change"
ansible-playbook -i "$INVENTORY" playbooks/site.yml --skip-tags probe | tail -n "$((NODES + 2))"

echo
echo "== verify.yml"
ansible-playbook -i "$INVENTORY" playbooks/verify.yml

echo
echo "demo: done (lab $LAB_NAME)"

#!/usr/bin/env bash
# The plugins alone, exec'd like a container runtime (`make demo-plugins` runs
# it after setup; `make demo` is the lab of nodes, scripts/lab_demo.sh):
#
#   1. install the plugins with one Ansible call into a temp CNI bin dir
#   2. make a "node" network namespace and two "pod" namespaces
#   3. exec the plugins inside the node like a container runtime does, with
#      the seed netconf (types nodenet-bridge / nodenet-host-local): ADD both
#      pods, ping pod -> gateway and pod -> pod, CHECK, DEL
#   4. print every plugin call (plugin, env, netconf, result) and a summary
#
# Needs root (network namespaces). Touches nothing in the root namespace:
# every namespace is made here under a unique prefix and deleted by exact
# name on exit, even on failure; nothing is linked to the root namespace.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:/usr/sbin:/usr/bin:/sbin:/bin"

if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root (it creates network namespaces)" >&2
  exit 1
fi

CALL_TIMEOUT=60 # seconds for one plugin exec
PING_TRIES=3    # one-packet pings, 2 s each
NODE_PYTHON=/usr/bin/python3

WORK="$(mktemp -d /tmp/nodenet-demo.XXXXXX)"
BIN="$WORK/bin"
DATA="$WORK/ipam"
CONF="$WORK/10-mynet.conf"
PREFIX="nnd$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')-"
NODE="${PREFIX}node"
PODS=("${PREFIX}pod1" "${PREFIX}pod2")
MADE=() # namespaces this run created, deleted by exact name

cleanup() {
  local ns
  for ns in "${MADE[@]}"; do
    if [[ -e "/run/netns/$ns" ]]; then
      ip netns delete "$ns" || echo "demo: could not delete netns $ns" >&2
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold() { if [[ -t 1 ]]; then printf '\n\033[1m%s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }

# --- 1. install --------------------------------------------------------------
bold "1. Install the plugins: ansible localhost -m nodenet.cni.cni_plugin -a bin_dir=$BIN"
ansible localhost -m nodenet.cni.cni_plugin -a "bin_dir=$BIN interpreter=$NODE_PYTHON"
ls -l "$BIN"

# --- 2. namespaces -------------------------------------------------------------
bold "2. Namespaces: node $NODE, pods ${PODS[*]}"
for ns in "$NODE" "${PODS[@]}"; do
  ip netns add "$ns"
  MADE+=("$ns")
done
ip netns exec "$NODE" ip link set lo up

# --- 3. the seed netconf, with our plugin names ---------------------------------
mkdir -p "$DATA"
cat >"$CONF" <<JSON
{
  "cniVersion": "0.3.1",
  "name": "mynet",
  "type": "nodenet-bridge",
  "bridge": "cni0",
  "isDefaultGateway": true,
  "forceAddress": false,
  "ipMasq": true,
  "hairpinMode": true,
  "ipam": {
    "type": "nodenet-host-local",
    "ranges": [[{"subnet": "10.13.0.0/22", "rangeStart": "10.13.3.8", "rangeEnd": "10.13.3.253", "gateway": "10.13.3.254"}]],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dataDir": "$DATA"
  }
}
JSON
bold "3. Netconf ($CONF)"
jq . "$CONF"

declare -A STATUS=() ADDR=() RESULT=()
FAILED=0
record() { # pod step status
  STATUS["$1/$2"]="$3"
  [[ "$3" == ok* ]] || FAILED=1
}

# Exec the plugin named by the netconf's type, inside the node, like a runtime.
cni_call() { # command pod netconf-file -> prints the call; result in $CALL_OUT, rc in $CALL_RC
  local command=$1 pod=$2 conf=$3 plugin start ms
  plugin="$BIN/$(jq -r .type "$conf")"
  local env=(
    "CNI_COMMAND=$command" "CNI_CONTAINERID=demo-$pod" "CNI_NETNS=/run/netns/$pod"
    "CNI_IFNAME=eth0" "CNI_PATH=$BIN" "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
  )
  printf '\n--- %s %s ---\n' "$command" "$pod"
  printf 'plugin : ip netns exec %s %s\n' "$NODE" "$plugin"
  printf 'env    : %s\n' "${env[*]:0:5}"
  printf 'netconf: %s\n' "$(jq -c . "$conf")"
  start=$(date +%s%N)
  set +e
  CALL_OUT="$(timeout "$CALL_TIMEOUT" ip netns exec "$NODE" env -i "${env[@]}" "$plugin" <"$conf")"
  CALL_RC=$?
  set -e
  ms=$((($(date +%s%N) - start) / 1000000))
  if [[ -n "$CALL_OUT" ]]; then
    printf 'result : (exit %d, %d ms)\n%s\n' "$CALL_RC" "$ms" "$(jq . <<<"$CALL_OUT" 2>/dev/null || printf '%s' "$CALL_OUT")"
  else
    printf 'result : (exit %d, %d ms, no output)\n' "$CALL_RC" "$ms"
  fi
}

ping_from() { # pod address -> 0 when one of PING_TRIES single pings is answered
  local try
  for ((try = 1; try <= PING_TRIES; try++)); do
    if ip netns exec "$1" ping -c 1 -W 2 "$2" >/dev/null 2>&1; then
      return 0
    fi
  done
  return 1
}

# --- 4. ADD ---------------------------------------------------------------------
bold "4. ADD both pods (exec'd inside the node namespace, as a runtime does)"
GATEWAY=""
for pod in "${PODS[@]}"; do
  cni_call ADD "$pod" "$CONF"
  if [[ $CALL_RC -eq 0 ]]; then
    RESULT[$pod]="$CALL_OUT"
    ADDR[$pod]="$(jq -r '.ips[0].address' <<<"$CALL_OUT")"
    GATEWAY="$(jq -r '.ips[0].gateway' <<<"$CALL_OUT")"
    record "$pod" ADD "ok ${ADDR[$pod]}"
  else
    record "$pod" ADD "FAILED (exit $CALL_RC)"
  fi
done

# --- 5. ping --------------------------------------------------------------------
bold "5. Ping (addresses inside the demo namespaces only)"
for i in 0 1; do
  pod=${PODS[$i]}
  other=${PODS[$((1 - i))]}
  if [[ -z "${ADDR[$pod]:-}" ]]; then
    record "$pod" "ping gateway" "skipped"
    record "$pod" "ping other pod" "skipped"
    continue
  fi
  if ping_from "$pod" "$GATEWAY"; then record "$pod" "ping gateway" "ok $GATEWAY"; else record "$pod" "ping gateway" "FAILED $GATEWAY"; fi
  printf '%s -> gateway %s: %s\n' "$pod" "$GATEWAY" "${STATUS[$pod/ping gateway]}"
  if [[ -n "${ADDR[$other]:-}" ]]; then
    target=${ADDR[$other]%/*}
    if ping_from "$pod" "$target"; then record "$pod" "ping other pod" "ok $target"; else record "$pod" "ping other pod" "FAILED $target"; fi
  else
    record "$pod" "ping other pod" "skipped"
  fi
  printf '%s -> %s: %s\n' "$pod" "$other" "${STATUS[$pod/ping other pod]}"
done

# --- 6. CHECK -------------------------------------------------------------------
# CHECK exists from spec 0.4.0 on; the seed netconf says 0.3.1, so a runtime
# would skip it. We ask as a 1.0.0 runtime would, with the ADD result converted
# to 1.0.0 as prevResult (0.3.1 -> 1.0.0 only drops ips[].version).
bold "6. CHECK (the same network as cniVersion 1.0.0, prevResult = the ADD result)"
for pod in "${PODS[@]}"; do
  if [[ -z "${RESULT[$pod]:-}" ]]; then
    record "$pod" CHECK "skipped"
    continue
  fi
  jq --argjson prev "${RESULT[$pod]}" \
    '.cniVersion = "1.0.0" | .prevResult = ($prev | .cniVersion = "1.0.0" | del(.ips[].version))' \
    "$CONF" >"$WORK/check-$pod.conf"
  cni_call CHECK "$pod" "$WORK/check-$pod.conf"
  if [[ $CALL_RC -eq 0 ]]; then record "$pod" CHECK "ok"; else record "$pod" CHECK "FAILED (exit $CALL_RC)"; fi
done

# --- 7. DEL ---------------------------------------------------------------------
bold "7. DEL both pods (and once more: DEL is idempotent)"
for pod in "${PODS[@]}"; do
  cni_call DEL "$pod" "$CONF"
  rc1=$CALL_RC
  cni_call DEL "$pod" "$CONF"
  if [[ $rc1 -eq 0 && $CALL_RC -eq 0 ]]; then record "$pod" DEL "ok"; else record "$pod" DEL "FAILED (exit $rc1, again $CALL_RC)"; fi
done
leases=$(find "$DATA/mynet" -maxdepth 1 -type f ! -name lock ! -name 'last_reserved_ip.*' 2>/dev/null | wc -l)
printf '\nleases left in %s/mynet: %d\n' "$DATA" "$leases"
if ip netns exec "${PODS[0]}" ip link show eth0 >/dev/null 2>&1; then
  echo "eth0 still present in ${PODS[0]}"
  FAILED=1
fi
[[ $leases -eq 0 ]] || FAILED=1

# --- summary --------------------------------------------------------------------
bold "Summary (plugins in $BIN on $NODE_PYTHON; namespaces deleted on exit)"
printf '%-16s %-26s %-26s\n' step "${PODS[0]#"$PREFIX"}" "${PODS[1]#"$PREFIX"}"
for step in ADD "ping gateway" "ping other pod" CHECK DEL; do
  printf '%-16s %-26s %-26s\n' "$step" "${STATUS[${PODS[0]}/$step]:-}" "${STATUS[${PODS[1]}/$step]:-}"
done
printf '%-16s %s\n' "leases left" "$leases"
if [[ $FAILED -ne 0 ]]; then
  echo "demo: FAILED" >&2
  exit 1
fi
echo "demo: ok"

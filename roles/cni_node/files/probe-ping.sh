# shellcheck shell=bash
# bash: run by roles/cni_node/tasks/probe_ping.yml as
#   bash -c "<this text>" probe-ping NETNS IP...
# Ping every target from the probe pod, all at once (one command per node,
# not one per target).
# Prints one line per target, "ok IP" or "failed IP" (the order is the order
# of the answers). A fresh pod's first packet may wait for neighbour
# discovery: one retry a second later. Bounded: two tries of ping -c 2 -W 2.
set -u
netns=$1
shift
ping_one() {
  local try
  for try in 1 2; do
    if ip netns exec "$netns" ping -c 2 -i 0.2 -W 2 "$1" >/dev/null 2>&1; then
      echo "ok $1"
      return
    fi
    [[ $try == 2 ]] || sleep 1
  done
  echo "failed $1"
}
for ip in "$@"; do
  ping_one "$ip" &
done
wait

# shellcheck shell=bash
# bash: run by roles/cni_node/tasks/probe_ping.yml as
#   bash -c "<this text>" probe-ping NETNS IP...
# and by probe_batch.yml (site.yml's probe, which judges here) as
#   bash -c "<this text>" probe-ping --judge NODE NETNS NAME=IP...
# Ping every target from the probe pod, all at once (one command per node,
# not one per target).
# Prints one line per target, "ok IP" or "failed IP" (the order is the order
# of the answers). A fresh pod's first packet may wait for neighbour
# discovery: one retry a second later. Bounded: two tries of ping -c 2 -W 2.
# With --judge NODE (targets named NAME=IP, the name up to the last "="),
# a target without an answer then also gets the verdict
#   pod network check failed on NODE: no answer from NAME IP, NAME IP
# and the exit status 1 (else 0).
set -u
node=
if [[ ${1-} == --judge ]]; then
  node=$2
  shift 2
fi
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
# (the substitution ends when every ping has closed its output)
answers=$(
  for target in "$@"; do
    ping_one "${target##*=}" &
  done
  wait
)
[[ -z $answers ]] || printf '%s\n' "$answers"
[[ -n $node ]] || exit 0
lost=
for target in "$@"; do
  ip=${target##*=}
  if ! grep -qxF "ok $ip" <<<"$answers"; then
    name=${target%=*}
    [[ $name != "$target" ]] || name=$ip
    lost+="${lost:+, }$name $ip"
  fi
done
[[ -n $lost ]] || exit 0
echo "pod network check failed on $node: no answer from $lost"
exit 1

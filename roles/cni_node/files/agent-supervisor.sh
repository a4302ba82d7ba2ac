# shellcheck shell=bash
# bash: run by roles/cni_node/tasks/agent_lab.yml as
#   bash -c "<this text>" agent-supervisor AGENT LIFELINE STATE_DIR
# (no file on the node: the text travels with the task). Keeps the nodenet
# agent running in this lab node's namespaces (a lab node has no systemd).
# Exits, stopping the agent, when the lab node's state dir (LIFELINE) is gone
# (lab_down) or the agent launcher was uninstalled, or on SIGTERM. Restarts
# the agent whenever it exits, so SIGTERM to the agent (a new runtime)
# restarts it.
agent=$1
lifeline=$2
state=$3
child=''
stop() {
  [[ -n $child ]] && kill -TERM "$child" 2>/dev/null && wait "$child"
  rm -f "$state/agent.pid" "$state/agent-supervisor.pid" "$state/agent.out"
  exit 0
}
trap stop TERM INT
echo $$ >"$state/agent-supervisor.pid"
while [[ -e $lifeline && -x $agent ]]; do
  # its stdout is one line, "ready" once it serves (agent_lab.yml waits for it)
  "$agent" >"$state/agent.out" 2>>"$state/agent.log" &
  child=$!
  echo "$child" >"$state/agent.pid"
  while kill -0 "$child" 2>/dev/null; do
    [[ -e $lifeline && -x $agent ]] || stop
    sleep 1 &
    wait $!
  done
  wait "$child"
  echo "$(date -u +%FT%TZ) agent $child exited ($?)" >>"$state/agent.log"
  child=''
  sleep 1
done
stop

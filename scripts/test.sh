#!/usr/bin/env bash
# Run the test suites; `make test` runs them all after `make setup`.
#
#   scripts/test.sh [pytest|unit|integration|agent|sanity|lint|molecule ...]   (default: pytest sanity lint molecule)
#
#   pytest       tests/unit + tests/integration (root: network namespaces)
#   unit         tests/unit only, without the `slow` marker; runs as any user (no root)
#   integration  tests/integration only (root)
#   agent        the plugin suite again, served by nodenet-agents (root; part of pytest)
#   sanity       ansible-test sanity --python 3.11 on a copy of the collection
#   lint         ansible-lint --profile production
#   molecule     molecule test for every scenario (labs of namespace nodes, also over SSH; root)
#
# Every suite runs even when an earlier one failed; the exit code is non-zero
# if any failed. pytest collecting no test (exit 5) counts as a failure.
# The suite_* functions are called by name (suite_$suite).
# shellcheck disable=SC2317
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
PYTHON_VERSION=3.11

if [[ ! -x .venv/bin/python ]]; then
  echo "test: no .venv; run 'make setup' (or scripts/setup.sh) first" >&2
  exit 1
fi

suites=("$@")
[[ ${#suites[@]} -gt 0 ]] || suites=(pytest sanity lint molecule)

needs_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "test: $1 needs root (it creates network namespaces); run as root" >&2
    return 1
  fi
}

# Failed test ids of every pytest run, repeated in the summary at the end so
# that the last lines of a long log say what failed.
FAILURES="$(mktemp /tmp/nodenet-test-failures.XXXXXX)"
trap 'rm -f "$FAILURES"' EXIT

run_pytest() {
  local rc log
  log="$(mktemp /tmp/nodenet-pytest.XXXXXX)"
  python -m pytest "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  grep -E '^(FAILED|ERROR) ' "$log" >>"$FAILURES"
  rm -f "$log"
  if [[ $rc -eq 5 ]]; then
    echo "test: pytest collected no tests; that counts as a failure" >&2
  fi
  return "$rc"
}

# The plugin suite runs twice: without an agent (the shims' in-process
# fallback, the default) and with NODENET_TEST_MODE=agent (a nodenet-agent in
# every test host namespace serves the shims); results must be identical.
PLUGIN_SUITE=(tests/integration/test_bridge.py tests/integration/test_host_local.py tests/integration/test_loopback.py
  tests/integration/test_portmap.py tests/integration/test_interop_bridge.py tests/integration/test_interop_ipam.py)
suite_agent() { needs_root agent && NODENET_TEST_MODE=agent run_pytest "${PLUGIN_SUITE[@]}"; }
suite_pytest() { needs_root pytest && run_pytest tests/unit tests/integration && suite_agent; }
suite_unit() { run_pytest -m "not slow" tests/unit; }
suite_integration() { needs_root integration && run_pytest tests/integration; }

copy_collection() {
  # ansible-test wants .../ansible_collections/<ns>/<name>; copy what git would
  # ship (tracked + new unignored files), so .venv and other junk are not scanned.
  local dest=$1
  mkdir -p "$dest"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' path; do
        [[ -e "$path" || -L "$path" ]] && printf '%s\0' "$path"
      done |
      tar --null --no-recursion -T - -cf - | tar -xf - -C "$dest"
  else
    rsync -a --exclude .venv --exclude collections --exclude .git --exclude tests/output \
      --exclude .ansible --exclude .pytest_cache --exclude .ruff_cache --exclude '__pycache__' ./ "$dest/"
  fi
}

suite_sanity() {
  local tmp rc
  tmp="$(mktemp -d /tmp/nodenet-sanity.XXXXXX)"
  copy_collection "$tmp/ansible_collections/nodenet/cni"
  (cd "$tmp/ansible_collections/nodenet/cni" && ansible-test sanity --python "$PYTHON_VERSION" --color no)
  rc=$?
  rm -rf "$tmp"
  return "$rc"
}

suite_lint() { ansible-lint --profile production; }

suite_molecule() {
  # scenarios live in extensions/molecule (default: 1 node, multinode: 3 -> 4 nodes + reset,
  # multinode_ssh: the same over real SSH with become)
  needs_root molecule || return 1
  local scenario rc=0
  for scenario in default multinode multinode_ssh; do
    molecule test -s "$scenario" || rc=1
  done
  return "$rc"
}

declare -A status=()
failed=0
for suite in "${suites[@]}"; do
  if ! declare -F "suite_$suite" >/dev/null; then
    echo "test: unknown suite '$suite' (pytest unit integration agent sanity lint molecule)" >&2
    exit 2
  fi
  printf '\n==> %s\n' "$suite"
  start=$SECONDS
  if "suite_$suite"; then
    status[$suite]="ok ($((SECONDS - start))s)"
  else
    status[$suite]="FAILED ($((SECONDS - start))s)"
    failed=1
  fi
done

printf '\n==> summary\n'
for suite in "${suites[@]}"; do
  printf '  %-12s %s\n' "$suite" "${status[$suite]}"
done
if [[ -s $FAILURES ]]; then
  printf '\n==> failed tests\n'
  cut -c1-400 "$FAILURES" | sed 's/^/  /'
fi
exit $failed

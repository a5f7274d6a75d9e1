#!/usr/bin/env bash
# `npm test`: set up what is missing (scripts/setup.sh), type-check and build, run the tests, then the Docker tier
# (./aixcl on real containers) on its own, because it drives the machine's one `aixcl` compose project and must
# not share the CPU with the other tests. Each step prints its time.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() {
  local name=$1 t=$SECONDS
  shift
  echo "::: $name (t+$((SECONDS - started))s)" >&2
  "$@"
  echo "::: $name: done in $((SECONDS - t))s" >&2
}

step "set-up" bash scripts/setup.sh
step "build and type-check" bash -c 'npx tsc -b && npx tsc -p tsconfig.test.json'
step "tests" npx vitest run --project main
step "Docker tier" npx vitest run --project docker
echo "::: all tests passed in $((SECONDS - started))s" >&2

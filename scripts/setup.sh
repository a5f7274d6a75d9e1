#!/usr/bin/env bash
# Everything the tests need, installed or built where missing, each step timed; what is there already costs
# seconds. `npm test` runs it first (scripts/test.sh), and so does CI (.ci/run). On a fresh machine it:
#   1. installs the npm dependencies (npm ci) when package-lock.json changed since the last install;
#   2. builds the real Loki, Promtail, Prometheus, promtool, Alertmanager, amtool and versitygw at the compose files'
#      pins (scripts/components.sh);
#   3. builds the test Grafana server (grafana/scripts/grafana-server.sh);
#   4. builds the OpenTelemetry Collector the benchmark runs beside Promtail, which test/components/otelcol.test.ts
#      checks (scripts/components.sh otelcol, pinned in bench/otelcol/builder-config.yaml; 2.5 minutes after the
#      components above, 3.5 with an empty Go build cache);
#   5. makes the Python client's venv (scripts/python.sh: `pip install ./clients/python` and pytest), in CI afresh
#      every time, elsewhere when the package's sources changed;
#   6. makes sure a Docker engine with Compose v2 answers, for the Docker tier (scripts/docker-engine.sh): on a
#      Debian machine, as root, it installs docker.io, starts dockerd and builds Compose. Outside CI a machine
#      without Docker only loses the Docker tier, which then skips and says why;
#   7. in CI only (CI=true), whose machines reach no image registry: local stand-ins for the upstream images
#      (.ci/standin-images.sh). Never on a user's machine, where compose pulls the real ones.
# Builds are cached outside the clone (${AIXCL_CACHE:-~/.cache/aixcl}); from nothing on 2 cores the set-up took 35
# minutes (README.md, "The two commands", step by step), a warm one takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() {
  local name=$1 t=$SECONDS
  shift
  echo "setup: $name ..." >&2
  "$@"
  echo "setup: $name done ($((SECONDS - t))s)" >&2
}

npm_dependencies() {
  # npm ci when the lockfile differs from the one of the last install (recorded here by this script).
  local stamp=node_modules/.aixcl-lockfile
  if [[ -d node_modules ]] && cmp -s package-lock.json "$stamp"; then return; fi
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
}

docker_engine() {
  if bash scripts/docker-engine.sh; then return; fi
  [[ ${CI:-} == true ]] && { echo "setup: CI needs a Docker engine for the Docker tier" >&2; return 1; }
  echo "setup: no Docker engine: the Docker tier will skip (see above)" >&2
}

step "npm dependencies" npm_dependencies
step "real components (Loki, Promtail, Prometheus, promtool, Alertmanager, amtool, versitygw)" bash scripts/components.sh
step "test Grafana server" bash grafana/scripts/grafana-server.sh
step "OpenTelemetry Collector (the benchmark's second reference shipper)" bash scripts/components.sh otelcol
# CI proves every time that the package installs into a new venv, as a user's `pip install` does.
step "Python client venv" bash scripts/python.sh $([[ ${CI:-} == true ]] && echo --fresh)
step "Docker engine and Compose" docker_engine
[[ ${CI:-} != true ]] || step "stand-ins for the upstream images (CI only)" bash .ci/standin-images.sh
echo "setup: ready in $((SECONDS - started))s" >&2

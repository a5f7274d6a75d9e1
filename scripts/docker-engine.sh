#!/usr/bin/env bash
# Makes sure a Docker engine answers and `docker compose` (v2) works, for the Docker tier of the tests.
#
#   scripts/docker-engine.sh                  install/start what is missing (see below), then print the versions
#   scripts/docker-engine.sh --build-compose  only build Compose into $AIXCL_CACHE/bin when missing, install nothing
#                                             (.ci/cold-paths.sh runs it with an empty cache)
#
# On a developer's machine Docker is normally there already and this only checks it. On a fresh Debian
# machine (CI), as root, it:
# - installs Debian's docker.io (Docker Engine 20.10, containerd, runc) when there is no dockerd;
# - starts dockerd in the background when no engine answers (there is no systemd on these machines), logging to
#   $AIXCL_CACHE/dockerd.log, and waits until it answers;
# - builds Compose v2 from its Go module when `docker compose version` fails, at COMPOSE_VERSION below,
#   cached outside the clone in $AIXCL_CACHE/bin, and installs it as the CLI plugin for every user
#   (/usr/local/lib/docker/cli-plugins; ~/.docker/cli-plugins when not root).
# Compose v5 needs a module the Go module proxy refuses; v2.40.3 builds with the Go here.
set -euo pipefail

COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION=v2.40.3
CACHE_DIR=${AIXCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aixcl}
COMPOSE_BIN="$CACHE_DIR/bin/docker-compose-$COMPOSE_VERSION"

say() { echo "docker-engine: $*" >&2; }
die() { echo "docker-engine: $*" >&2; exit 1; }

engine_answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }
compose_works() { docker compose version --short >/dev/null 2>&1; }

[[ $# -eq 0 || $* == --build-compose ]] || die "usage: $0 [--build-compose]"

root() { [[ $(id -u) == 0 ]]; }

install_engine() {
  command -v dockerd >/dev/null && return
  root && command -v apt-get >/dev/null ||
    die "no Docker engine here. Install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop, then run this again."
  say "installing Debian's docker.io (Docker Engine, containerd, runc)"
  bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" "$CACHE_DIR/apt-docker.log" docker.io || die "apt-get install docker.io failed"
}

start_engine() {
  root || die "the Docker engine does not answer, and starting it needs root: start Docker (sudo systemctl start docker), or make sure your user may use it ('docker info' must work without sudo)."
  say "starting dockerd (log: $CACHE_DIR/dockerd.log)"
  # setsid: the daemon must outlive this script and the test run that started it, and not get its signals.
  setsid dockerd >>"$CACHE_DIR/dockerd.log" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 60; i++)); do
    engine_answers && { say "dockerd answers after ${i}s"; return; }
    sleep 1
  done
  tail -n 20 "$CACHE_DIR/dockerd.log" >&2
  die "dockerd did not answer within 60 s (log: $CACHE_DIR/dockerd.log)"
}

build_compose() {
  [[ -x $COMPOSE_BIN ]] && return
  command -v go >/dev/null || die "Docker Compose v2 is missing and building it needs Go (https://go.dev/dl/); or install the Compose plugin: https://docs.docker.com/compose/install/"
  local started=$SECONDS dir pid
  say "building Compose $COMPOSE_VERSION from its Go module (cold: a few minutes; progress every 15 s)"
  dir=$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $dir ]] || die "cannot download $COMPOSE_MODULE@$COMPOSE_VERSION through the Go module proxy ($(go env GOPROXY))"
  mkdir -p "$(dirname "$COMPOSE_BIN")"
  # Inside its own module directory: its go.mod has replace directives, which `go install module@version` refuses.
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" -o "$COMPOSE_BIN.tmp" ./cmd) >"$CACHE_DIR/compose-build.log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null; rm -f "$COMPOSE_BIN.tmp"; exit 130' INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15 & wait $! || true
    kill -0 "$pid" 2>/dev/null && say "still compiling Compose, $((SECONDS - started))s elapsed"
  done
  wait "$pid" || { tail -n 30 "$CACHE_DIR/compose-build.log" >&2; die "building Compose failed (log: $CACHE_DIR/compose-build.log)"; }
  trap - INT TERM
  mv -f "$COMPOSE_BIN.tmp" "$COMPOSE_BIN"
  say "built Compose $COMPOSE_VERSION in $((SECONDS - started))s"
}

install_compose() {
  compose_works && return
  build_compose
  local plugins=/usr/local/lib/docker/cli-plugins
  root || plugins="$HOME/.docker/cli-plugins"
  mkdir -p "$plugins"
  install -m 0755 "$COMPOSE_BIN" "$plugins/docker-compose"
  compose_works || die "installed $plugins/docker-compose, but 'docker compose version' still fails"
}

mkdir -p "$CACHE_DIR"
if [[ ${1:-} == --build-compose ]]; then
  build_compose
  "$COMPOSE_BIN" version
  exit 0
fi
if ! engine_answers; then
  install_engine
  start_engine
fi
install_compose
say "engine $(docker info --format '{{.ServerVersion}}'), compose $(docker compose version --short)"

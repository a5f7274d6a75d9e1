#!/usr/bin/env bash
# Builds a real Grafana server (backend only) from Grafana's Go module, so test/grafana/grafana-server.test.ts
# can check through Grafana's HTTP API that our provisioning loads.
#
#   grafana/scripts/grafana-server.sh          build it unless already cached (15 min cold on 2 shared cores, 2 min with a warm Go build cache)
#   grafana/scripts/grafana-server.sh --path   print the binary's path; exit 1 if not built
#   grafana/scripts/grafana-server.sh --home   print its home path (conf/defaults.ini, public/); exit 1 if not built
#
# Why this version, not the 13.1.x that docker-compose.yml runs: the Go module proxy serves
# github.com/grafana/grafana at no release at all (every vX.Y.Z, @latest and @v/list answer 403 "This module
# version is not available": Grafana's tags are not valid Go module versions, the go.mod has no /vN suffix).
# The only version it serves is the pseudo-version below, a main-branch commit of 2023-06-09 (10.1 development;
# the binary calls itself 9.2.0 because release builds inject the version). Dashboards and provisioning files
# are stored and served as written, so this checks our files' structure, uids, folder and the Loki query path,
# not Grafana 13's rendering.
#
# Grafana's own build generates pkg/server/wire_gen.go (dependency injection) before compiling; the module zip
# does not contain it. The wire version Grafana pins (v0.5.0) panics type-checking Go 1.2x's standard library,
# so wire v0.7.0 generates it. The frontend (public/build) is not built: the API does not need it.
set -euo pipefail

VERSION=v1.9.2-0.20230609164553-81d85ce8028d
WIRE=github.com/google/wire/cmd/wire@v0.7.0
CACHE_DIR=${AIXCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aixcl}
BIN="$CACHE_DIR/bin/grafana-$VERSION"
HOME_DIR="$CACHE_DIR/build/grafana-$VERSION"

case ${1:-} in
  --path) [[ -x $BIN ]] && echo "$BIN" && exit 0; exit 1 ;;
  --home) [[ -x $BIN && -f $HOME_DIR/conf/defaults.ini ]] && echo "$HOME_DIR" && exit 0; exit 1 ;;
  "") ;;
  *) echo "usage: $0 [--path|--home]" >&2; exit 2 ;;
esac

if [[ -x $BIN ]]; then
  echo "grafana-server: already built: $BIN" >&2
  exit 0
fi
command -v go >/dev/null || { echo "grafana-server: needs Go (https://go.dev/dl/) and the Go module proxy" >&2; exit 1; }

echo "grafana-server: downloading github.com/grafana/grafana@$VERSION" >&2
src=$(cd "$(mktemp -d)" && go mod download -json "github.com/grafana/grafana@$VERSION" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error){console.error(j.Error);process.exit(1)}process.stdout.write(j.Dir)})')

# The module cache is read-only, and wire writes into the tree: build in a copy, which is also the home path.
rm -rf "$HOME_DIR"
mkdir -p "$(dirname "$HOME_DIR")" "$(dirname "$BIN")"
cp -r "$src" "$HOME_DIR"
chmod -R u+w "$HOME_DIR"
cd "$HOME_DIR"

echo "grafana-server: generating pkg/server/wire_gen.go with $WIRE" >&2
go run "$WIRE" gen -tags oss ./pkg/server

echo "grafana-server: compiling ./pkg/cmd/grafana (the longest step; a line every 250 packages)" >&2
log="$HOME_DIR/build.log"
if ! go build -v -o "$BIN.tmp" ./pkg/cmd/grafana 2>&1 | tee "$log" | awk '{ n++ } n % 250 == 0 { print "grafana-server: " n " packages compiled" > "/dev/stderr" }'; then
  echo "grafana-server: build failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
mv "$BIN.tmp" "$BIN"
echo "grafana-server: built $BIN" >&2

#!/usr/bin/env bash
# Builds (or finds already built) the real Loki, Promtail, Prometheus, promtool, Alertmanager and amtool
# binaries that the tests and developers run natively, at the versions pinned by the image tags in
# docker-compose.yml.
#
#   scripts/components.sh              build whatever is missing for the current pins
#   scripts/components.sh loki ...     only these (loki, promtail, prometheus, promtool, alertmanager, amtool)
#   scripts/components.sh --path NAME  print the cached binary for the current pin; exit 1 if not built
#   scripts/components.sh --list       print "name version path status" for each component
#
# Binaries are cached outside the clone in $AIXCL_CACHE/bin (default ~/.cache/aixcl/bin) as
# <name>-<version>, so a pin change in docker-compose.yml simply builds a new file and other clones reuse
# them. Needs Go (the version Loki's go.mod asks for; GOTOOLCHAIN=auto fetches it) and the Go module proxy.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPOSE_FILE="$ROOT/docker-compose.yml"
CACHE_DIR=${AIXCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aixcl}
BIN_DIR="$CACHE_DIR/bin"
WORK_DIR="$CACHE_DIR/build"
COMPONENTS=(loki promtail prometheus promtool alertmanager amtool)

die() { echo "components: $*" >&2; exit 1; }
say() { echo "components: $*" >&2; }

# image_tag <image repository>: the tag docker-compose.yml pins for that image (the single source of versions).
image_tag() {
  local tag
  tag=$(sed -nE "s#^[[:space:]]*image:[[:space:]]*[\"']?$1:([^\"'[:space:]@]+).*#\1#p" "$COMPOSE_FILE" | head -n1)
  [[ -n $tag ]] || die "no 'image: $1:<tag>' line in $COMPOSE_FILE; pin the image there first"
  echo "$tag"
}

# version <component>: the release version (no leading v) the binary is built at.
version() {
  case $1 in
    loki) image_tag grafana/loki ;;
    promtail) image_tag grafana/promtail ;;
    prometheus | promtool) local t; t=$(image_tag prom/prometheus); echo "${t#v}" ;;
    alertmanager | amtool) local t; t=$(image_tag prom/alertmanager); echo "${t#v}" ;;
    *) die "unknown component '$1' (expected one of: ${COMPONENTS[*]})" ;;
  esac
}

# Go module, version and main package of each component. Prometheus 3.x publishes its Go module as
# v0.3MM.P for release v3.MM.P (github.com/prometheus/prometheus has no /v3 module path).
go_module() {
  case $1 in
    loki | promtail) echo github.com/grafana/loki/v3 ;;
    alertmanager | amtool) echo github.com/prometheus/alertmanager ;;
    *) echo github.com/prometheus/prometheus ;;
  esac
}
go_version() {
  local v=$2
  case $1 in
    loki | promtail | alertmanager | amtool) echo "v$v" ;;
    *)
      [[ $v =~ ^3\.([0-9]+)\.([0-9]+)$ ]] || die "prom/prometheus tag v$v is not a v3.x.y release; cannot map it to a Go module version"
      printf 'v0.%d.%d\n' $((300 + BASH_REMATCH[1])) "${BASH_REMATCH[2]}"
      ;;
  esac
}
go_package() {
  case $1 in
    loki) echo cmd/loki ;;
    promtail) echo clients/cmd/promtail ;;
    prometheus) echo cmd/prometheus ;;
    promtool) echo cmd/promtool ;;
    alertmanager) echo cmd/alertmanager ;;
    amtool) echo cmd/amtool ;;
  esac
}
# -X flags so `<binary> -version` reports the pinned release instead of an empty version.
version_ldflags() {
  case $1 in
    loki | promtail) echo "-X github.com/grafana/loki/v3/pkg/util/build.Version=$2 -X github.com/grafana/loki/v3/pkg/util/build.Branch=aixcl-components" ;;
    *) echo "-X github.com/prometheus/common/version.Version=$2 -X github.com/prometheus/common/version.Branch=aixcl-components" ;;
  esac
}

bin_path() { echo "$BIN_DIR/$1-$(version "$1")"; }

# stub_alertmanager_ui <wrapper dir> <module> <version>: Alertmanager's ui package embeds ui/app/dist, which its
# release build generates with npm and the module zip therefore lacks, so `go build` fails on the embed pattern.
# Build from a copy of the module with a one-page stand-in there. Only the web UI differs from the release
# binary; the API, the config loader and amtool, which are what the tests use, are the module's own code.
stub_alertmanager_ui() {
  local dir=$1 module=$2 ver=$3 src ui
  src=$(go mod download -json "$module@$ver" | json_field Dir)
  cp -r "$src" "$dir/module"
  chmod -R u+w "$dir/module"
  for ui in elm mantine; do
    mkdir -p "$dir/module/ui/app/dist/$ui"
    printf '<!doctype html><title>Alertmanager</title><p>Web UI not built in this test binary (scripts/components.sh); the API is at /api/v2/.\n' \
      >"$dir/module/ui/app/dist/$ui/index.html"
  done
  (cd "$dir" && go mod edit -replace="$module=./module")
}

# json_field <field>: reads a `go ... -json` object on stdin and prints one top-level field.
json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];process.stdout.write(v===undefined?"":String(v))})' "$1"; }

# prepare_wrapper <dir> <module> <version>: a throwaway main module that requires <module>@<version> and
# repeats its replace and exclude directives. `go install module@version` refuses modules whose go.mod has
# replace directives (Loki's has several), and building inside the read-only module cache is not possible.
prepare_wrapper() {
  local dir=$1 module=$2 ver=$3 info moddir gomod
  info=$(go mod download -json "$module@$ver") || die "cannot download $module@$ver through the Go module proxy ($(go env GOPROXY))"
  moddir=$(json_field Dir <<<"$info")
  gomod=$(json_field GoMod <<<"$info")
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    printf 'module aixcl.local/components\n\ngo %s\n\nrequire %s %s\n' \
      "$(go mod edit -json "$gomod" | json_field Go)" "$module" "$ver" >go.mod
    # One line per directive: "replace <old>[@v] <new> [<newver>]", "exclude <path> <ver>", "require <path> <ver>".
    # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
    go mod edit -json "$gomod" | node -e '
      let s=""; process.stdin.on("data",d=>s+=d).on("end",()=>{
        const m=JSON.parse(s);
        for (const r of m.Replace ?? []) console.log(["replace", r.Old.Path + (r.Old.Version ? "@" + r.Old.Version : ""), r.New.Path, r.New.Version ?? ""].join(" ").trim());
        for (const e of m.Exclude ?? []) console.log(`exclude ${e.Path} ${e.Version}`);
        for (const r of m.Require ?? []) console.log(`require ${r.Path} ${r.Version}`);
      })' >directives.txt
    local kind old new newver target required
    # shellcheck disable=SC2094 # the awk inside only reads directives.txt, as the loop does
    while read -r kind old new newver; do
      case $kind in
        exclude) go mod edit -exclude="$old@$new" ;;
        replace)
          if [[ -n $newver ]]; then
            go mod edit -replace="$old=$new@$newver"
          elif [[ -f $moddir/$new/go.mod ]]; then
            go mod edit -replace="$old=$moddir/$new"
          else
            # A local-path replace names a nested module of the repository (Loki: ./pkg/push). Module zips
            # never contain nested modules, so point it at that module's own download, at the version the
            # parent's go.mod requires (the proxy serves no other revision of it).
            required=$(awk -v p="${old%@*}" '$1 == "require" && $2 == p { print $3 }' directives.txt)
            [[ -n $required ]] || die "$module@$ver replaces ${old%@*} with local path $new, which the module zip lacks, and requires no version of it"
            target=$(go mod download -json "${old%@*}@$required" | json_field Dir)
            go mod edit -replace="$old=$target"
          fi
          ;;
      esac
    done <directives.txt
    rm directives.txt
  )
}

# build <component>: builds the binary for the current pin into the cache, printing progress while Go works.
build() {
  local name=$1 ver module gover pkg out dir log started pid n
  ver=$(version "$name")
  module=$(go_module "$name")
  gover=$(go_version "$name" "$ver")
  pkg=$(go_package "$name")
  out=$(bin_path "$name")
  dir="$WORK_DIR/$name-$ver"
  log="$dir.log"
  started=$SECONDS
  say "$name $ver: building $module/$pkg@$gover (cold: minutes to tens of minutes; progress every 15 s)"
  mkdir -p "$BIN_DIR" "$WORK_DIR"
  if ! go mod download "$module@$gover" 2>"$log"; then
    # The checksum database has no record of some releases the proxy serves (Loki's 3.6.x tags, which
    # Promtail needs). Skip it for this one module only, loudly; every other dependency is still verified.
    grep -q 'sum.golang.org/lookup/.*404 Not Found' "$log" || { cat "$log" >&2; die "$name: cannot download $module@$gover"; }
    say "WARNING: sum.golang.org has no checksum for $module@$gover; building it unverified (GONOSUMDB=$module)"
    export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}$module"
  fi
  prepare_wrapper "$dir" "$module" "$gover"
  [[ $module != github.com/prometheus/alertmanager ]] || stub_alertmanager_ui "$dir" "$module" "$gover"
  (cd "$dir" && go get "$module/$pkg@$gover") >"$log" 2>&1 || { cat "$log" >&2; die "$name: resolving dependencies failed"; }
  say "$name $ver: dependencies resolved ($((SECONDS - started))s), compiling"
  # `go build -v` prints one line per package it compiles: count them from here on as progress.
  local base total
  base=$(wc -l <"$log")
  total=$(cd "$dir" && CGO_ENABLED=0 go list -tags netgo -deps "$module/$pkg" | wc -l)
  # CGO_ENABLED=0 and netgo as in upstream's Makefile: static binaries; Promtail's journal target needs cgo
  # and is left out (it is behind the promtail_journal_enabled build tag, which we do not set).
  (cd "$dir" && CGO_ENABLED=0 go build -v -trimpath -tags netgo \
    -ldflags "-s -w $(version_ldflags "$name" "$ver")" -o "$out.tmp" "$module/$pkg") >>"$log" 2>&1 &
  pid=$!
  # Without job control a background job ignores Ctrl-C: stop the compiler with us.
  trap 'kill "$pid" 2>/dev/null; rm -f "$out.tmp"; exit 130' INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15 & wait $! || true
    kill -0 "$pid" 2>/dev/null || break
    n=$(($(wc -l <"$log") - base))
    say "$name $ver: still compiling, $((SECONDS - started))s elapsed, $n of at most $total packages compiled"
  done
  if ! wait "$pid"; then
    tail -n 40 "$log" >&2
    rm -f "$out.tmp"
    die "$name: go build failed (full log: $log)"
  fi
  mv -f "$out.tmp" "$out"
  say "$name $ver: built $out in $((SECONDS - started))s"
}

ensure() {
  local name=$1 out
  out=$(bin_path "$name")
  if [[ -x $out ]]; then
    say "$name $(version "$name"): cached at $out"
    return
  fi
  command -v go >/dev/null || die "Go is needed to build $name (https://go.dev/doc/install); it is not on PATH"
  # Subshell: the GONOSUMDB exception above must not leak into the next component's build.
  (build "$name")
}

main() {
  [[ -f $COMPOSE_FILE ]] || die "$COMPOSE_FILE not found"
  case ${1:-} in
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; return ;;
    --path)
      [[ -n ${2:-} ]] || die "--path needs a component name (${COMPONENTS[*]})"
      local p; p=$(bin_path "$2")
      [[ -x $p ]] || { echo "$2 $(version "$2") is not built; run: npm run components" >&2; return 1; }
      echo "$p"; return ;;
    --list)
      local c p
      for c in "${COMPONENTS[@]}"; do
        p=$(bin_path "$c")
        echo "$c $(version "$c") $p $([[ -x $p ]] && echo built || echo missing)"
      done
      return ;;
  esac
  local names=("$@") name total=$SECONDS
  ((${#names[@]})) || names=("${COMPONENTS[@]}")
  for name in "${names[@]}"; do version "$name" >/dev/null; done
  for name in "${names[@]}"; do ensure "$name"; done
  say "done in $((SECONDS - total))s; binaries in $BIN_DIR"
}

main "$@"

#!/usr/bin/env bash
# Builds (or finds already built) the real Loki, Promtail, Prometheus, promtool, Alertmanager, amtool and
# versitygw (the HA profile's S3 store) binaries that the tests and developers run natively, at the versions
# pinned by the image tags in docker-compose.yml and docker-compose.ha.yml.
#
#   scripts/components.sh              build whatever is missing for the current pins
#   scripts/components.sh loki ...     only these (loki, promtail, prometheus, promtool, alertmanager, amtool, versitygw)
#   scripts/components.sh otelcol      the OpenTelemetry Collector the benchmark runs beside Promtail: built only
#                                      when named, at the pin in bench/otelcol/builder-config.yaml
#   scripts/components.sh --path NAME  print the cached binary for the current pin; exit 1 if not built
#   scripts/components.sh --list       print "name version path status" for each component
#
# Binaries are cached outside the clone in $AIXCL_CACHE/bin (default ~/.cache/aixcl/bin) as
# <name>-<version>, so a pin change in a compose file simply builds a new file and other clones reuse
# them. Needs Go (the version Loki's go.mod asks for; GOTOOLCHAIN=auto fetches it) and the Go module proxy.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The files that pin the images, searched in this order: the stack, then the HA profile's (versitygw).
COMPOSE_FILES=("$ROOT/docker-compose.yml" "$ROOT/docker-compose.ha.yml")
CACHE_DIR=${AIXCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aixcl}
BIN_DIR="$CACHE_DIR/bin"
WORK_DIR="$CACHE_DIR/build"
COMPONENTS=(loki promtail prometheus promtool alertmanager amtool versitygw)
# Not in the stack, so not pinned by a compose file and not built by default: named on the command line only.
EXTRA_COMPONENTS=(otelcol)
OTELCOL_MANIFEST="$ROOT/bench/otelcol/builder-config.yaml"

die() { echo "components: $*" >&2; exit 1; }
say() { echo "components: $*" >&2; }

# image_tag <image repository>: the tag the compose files pin for that image (the single source of versions): the
# first `image: <repository>:<tag>` line of docker-compose.yml, else of docker-compose.ha.yml.
image_tag() {
  local tag file
  for file in "${COMPOSE_FILES[@]}"; do
    [[ -f $file ]] || continue
    tag=$(sed -nE "s#^[[:space:]]*image:[[:space:]]*[\"']?$1:([^\"'[:space:]@]+).*#\1#p" "$file" | head -n1)
    [[ -z $tag ]] || { echo "$tag"; return; }
  done
  die "no 'image: $1:<tag>' line in ${COMPOSE_FILES[*]#"$ROOT"/}; pin the image there first"
}

# version <component>: the release version (no leading v) the binary is built at.
version() {
  case $1 in
    loki) image_tag grafana/loki ;;
    promtail) image_tag grafana/promtail ;;
    prometheus | promtool) local t; t=$(image_tag prom/prometheus); echo "${t#v}" ;;
    alertmanager | amtool) local t; t=$(image_tag prom/alertmanager); echo "${t#v}" ;;
    versitygw) local t; t=$(image_tag versity/versitygw); echo "${t#v}" ;;
    otelcol) manifest_field "  version" ;;
    *) die "unknown component '$1' (expected one of: ${COMPONENTS[*]} ${EXTRA_COMPONENTS[*]})" ;;
  esac
}

# Go module, version and main package of each component. Prometheus 3.x publishes its Go module as
# v0.3MM.P for release v3.MM.P (github.com/prometheus/prometheus has no /v3 module path).
go_module() {
  case $1 in
    loki | promtail) echo github.com/grafana/loki/v3 ;;
    alertmanager | amtool) echo github.com/prometheus/alertmanager ;;
    versitygw) echo github.com/versity/versitygw ;;
    *) echo github.com/prometheus/prometheus ;;
  esac
}
go_version() {
  local v=$2
  case $1 in
    loki | promtail | alertmanager | amtool | versitygw) echo "v$v" ;;
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
    versitygw) echo cmd/versitygw ;;
  esac
}
# -X flags so `<binary> -version` reports the pinned release instead of an empty version.
version_ldflags() {
  case $1 in
    loki | promtail) echo "-X github.com/grafana/loki/v3/pkg/util/build.Version=$2 -X github.com/grafana/loki/v3/pkg/util/build.Branch=aixcl-components" ;;
    # As its release image's Dockerfile: VERSION is the release tag (with its v).
    versitygw) echo "-X main.Version=v$2 -X main.Build=aixcl-components" ;;
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
  local name=$1 ver module gover pkg out dir log started
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
  compiled "$!" "$name $ver" "$log" "$base" "$total" "$out" "$started"
}

# compiled <pid> <label> <log> <base> <total> <out> <started>: waits for the `go build -v -o <out>.tmp` running as
# <pid>, saying every 15 s how many of its packages are compiled (the log's lines past <base>), then moves the
# binary into place.
compiled() {
  local pid=$1 label=$2 log=$3 base=$4 total=$5 out=$6 started=$7
  # shellcheck disable=SC2317,SC2329 # called by waiting
  compiling() { say "$label: still compiling, $((SECONDS - started))s elapsed, $(($(wc -l <"$log") - base)) of at most $total packages compiled"; }
  if ! waiting "$pid" "$out.tmp" compiling; then
    tail -n 40 "$log" >&2
    rm -f "$out.tmp"
    die "$label: go build failed (full log: $log)"
  fi
  mv -f "$out.tmp" "$out"
  say "$label: built $out in $((SECONDS - started))s"
}

# waiting <pid> <partial file> <command...>: waits for the background job <pid>, running <command> every 15 s to
# say how far it got; returns the job's status. Ctrl-C stops the job and removes <partial file>.
waiting() {
  local pid=$1 partial=$2
  shift 2
  # Without job control a background job ignores Ctrl-C: stop it with us.
  # shellcheck disable=SC2064 # expanded now: the locals are gone when the trap runs
  trap "kill $pid 2>/dev/null; rm -f '$partial'; exit 130" INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15 & wait $! || true
    kill -0 "$pid" 2>/dev/null || break
    "$@"
  done
  wait "$pid"
}

# manifest_field <indented key>: the value of `<key>: <value>` in the collector's builder manifest.
manifest_field() {
  local v
  v=$(sed -nE "s#^$1:[[:space:]]*[\"']?([^\"'[:space:]]+).*#\1#p" "$OTELCOL_MANIFEST" | head -n1)
  [[ -n $v ]] || die "no '$1:' in $OTELCOL_MANIFEST"
  echo "$v"
}

# build_otelcol: the OpenTelemetry Collector of bench/otelcol/builder-config.yaml. The OpenTelemetry Collector
# Builder (ocb), itself built from its Go module at the collector core release the manifest names, writes the
# distribution's main module and resolves its modules; the compilation is ours, to report progress like the others.
build_otelcol() {
  local ver core builder out dir log started base total
  ver=$(version otelcol)
  out=$(bin_path otelcol)
  # The builder's release is the core collector's: the version of the manifest's go.opentelemetry.io/collector
  # v0.x modules (its v1.x stable modules, like the providers, go with it). It refuses a manifest whose
  # components resolve to another core release (--skip-strict-versioning=false below).
  core=$(sed -nE 's#^[[:space:]]*- gomod:[[:space:]]*go\.opentelemetry\.io/collector/[^[:space:]]+[[:space:]]+(v0\.[0-9.]+).*#\1#p' "$OTELCOL_MANIFEST" | sort -u)
  [[ $core =~ ^v0\.[0-9]+\.[0-9]+$ ]] || die "$OTELCOL_MANIFEST: expected its go.opentelemetry.io/collector/* v0.x modules at one release, found: ${core:-none}"
  dir="$WORK_DIR/otelcol-$ver"
  log="$dir.log"
  builder="$WORK_DIR/tools/ocb-$core"
  started=$SECONDS
  say "otelcol $ver: building the OpenTelemetry Collector of ${OTELCOL_MANIFEST#"$ROOT"/} (cold: a few minutes; progress every 15 s)"
  mkdir -p "$BIN_DIR" "$WORK_DIR/tools"
  # shellcheck disable=SC2317,SC2329 # called by waiting
  still() { say "otelcol $ver: still $1, $((SECONDS - started))s elapsed"; }
  if [[ ! -x $builder ]]; then
    GOBIN="$WORK_DIR/tools/ocb-install" go install "go.opentelemetry.io/collector/cmd/builder@$core" >"$log" 2>&1 &
    waiting "$!" "" still "building the OpenTelemetry Collector Builder" ||
      { cat "$log" >&2; die "otelcol: cannot build the OpenTelemetry Collector Builder go.opentelemetry.io/collector/cmd/builder@$core"; }
    mv "$WORK_DIR/tools/ocb-install/builder" "$builder"
    rmdir "$WORK_DIR/tools/ocb-install"
    say "otelcol $ver: OpenTelemetry Collector Builder $core built ($((SECONDS - started))s)"
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  # The manifest with the output directory added: it has no command-line flag any more (only a deprecated one).
  sed "s#^dist:#dist:\n  output_path: $dir#" "$OTELCOL_MANIFEST" >"$dir.yaml"
  "$builder" --config="$dir.yaml" --skip-compilation --skip-strict-versioning=false >"$log" 2>&1 &
  waiting "$!" "" still "generating sources and resolving modules" ||
    { cat "$log" >&2; die "otelcol: the OpenTelemetry Collector Builder failed on $OTELCOL_MANIFEST"; }
  say "otelcol $ver: sources generated and modules resolved in $dir ($((SECONDS - started))s), compiling"
  base=$(wc -l <"$log")
  total=$(cd "$dir" && CGO_ENABLED=0 go list -deps . | wc -l)
  # What the builder's own compilation step runs (static, stripped), plus -v for the progress count.
  (cd "$dir" && CGO_ENABLED=0 go build -v -trimpath -ldflags "-s -w" -o "$out.tmp" .) >>"$log" 2>&1 &
  compiled "$!" "otelcol $ver" "$log" "$base" "$total" "$out" "$started"
}

ensure() {
  local name=$1 out
  out=$(bin_path "$name")
  if [[ -x $out ]]; then
    say "$name $(version "$name"): cached at $out"
    return
  fi
  command -v go >/dev/null || die "Go is needed to build $name (https://go.dev/doc/install); it is not on PATH"
  if [[ $name == otelcol ]]; then (build_otelcol); return; fi
  # Subshell: the GONOSUMDB exception above must not leak into the next component's build.
  (build "$name")
}

main() {
  [[ -f ${COMPOSE_FILES[0]} ]] || die "${COMPOSE_FILES[0]} not found"
  case ${1:-} in
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; return ;;
    --path)
      [[ -n ${2:-} ]] || die "--path needs a component name (${COMPONENTS[*]})"
      local p; p=$(bin_path "$2")
      [[ -x $p ]] || { echo "$2 $(version "$2") is not built; run: npm run components$([[ $2 == otelcol ]] && echo " -- otelcol")" >&2; return 1; }
      echo "$p"; return ;;
    --list)
      local c p
      for c in "${COMPONENTS[@]}" "${EXTRA_COMPONENTS[@]}"; do
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

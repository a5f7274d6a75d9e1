#!/usr/bin/env bash
# The Python environment for clients/python's tests and benchmark: a venv outside the clone, in
# $AIXCL_CACHE/python (default ~/.cache/aixcl/python), with pip's cache beside it, holding the package installed
# from this checkout and clients/python/requirements-test.txt.
#
#   scripts/python.sh          create the venv if missing: build the sdist, the wheel from it (isolated, fetching
#                              the build requirements) and install the wheel, as a package index would serve it;
#                              rebuild and reinstall when the package's sources or the .proto files changed
#   scripts/python.sh --fresh  the same from a new venv (CI: proves the install works in a fresh venv)
#   scripts/python.sh --path   print the venv's python, reinstalling first if the sources changed (offline: the
#                              build requirements are in the venv; the network only for a test requirement added
#                              since); exit 3, saying why, when there is no venv
#
# Needs Python 3.10+ (AIXCL_PYTHON, default python3) with venv, and PyPI for the first install.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${AIXCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aixcl}
PYTHON=${AIXCL_PYTHON:-python3}
PACKAGE="$ROOT/clients/python"
REQUIREMENTS="$PACKAGE/requirements-test.txt"
export PIP_CACHE_DIR="$CACHE_DIR/pip" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { echo "python.sh: $*" >&2; }
die() { say "$*"; exit "${2:-1}"; }

command -v "$PYTHON" >/dev/null || die "no $PYTHON on PATH: install Python 3.10 or newer (or set AIXCL_PYTHON)"
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is Python $version; aixcl-logging needs 3.10 or newer"
VENV="$CACHE_DIR/python/venv-$version"
STAMP="$VENV/.aixcl-sources"
DIST="$CACHE_DIR/python/dist-$version"

# What the installed package was built from: its sources, the .proto files and the test requirements.
sources_hash() {
  (cd "$ROOT" && find clients/python/pyproject.toml clients/python/hatch_build.py clients/python/README.md "${REQUIREMENTS#"$ROOT/"}" \
      clients/python/CHANGELOG.md clients/python/src packages/wire/proto -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

create() {
  local started=$SECONDS
  say "creating $VENV with $PYTHON ($version)"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  say "pip install -r clients/python/requirements-test.txt"
  "$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS"
  say "building the sdist and, from it, the wheel (isolated: protobuf code generated from packages/wire/proto)"
  build_dist
  say "pip install $(basename "$(wheel)")"
  "$VENV/bin/python" -m pip install --quiet "$(wheel)"
  verify
  sources_hash >"$STAMP"
  say "venv ready in $((SECONDS - started)) s"
}

# A changed checkout: rebuild with the build requirements already in the venv, so no network is needed.
reinstall() {
  say "clients/python or packages/wire/proto changed: reinstalling aixcl-logging"
  # Needs the network only when requirements-test.txt names something the venv does not have yet.
  "$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS"
  build_dist --no-isolation
  "$VENV/bin/python" -m pip install --quiet --no-deps --force-reinstall "$(wheel)"
  verify
  sources_hash >"$STAMP"
}

# The sdist, then the wheel built from the unpacked sdist (python -m build's default): a file the sdist forgot fails
# here, not on a user's machine. Both land in $DIST, which holds nothing else.
build_dist() {
  rm -rf "$DIST"
  "$VENV/bin/python" -m build --outdir "$DIST" "$@" "$PACKAGE" >"$DIST.log" 2>&1 || { cat "$DIST.log" >&2; die "building the package failed (log above)"; }
  ls "$DIST"/*.tar.gz >/dev/null && wheel >/dev/null
}

wheel() {
  local found=("$DIST"/aixcl_logging-*.whl)
  [[ -f ${found[0]} ]] || die "no wheel in $DIST"
  echo "${found[0]}"
}

# Importing runs the generated code's protobuf version check against the installed protobuf.
verify() {
  (cd "$VENV" && "$VENV/bin/python" -W error -c 'import aixcl_logging, aixcl_logging.wire as w, google.protobuf as p, zmq; print("python.sh: aixcl_logging imports; protobuf", p.__version__, "pyzmq", zmq.__version__, "libzmq", zmq.zmq_version())' >&2)
}

# One python.sh at a time per cache: a second one (a test run beside a set-up) would remove the venv or the wheel
# the first is installing. The lock goes with the process.
mkdir -p "$CACHE_DIR/python"
exec 9>"$CACHE_DIR/python/.lock"
flock 9

case ${1:-} in
  --path)
    [[ -x $VENV/bin/python ]] || die "no Python test venv at $VENV; create it with: bash scripts/python.sh" 3
    [[ -f $STAMP && $(cat "$STAMP") == "$(sources_hash)" ]] || reinstall
    echo "$VENV/bin/python"
    ;;
  --fresh) create ;;
  "")
    if [[ ! -x $VENV/bin/python || ! -f $STAMP ]]; then create
    elif [[ $(cat "$STAMP") != "$(sources_hash)" ]]; then reinstall
    else say "venv $VENV is current"; fi
    ;;
  *) die "usage: scripts/python.sh [--fresh | --path]" 2 ;;
esac

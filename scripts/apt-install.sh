#!/usr/bin/env bash
# scripts/apt-install.sh LOG PACKAGE...: Debian packages for the set-up, as root. A fresh machine may have no
# package lists, or lists older than the archive (a 404 on a package file): then it runs apt-get update once and
# tries again. Output goes to LOG; on failure its tail is printed.
set -euo pipefail
log=$1
shift
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1; }
mkdir -p "$(dirname "$log")"
install "$@" && exit 0
echo "apt-install: apt-get install $* failed; updating the package lists and trying again" >&2
DEBIAN_FRONTEND=noninteractive apt-get update >>"$log" 2>&1 || true
install "$@" || { tail -n 20 "$log" >&2; echo "apt-install: apt-get install $* failed (log: $log)" >&2; exit 1; }

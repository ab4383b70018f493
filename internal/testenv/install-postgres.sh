#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for the tests that run ferry on PostgreSQL
# (internal/testenv/postgres.go starts throwaway clusters with its initdb and postgres).
# Nothing to do when /usr/lib/postgresql/*/bin/initdb exists.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql
# The package starts a cluster of its own; the tests do not use it.
if command -v pg_ctlcluster >/dev/null; then
  for v in /usr/lib/postgresql/*; do pg_ctlcluster "$(basename "$v")" main stop 2>/dev/null || true; done
fi

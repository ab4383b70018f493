#!/usr/bin/env bash
# The end-to-end bench harness: runs ferry's benchmarks against live
# GoToSocial servers on loopback and collects their figures (requests, wall
# time, memory, 429 counts) into bench/results.txt. Figures are printed by
# the tests as lines starting with "FIGURES"; the Go micro-benchmarks add
# their ns/op, B/op and allocs/op.
#
# Usage: bash bench/run.sh [go test -run pattern]    (takes several minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
pattern="${1:-Bench|E2ETransportBurst}"
out=bench/results.txt
bash internal/testenv/build-gotosocial.sh >/dev/null
{
  echo "# ferry bench results, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(go version), $(nproc) cores"
  echo "## end-to-end (live GoToSocial)"
  CI=true FERRY_BENCH=1 go test -count=1 -timeout 60m -v -run "$pattern" ./... 2>&1 \
    | grep -E 'FIGURES|^(--- FAIL|FAIL|ok )' || true
  echo "## go test -bench"
  go test -count=1 -run '^$' -bench . -benchmem ./... 2>&1 | grep -E '^(Benchmark|ok |FAIL)' || true
} | tee "$out"

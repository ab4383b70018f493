# ferry — build and test entry points. `make test` is what CI runs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test unit e2e soak vet fmt bench gotosocial clean

## build: compile ./bin/ferry
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ferry ./cmd/ferry

## test: formatting, vet, unit tests and end-to-end tests against real GoToSocial servers, Bluesky PDSes, PostgreSQL and Chromium, under the race detector (.ci/run installs PostgreSQL and Chromium from apt)
test: vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	bash internal/testenv/build-gotosocial.sh >/dev/null
	bash internal/testenv/install-pds.sh >/dev/null
	$(GO) test -race -count=1 -timeout 60m ./...

## unit: the fast tests only (no servers)
unit:
	$(GO) test -short -count=1 ./...

## e2e: only the end-to-end tests; a missing server is a failure
e2e:
	bash internal/testenv/build-gotosocial.sh >/dev/null
	bash internal/testenv/install-pds.sh >/dev/null
	FERRY_E2E=1 $(GO) test -count=1 -timeout 40m -run 'E2E' ./...

## soak: publish, mirror and import through injected faults under >= 50 random SIGKILLs (not in CI);
## prints a FIGURES line with kills, duplicates and losses (FERRY_SOAK_KILLS, FERRY_SOAK_SEED)
soak:
	bash internal/testenv/build-gotosocial.sh >/dev/null
	FERRY_E2E=1 FERRY_SOAK=1 $(GO) test -count=1 -timeout 60m -run 'TestE2ESoak$$' -v ./cmd/ferry 2>&1 | \
		grep -E 'FIGURES|kills=|seed|duplicates|lost|^(--- |ok|FAIL|PASS)'

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: go benchmarks plus the end-to-end bench harness (figures in bench/results.txt)
bench:
	bash bench/run.sh

## gotosocial: build (once) the GoToSocial binary the end-to-end tests run
gotosocial:
	bash internal/testenv/build-gotosocial.sh

clean:
	rm -rf bin

# orchestrator: one spec, one binary, from one VPS to Kubernetes.
# `make help` lists the targets.

GO      ?= go
BIN     := bin/orchestrator
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/aipairpro/orchestrator/internal/version.Version=$(VERSION)

.PHONY: help build run stop demo demo-down test golden bench fuzz lint testenv clean

# make run's proxy ports on this machine: 80 and 443 may be taken or need root.
RUN_HTTP_PORT  ?= 18080
RUN_HTTPS_PORT ?= 18443

help: ## show this help
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/orchestrator
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/orchestrator

run: build ## the example platform up on the local engine (stand-ins where images cannot be pulled), URLs, status; again: no-op
	$(GO) run ./hack/run -http-port $(RUN_HTTP_PORT) -https-port $(RUN_HTTPS_PORT) up

stop: build ## remove what make run started, volumes included
	$(GO) run ./hack/run down

# The former names of run and stop.
demo: run
demo-down: stop

# The two end-to-end packages (a Docker engine; a Kubernetes cluster) run
# one after the other, after everything else: on 2 cores, side by side they
# starve each other's readiness probes.

test: ## every test: unit, golden, real consumers, then end to end on a real Docker engine and a real Kubernetes cluster
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m $$($(GO) list ./... | grep -v -e '/test/e2e$$' -e '/internal/backend/kubernetes$$')
	$(GO) test -count=1 -timeout 30m ./test/e2e
	$(GO) test -count=1 -timeout 30m ./internal/backend/kubernetes

golden: ## rewrite golden files and the committed JSON Schema
	$(GO) test ./internal/backend/compose -run Golden -update
	$(GO) test ./internal/backend/kubernetes -run Golden -update
	$(GO) run ./cmd/orchestrator schema > schema/stack-v1.json

bench: ## whole-process timings (hyperfine) against docker compose, and Go benchmarks
	./hack/bench.sh

fuzz: ## fuzz the spec loader and the compose YAML writer, each for FUZZTIME (default 60s)
	$(GO) test ./internal/spec -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $${FUZZTIME:-60s}
	$(GO) test ./internal/backend/compose -run '^$$' -fuzz '^FuzzWriterRoundTrip$$' -fuzztime $${FUZZTIME:-60s}

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l cmd internal templates hack)" || (gofmt -l cmd internal templates hack; exit 1)
	$(GO) vet ./...

testenv: ## start a Docker engine, build the stand-in images and the docker compose CLI the tests use
	./hack/testenv/compose-cli.sh >/dev/null
	bash ./hack/testenv/images.sh

clean: ## remove build output
	rm -rf bin

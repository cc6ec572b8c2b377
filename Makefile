# wasm-policyd — every target installs what it needs (npm ci, code generation, wasm builds).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NODE := node --disable-warning=ExperimentalWarning

TESTS := $(shell find test -name '*.test.ts' 2>/dev/null | sed 's|^|dist/|; s|\.ts$$|.js|' | sort)

.PHONY: all install gen build examples go-client python-client h2load test run bench soak clean

all: build examples

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

## gen: lint the contract and generate TypeScript from proto/ into src/gen
gen: install
	buf lint
	buf generate

## build: compile TypeScript into dist/
build: gen
	tsc -p tsconfig.json

## examples: build the example policies and test fixtures (AssemblyScript, WAT) from source
examples: install
	node scripts/build-wasm.mjs

## go-client: Go stubs from proto/ (protoc-gen-go, protoc-gen-go-grpc) and the example client, with Debian's Go
go-client: install
	scripts/build-go-client.sh

## python-client: Debian's python3-grpcio, a second gRPC implementation the tests call the daemon with
python-client:
	scripts/install-python-grpc.sh

## test: the whole suite — unit, gRPC end to end (TCP + unix sockets), CLI
test: build examples go-client python-client
	$(NODE) --test --test-concurrency=1 --test-reporter=spec $(TESTS)

## run: start the daemon on 127.0.0.1:50051 and unix:///tmp/wasm-policyd.sock with the examples loaded
run: build examples
	$(NODE) dist/src/cli/main.js serve --policy examples/policies $(ARGS)

## bench: measure against the transport ceiling and Chainloop's compile-per-evaluation; writes bench/RESULTS.md
bench: build examples
	$(NODE) dist/bench/run.js

## h2load: Debian's nghttp2-client, the native gRPC load generator of bench/ (needs root and apt-get)
h2load:
	@command -v h2load >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client)

## soak: the daemon's RSS against 1,000,000 evaluations of a WASI policy; ISOLATION=fresh|reused; writes bench/SOAK-$(ISOLATION).md
ISOLATION ?= fresh
soak: build examples h2load
	$(NODE) dist/bench/soak.js --isolation $(ISOLATION) --out bench/SOAK-$(ISOLATION).md $(ARGS)

clean:
	rm -rf dist build src/gen clients/go/policyengine examples/policies/*/policy.wasm

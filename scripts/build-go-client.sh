#!/usr/bin/env bash
# Builds the Go client example against stubs generated from proto/ with Debian's Go toolchain
# (Go 1.19, GOPATH mode: Debian ships the grpc/protobuf sources under /usr/share/gocode).
# Installs the Debian packages when it can; where Go cannot be had, it says so and the Go client test
# is skipped with that reason (written to build/go/SKIPPED).
set -euo pipefail
cd "$(dirname "$0")/.."
# golang-github-golang-protobuf-1-5-dev: grpc-go's codec must marshal APIv2 messages (1-3 cannot).
PACKAGES=(golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev golang-google-protobuf-dev golang-google-genproto-dev golang-github-golang-protobuf-1-5-dev)
mkdir -p build/go
rm -f build/go/SKIPPED

have_toolchain() {
  command -v go >/dev/null && command -v protoc-gen-go >/dev/null && command -v protoc-gen-go-grpc >/dev/null &&
    [ -d /usr/share/gocode/src/google.golang.org/grpc ] && [ -d /usr/share/gocode/src/google.golang.org/genproto ] &&
    dpkg -s golang-github-golang-protobuf-1-5-dev >/dev/null 2>&1
}

if ! have_toolchain; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's Go toolchain: ${PACKAGES[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}") >build/go/apt.log 2>&1 ||
      echo "apt-get failed; see build/go/apt.log"
  fi
fi
if ! have_toolchain; then
  echo "Go cannot be installed here (needs root and apt-get for: ${PACKAGES[*]})" | tee build/go/SKIPPED
  exit 0
fi

PATH="$PWD/node_modules/.bin:$PATH" buf generate --template buf.gen.go.yaml
mkdir -p build/gopath/src/wasm-policyd/clients
ln -sfn "$PWD/clients/go" build/gopath/src/wasm-policyd/clients/go
GO111MODULE=off GOPATH="$PWD/build/gopath:/usr/share/gocode" GOCACHE="$PWD/build/gocache" \
  go build -o build/go/policyd-example wasm-policyd/clients/go/cmd/policyd-example
echo "built build/go/policyd-example ($(go version))"

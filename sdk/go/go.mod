// The Go policy SDK: Chainloop-compatible WebAssembly policies with the standard Go toolchain
// (GOOS=wasip1 GOARCH=wasm, //go:wasmexport Execute). No dependencies: it declares the Extism kernel
// functions it needs itself.
module github.com/wasm-policyd/wasm-policyd/sdk/go

go 1.26

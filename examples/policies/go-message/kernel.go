package main

// The Extism kernel functions this policy uses, declared directly: Extism's go-pdk (and Chainloop's
// Go policy SDK built on it) is not served by the Go module proxy that builds this repository, and
// these five imports are all a policy needs to read its material and write its result.

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env alloc
func alloc(n uint64) uint64

//go:wasmimport extism:host/env store_u8
func storeU8(offset uint64, v uint32)

//go:wasmimport extism:host/env output_set
func outputSet(offset uint64, n uint64)

// input is the material, as Chainloop's engine hands it to Execute.
func input() []byte {
	b := make([]byte, inputLength())
	for i := range b {
		b[i] = byte(inputLoadU8(uint64(i)))
	}
	return b
}

// output sets the policy's result.
func output(b []byte) {
	at := alloc(uint64(len(b)))
	for i, c := range b {
		storeU8(at+uint64(i), uint32(c))
	}
	outputSet(at, uint64(len(b)))
}

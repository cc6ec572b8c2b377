//go:build wasip1

package policy

// The Extism kernel functions (extism:host/env) and Chainloop's discover host function, declared
// directly: Extism's go-pdk is not served by the Go module proxy this repository builds from, and
// these are all a policy needs.

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env alloc
func alloc(n uint64) uint64

//go:wasmimport extism:host/env free
func free(offset uint64)

//go:wasmimport extism:host/env length
func length(offset uint64) uint64

//go:wasmimport extism:host/env load_u8
func loadU8(offset uint64) uint32

//go:wasmimport extism:host/env store_u8
func storeU8(offset uint64, v uint32)

//go:wasmimport extism:host/env output_set
func outputSet(offset uint64, n uint64)

//go:wasmimport extism:host/env config_get
func configGet(key uint64) uint64

//go:wasmimport extism:host/env log_info
func logInfo(offset uint64)

//go:wasmimport extism:host/env log_debug
func logDebug(offset uint64)

//go:wasmimport extism:host/env log_warn
func logWarn(offset uint64)

//go:wasmimport extism:host/env log_error
func logError(offset uint64)

//go:wasmimport extism:host/env log_trace
func logTrace(offset uint64)

//go:wasmimport extism:host/env http_request
func httpRequest(request uint64, body uint64) uint64

//go:wasmimport extism:host/env http_status_code
func httpStatusCode() int32

//go:wasmimport env chainloop_discover
func chainloopDiscover(digest uint64, kind uint64) uint64

// store copies b into a new Extism memory block and returns its offset.
func store(b []byte) uint64 {
	at := alloc(uint64(len(b)))
	for i, c := range b {
		storeU8(at+uint64(i), uint32(c))
	}
	return at
}

// load reads an Extism memory block (0: none).
func load(offset uint64) []byte {
	if offset == 0 {
		return nil
	}
	b := make([]byte, length(offset))
	for i := range b {
		b[i] = byte(loadU8(offset + uint64(i)))
	}
	return b
}

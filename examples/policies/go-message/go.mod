module example.com/policies/go-message

go 1.26

require github.com/wasm-policyd/wasm-policyd/sdk/go v0.0.0

// The SDK in this repository (published, this line goes and a version is required instead).
replace github.com/wasm-policyd/wasm-policyd/sdk/go => ../../../sdk/go

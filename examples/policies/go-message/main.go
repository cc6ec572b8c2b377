// A Chainloop policy in Go, built with the standard toolchain as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
//
// The material must be a JSON object with a non-empty string "message"; anything else is skipped.
package main

import policy "github.com/wasm-policyd/wasm-policyd/sdk/go"

//go:wasmexport Execute
func Execute() int32 {
	return policy.Run(func() {
		var material map[string]any
		if err := policy.GetMaterialJSON(&material); err != nil {
			policy.OutputResult(policy.Skip("the material is not a JSON object"))
			return
		}
		result := policy.Success()
		if message, ok := material["message"].(string); !ok || message == "" {
			result.AddViolation("message must be a non-empty string")
		}
		policy.LogInfo("checked the message of %d field(s)", len(material))
		policy.OutputResult(result)
	})
}

func main() {}

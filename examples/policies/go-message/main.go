// A Chainloop policy in Go, built with the standard toolchain as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
//
// The material must be a JSON object with a non-empty string "message"; anything else is skipped.
package main

import "encoding/json"

type result struct {
	Skipped    bool     `json:"skipped"`
	SkipReason string   `json:"skip_reason,omitempty"`
	Violations []string `json:"violations"`
}

//go:wasmexport Execute
func Execute() int32 {
	r := result{Violations: []string{}}
	var material map[string]any
	if err := json.Unmarshal(input(), &material); err != nil {
		r.Skipped, r.SkipReason = true, "the material is not a JSON object"
	} else if message, ok := material["message"].(string); !ok || message == "" {
		r.Violations = append(r.Violations, "message must be a non-empty string")
	}
	out, _ := json.Marshal(r)
	output(out)
	return 0
}

func main() {}

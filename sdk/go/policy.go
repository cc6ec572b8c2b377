// Package policy writes Chainloop-compatible supply-chain policies in Go, built with the standard
// toolchain as a WASI reactor that exports Execute:
//
//	//go:wasmexport Execute
//	func Execute() int32 {
//		return policy.Run(func() {
//			var sbom map[string]any
//			if err := policy.GetMaterialJSON(&sbom); err != nil {
//				policy.OutputResult(policy.Skip(err.Error()))
//				return
//			}
//			policy.OutputResult(policy.Success())
//		})
//	}
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
//
// The API is that of Chainloop's Go policy SDK (labs/wasm-policy-sdk/go), which needs TinyGo and
// Extism's go-pdk: GetMaterialJSON, GetArgs, Success/Fail/Skip, OutputResult, Log*, HTTPGet, Discover.
package policy

import (
	"errors"
	"fmt"
)

// Result is what a policy reports, in Chainloop's output format.
type Result struct {
	Skipped    bool     `json:"skipped"`
	Violations []string `json:"violations"`
	SkipReason string   `json:"skip_reason"`
	Ignore     bool     `json:"ignore"`
}

// Success is a result without violations.
func Success() Result { return Result{Violations: []string{}} }

// Fail is a result with the given violations.
func Fail(violations ...string) Result { return Result{Violations: append([]string{}, violations...)} }

// Skip is a skipped result (the material is not what the policy checks).
func Skip(reason string) Result {
	return Result{Skipped: true, SkipReason: reason, Violations: []string{}}
}

// Skipf is Skip with a formatted reason.
func Skipf(format string, args ...any) Result { return Skip(fmt.Sprintf(format, args...)) }

// AddViolation records one violation.
func (r *Result) AddViolation(message string) { r.Violations = append(r.Violations, message) }

// AddViolationf records one formatted violation.
func (r *Result) AddViolationf(format string, args ...any) {
	r.AddViolation(fmt.Sprintf(format, args...))
}

// HasViolations reports whether any violation was recorded.
func (r Result) HasViolations() bool { return len(r.Violations) > 0 }

// IsSuccess reports a result that is neither skipped nor failed.
func (r Result) IsSuccess() bool { return !r.Skipped && !r.HasViolations() }

// Run runs the policy body and returns Execute's status (0); as in Chainloop's SDK, a panic traps.
func Run(body func()) int32 {
	body()
	return 0
}

// ErrHTTP is wrapped by HTTPGet's error for a status other than 200.
var ErrHTTP = errors.New("HTTP request failed")

// Package policyd is the Go client of wasm-policyd, the gRPC daemon that evaluates Chainloop-compatible
// WebAssembly policies. It wraps the generated stubs (package policyenginev1) with what a control plane
// otherwise writes by hand: dialling a unix socket or TCP with TLS, mTLS or a bearer token; errors
// typed from the daemon's google.rpc.ErrorInfo detail; and evaluation by digest that loads the policy
// again when a stateless replica does not have it.
//
// Deadlines come from the context of each call and reach the daemon as the gRPC deadline, which bounds
// the evaluation there too.
package policyd

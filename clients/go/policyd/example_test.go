package policyd_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/wasm-policyd/wasm-policyd/clients/go/policyd"
	policyenginev1 "github.com/wasm-policyd/wasm-policyd/clients/go/policyengine/v1"
)

// A control plane evaluating an SBOM against a policy it loaded earlier, by digest, on whichever replica
// answers: a replica that restarted or never saw the policy gets it loaded again.
func Example() {
	client, err := policyd.Dial("unix:///var/run/wasm-policyd/policyd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	document, _ := os.ReadFile("policy.yaml")
	script, _ := os.ReadFile("policy.wasm")
	load := &policyenginev1.LoadPolicyRequest{
		Source:  &policyenginev1.LoadPolicyRequest_PolicyDocument{PolicyDocument: document},
		Scripts: map[string][]byte{"policy.wasm": script},
	}
	policy, err := client.LoadPolicy(ctx, load)
	if err != nil {
		log.Fatal(err)
	}
	sbom, _ := os.ReadFile("sbom.cdx.json")
	res, err := client.EvaluateOrLoad(ctx, policy.GetDigest(), load, &policyenginev1.EvaluateRequest{
		Material: &policyenginev1.Material{Content: sbom, Kind: policyenginev1.MaterialKind_MATERIAL_KIND_SBOM_CYCLONEDX_JSON},
		Args:     map[string]string{"severity": "high"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range res.GetResult().GetViolations() {
		fmt.Println("violation:", v.GetMessage())
	}
}

// Telling the failures a caller acts on apart.
func ExampleError() {
	client, _ := policyd.Dial("127.0.0.1:50051")
	_, err := client.Evaluate(context.Background(), &policyenginev1.EvaluateRequest{Policy: "sbom-validation"})
	var e *policyd.Error
	switch {
	case errors.Is(err, policyd.ErrOverloaded):
		// back off and retry, or try another replica
	case errors.Is(err, policyd.ErrNotFound):
		// load the policy, then retry
	case errors.As(err, &e) && e.Reason == "POLICY_PANIC":
		fmt.Println("policy", e.Policy, "crashed:", e.Message)
	}
}

// mTLS and a bearer token, for a daemon reached over the network.
func ExampleWithTLSFiles() {
	client, err := policyd.Dial("policyd.security.svc:50051",
		policyd.WithTLSFiles("/etc/policyd/ca.pem", "/etc/policyd/client.pem", "/etc/policyd/client-key.pem"),
		policyd.WithToken(os.Getenv("POLICYD_TOKEN")),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
}

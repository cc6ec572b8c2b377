// Command policyd-example loads a Chainloop policy into a running wasm-policyd and evaluates a
// material against it: the few calls a Go control plane needs, with the error handling it should do.
//
//	policyd-example -addr unix:///tmp/wasm-policyd.sock -policy examples/policies/sbom/policy.yaml \
//	  -material examples/policies/sbom/materials/fail.json -kind SBOM_CYCLONEDX_JSON
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	policyengine "wasm-policyd/clients/go/policyengine/v1"
)

func main() {
	addr := flag.String("addr", "unix:///tmp/wasm-policyd.sock", "daemon address: host:port or unix:///path")
	policyFile := flag.String("policy", "", "policy.yaml; scripts it names by ref/path are read beside it")
	materialFile := flag.String("material", "", "material file")
	kind := flag.String("kind", "EVIDENCE", "material kind (Chainloop MaterialType name)")
	args := flag.String("args", "", "policy arguments: k=v;k2=v2")
	token := flag.String("token", os.Getenv("POLICYD_TOKEN"), "bearer token, when the daemon requires one")
	flag.Parse()
	if err := run(*addr, *policyFile, *materialFile, *kind, *args, *token); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(addr, policyFile, materialFile, kind, args, token string) error {
	// Plaintext, as for a sidecar's unix socket (Debian's grpc-go predates credentials/insecure).
	conn, err := grpc.Dial(addr, grpc.WithInsecure())
	if err != nil {
		return err
	}
	defer conn.Close()
	client := policyengine.NewPolicyEngineServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}

	document, err := ioutil.ReadFile(policyFile)
	if err != nil {
		return err
	}
	// The example policies name one script, policy.wasm, beside the document.
	script, err := ioutil.ReadFile(filepath.Join(filepath.Dir(policyFile), "policy.wasm"))
	if err != nil {
		return err
	}
	loaded, err := client.LoadPolicy(ctx, &policyengine.LoadPolicyRequest{
		Source:  &policyengine.LoadPolicyRequest_PolicyDocument{PolicyDocument: document},
		Scripts: map[string][]byte{"policy.wasm": script},
	})
	if err != nil {
		return describe(err)
	}

	content, err := ioutil.ReadFile(materialFile)
	if err != nil {
		return err
	}
	materialKind, ok := policyengine.MaterialKind_value["MATERIAL_KIND_"+kind]
	if !ok {
		return fmt.Errorf("unknown kind %q", kind)
	}
	res, err := client.Evaluate(ctx, &policyengine.EvaluateRequest{
		Policy:   loaded.GetPolicy().GetDigest(),
		Material: &policyengine.Material{Content: content, Kind: policyengine.MaterialKind(materialKind), Name: filepath.Base(materialFile)},
		Args:     parseArgs(args),
	})
	if err != nil {
		return describe(err)
	}
	out := map[string]interface{}{
		"policy":       loaded.GetPolicy().GetName(),
		"digest":       res.GetPolicyDigest(),
		"violations":   messages(res.GetResult().GetViolations()),
		"skipped":      res.GetResult().GetSkipped(),
		"skip_reasons": res.GetResult().GetSkipReasons(),
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// describe turns a gRPC status into what a caller acts on: the code, ErrorInfo's reason and message.
func describe(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	reason := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.GetReason()
		}
	}
	if st.Code() == codes.NotFound {
		return fmt.Errorf("%s (%s): the policy is not loaded here; load it again", st.Code(), reason)
	}
	return fmt.Errorf("%s (%s): %s", st.Code(), reason, st.Message())
}

func parseArgs(s string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ";") {
		if kv := strings.SplitN(pair, "=", 2); len(kv) == 2 {
			out[kv[0]] = kv[1]
		}
	}
	return out
}

func messages(vs []*policyengine.Violation) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.GetMessage())
	}
	return out
}

package policyd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wasm-policyd/wasm-policyd/clients/go/policyd"
	policyenginev1 "github.com/wasm-policyd/wasm-policyd/clients/go/policyengine/v1"
)

// These tests call a live daemon: test/e2e/go-client.test.ts starts one and sets POLICYD_TEST_ADDR,
// POLICYD_TEST_ROOT (the repository) and, for the secured daemon, POLICYD_TEST_SECURE_* and
// POLICYD_TEST_TOKEN. Run alone, they are skipped.
func daemon(t *testing.T) (*policyd.Client, string) {
	t.Helper()
	addr, root := os.Getenv("POLICYD_TEST_ADDR"), os.Getenv("POLICYD_TEST_ROOT")
	if addr == "" || root == "" {
		t.Skip("no daemon: POLICYD_TEST_ADDR and POLICYD_TEST_ROOT are set by test/e2e/go-client.test.ts")
	}
	client, err := policyd.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, root
}

func sbomPolicy(t *testing.T, root string) *policyenginev1.LoadPolicyRequest {
	t.Helper()
	dir := filepath.Join(root, "examples", "policies", "sbom")
	document, err := os.ReadFile(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(dir, "policy.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return &policyenginev1.LoadPolicyRequest{
		Source:  &policyenginev1.LoadPolicyRequest_PolicyDocument{PolicyDocument: document},
		Scripts: map[string][]byte{"policy.wasm": script},
	}
}

func material(t *testing.T, root, file string) *policyenginev1.Material {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(root, "examples", "policies", "sbom", "materials", file))
	if err != nil {
		t.Fatal(err)
	}
	return &policyenginev1.Material{Content: content, Kind: policyenginev1.MaterialKind_MATERIAL_KIND_SBOM_CYCLONEDX_JSON}
}

func TestLoadAndEvaluate(t *testing.T) {
	client, root := daemon(t)
	ctx := context.Background()
	policy, err := client.LoadPolicy(ctx, sbomPolicy(t, root))
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Evaluate(ctx, &policyenginev1.EvaluateRequest{Policy: policy.GetDigest(), Material: material(t, root, "fail.json")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range res.GetResult().GetViolations() {
		got = append(got, v.GetMessage())
	}
	want := []string{"component 'left-pad' missing version", "component at index 2 missing name"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("violations %q, want %q", got, want)
	}
}

func TestErrorsAreTyped(t *testing.T) {
	client, root := daemon(t)
	_, err := client.Evaluate(context.Background(), &policyenginev1.EvaluateRequest{Policy: "no-such-policy", Material: material(t, root, "pass.json")})
	if !errors.Is(err, policyd.ErrNotFound) || errors.Is(err, policyd.ErrOverloaded) {
		t.Fatalf("want ErrNotFound only, got %v", err)
	}
	var e *policyd.Error
	if !errors.As(err, &e) || e.Reason != "POLICY_NOT_FOUND" || e.Code != codes.NotFound || e.Policy != "no-such-policy" {
		t.Fatalf("want POLICY_NOT_FOUND about no-such-policy, got %#v", e)
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("status.Code sees %v", status.Code(err))
	}

	policy, err := client.LoadPolicy(context.Background(), sbomPolicy(t, root))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Evaluate(context.Background(), &policyenginev1.EvaluateRequest{Policy: policy.GetDigest(), Material: &policyenginev1.Material{Content: []byte("not json"), Kind: policyenginev1.MaterialKind_MATERIAL_KIND_SBOM_CYCLONEDX_JSON}})
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || e.Reason != "INVALID_MATERIAL" {
		t.Fatalf("want INVALID_MATERIAL, got %v", err)
	}
}

func TestEvaluateBatch(t *testing.T) {
	client, root := daemon(t)
	ctx := context.Background()
	policy, err := client.LoadPolicy(ctx, sbomPolicy(t, root))
	if err != nil {
		t.Fatal(err)
	}
	req := &policyenginev1.EvaluateBatchRequest{
		Material: material(t, root, "fail.json"),
		Policies: []*policyenginev1.PolicyCall{{Policy: policy.GetDigest()}, {Policy: "no-such-policy"}, {Policy: policy.GetName()}},
	}
	seen := map[int]bool{}
	for outcome, err := range client.EvaluateBatch(ctx, req) {
		if err != nil {
			t.Fatal(err)
		}
		seen[outcome.Index] = true
		switch outcome.Index {
		case 0, 2:
			if outcome.Err != nil || len(outcome.Response.GetResult().GetViolations()) != 2 {
				t.Fatalf("policy %d: want 2 violations, got %v %v", outcome.Index, outcome.Response, outcome.Err)
			}
		case 1:
			if !errors.Is(outcome.Err, policyd.ErrNotFound) || outcome.Response != nil {
				t.Fatalf("policy 1: want ErrNotFound, got %v %v", outcome.Response, outcome.Err)
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("want an outcome for each of 3 policies, got %v", seen)
	}

	var refused error
	for _, err := range client.EvaluateBatch(ctx, &policyenginev1.EvaluateBatchRequest{Material: req.Material}) {
		refused = err
	}
	var e *policyd.Error
	if !errors.As(refused, &e) || e.Code != codes.InvalidArgument || e.Reason != "INVALID_REQUEST" {
		t.Fatalf("an empty batch: want INVALID_REQUEST, got %v", refused)
	}
}

func TestEvaluateOrLoadReloadsOnce(t *testing.T) {
	client, root := daemon(t)
	ctx := context.Background()
	load := sbomPolicy(t, root)
	policy, err := client.LoadPolicy(ctx, load)
	if err != nil {
		t.Fatal(err)
	}
	// A replica that lost the policy (restart, scale-out): it is loaded again and the call succeeds.
	if _, err := client.API().UnloadPolicy(ctx, &policyenginev1.UnloadPolicyRequest{Policy: policy.GetDigest()}); err != nil {
		t.Fatal(err)
	}
	res, err := client.EvaluateOrLoad(ctx, policy.GetDigest(), load, &policyenginev1.EvaluateRequest{Material: material(t, root, "pass.json")})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetPolicyDigest() != policy.GetDigest() || len(res.GetResult().GetViolations()) != 0 {
		t.Fatalf("unexpected result %v", res)
	}
	// A load request for other content is not taken for the digest asked for.
	if _, err := client.API().UnloadPolicy(ctx, &policyenginev1.UnloadPolicyRequest{Policy: policy.GetDigest()}); err != nil {
		t.Fatal(err)
	}
	other := &policyenginev1.LoadPolicyRequest{Source: &policyenginev1.LoadPolicyRequest_WasmModule{WasmModule: load.Scripts["policy.wasm"]}, Name: "other"}
	if _, err := client.EvaluateOrLoad(ctx, policy.GetDigest(), other, &policyenginev1.EvaluateRequest{Material: material(t, root, "pass.json")}); err == nil {
		t.Fatal("a load of other content must not pass for the digest")
	}
}

func TestDeadlineReachesTheDaemon(t *testing.T) {
	client, root := daemon(t)
	spin, err := os.ReadFile(filepath.Join(root, "build", "fixtures", "spin.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.LoadPolicy(context.Background(), &policyenginev1.LoadPolicyRequest{Source: &policyenginev1.LoadPolicyRequest_WasmModule{WasmModule: spin}, Name: "spin"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = client.Evaluate(ctx, &policyenginev1.EvaluateRequest{Policy: "spin", Material: &policyenginev1.Material{Content: []byte("{}"), Kind: policyenginev1.MaterialKind_MATERIAL_KIND_EVIDENCE}})
	if !errors.Is(err, policyd.ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	// The worker was freed: the daemon still answers.
	if _, err := client.API().ListPolicies(context.Background(), &policyenginev1.ListPoliciesRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestMutualTLSAndToken(t *testing.T) {
	addr, token := os.Getenv("POLICYD_TEST_SECURE_ADDR"), os.Getenv("POLICYD_TEST_TOKEN")
	ca, cert, key := os.Getenv("POLICYD_TEST_SECURE_CA"), os.Getenv("POLICYD_TEST_CLIENT_CERT"), os.Getenv("POLICYD_TEST_CLIENT_KEY")
	if addr == "" {
		t.Skip("no secured daemon: POLICYD_TEST_SECURE_* are set by test/e2e/go-client.test.ts")
	}
	// manage sends an empty LoadPolicy: INVALID_REQUEST proves the call was let through.
	call := func(manage bool, opts ...policyd.Option) error {
		client, err := policyd.Dial(addr, opts...)
		if err != nil {
			return err
		}
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if manage {
			_, err = client.LoadPolicy(ctx, &policyenginev1.LoadPolicyRequest{})
			return err
		}
		_, err = client.API().ListPolicies(ctx, &policyenginev1.ListPoliciesRequest{})
		return err
	}
	list := func(opts ...policyd.Option) error { return call(false, opts...) }
	if err := list(policyd.WithTLSFiles(ca, cert, key), policyd.WithToken(token)); err != nil {
		t.Fatalf("mTLS with the token: %v", err)
	}
	var e *policyd.Error
	if err := call(true, policyd.WithTLSFiles(ca, cert, key), policyd.WithToken(token)); !errors.As(err, &e) || e.Reason != "INVALID_REQUEST" {
		t.Fatalf("an admin token may load: want INVALID_REQUEST for an empty request, got %v", err)
	}
	// A verified client certificate alone has the evaluate role: it may list, not load.
	if err := list(policyd.WithTLSFiles(ca, cert, key)); err != nil {
		t.Fatalf("mTLS without the token: %v", err)
	}
	if err := call(true, policyd.WithTLSFiles(ca, cert, key)); !errors.As(err, &e) || e.Code != codes.PermissionDenied || e.Reason != "NOT_PERMITTED" {
		t.Fatalf("mTLS without the token: want PermissionDenied NOT_PERMITTED, got %v", err)
	}
	if err := list(policyd.WithTLSFiles(ca, cert, key), policyd.WithToken("an-unknown-token-0123456789")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("an unknown token: want Unauthenticated, got %v", err)
	}
	if err := list(policyd.WithTLSFiles(ca, "", ""), policyd.WithToken(token)); err == nil {
		t.Fatal("without a client certificate the handshake must fail")
	}
	if _, err := policyd.Dial(addr, policyd.WithTLSFiles(filepath.Join(t.TempDir(), "missing.pem"), "", "")); err == nil {
		t.Fatal("a missing CA bundle must fail Dial")
	}
}

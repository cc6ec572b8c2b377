package policy

import (
	"encoding/json"
	"testing"
)

// The output format is Chainloop's: every field present, violations never null.
func TestResultJSON(t *testing.T) {
	cases := []struct {
		name   string
		result Result
		want   string
	}{
		{"success", Success(), `{"skipped":false,"violations":[],"skip_reason":"","ignore":false}`},
		{"fail", Fail("a", "b"), `{"skipped":false,"violations":["a","b"],"skip_reason":"","ignore":false}`},
		{"skip", Skipf("not %s", "an SBOM"), `{"skipped":true,"violations":[],"skip_reason":"not an SBOM","ignore":false}`},
	}
	for _, c := range cases {
		got, err := json.Marshal(c.result)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: got %s (%v), want %s", c.name, got, err, c.want)
		}
	}
}

func TestResultState(t *testing.T) {
	r := Success()
	if !r.IsSuccess() || r.HasViolations() {
		t.Fatal("a new success must be a success without violations")
	}
	r.AddViolationf("component %q has no version", "left-pad")
	if r.IsSuccess() || !r.HasViolations() || r.Violations[0] != `component "left-pad" has no version` {
		t.Fatalf("after AddViolationf: %+v", r)
	}
	if Skip("x").IsSuccess() {
		t.Fatal("a skipped result is not a success")
	}
}

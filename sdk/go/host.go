//go:build wasip1

package policy

import (
	"encoding/json"
	"fmt"
)

// GetMaterialBytes is the material as the engine hands it to the policy.
func GetMaterialBytes() []byte {
	b := make([]byte, inputLength())
	for i := range b {
		b[i] = byte(inputLoadU8(uint64(i)))
	}
	return b
}

// GetMaterialString is the material as text.
func GetMaterialString() string { return string(GetMaterialBytes()) }

// GetMaterialJSON decodes the material into v.
func GetMaterialJSON(v any) error {
	if err := json.Unmarshal(GetMaterialBytes(), v); err != nil {
		return fmt.Errorf("failed to unmarshal material: %w", err)
	}
	return nil
}

// GetArgs is the policy's `with:` arguments; values that are not strings are rendered as Go prints
// them (a list arrives as "[a b]"), as in Chainloop's SDK.
func GetArgs() (map[string]string, error) {
	key := store([]byte("args"))
	raw := load(configGet(key))
	free(key)
	args := map[string]string{}
	if raw == nil {
		return args, nil
	}
	var values map[string]any
	if err := json.Unmarshal(raw, &values); err != nil {
		return nil, fmt.Errorf("failed to parse args: %w", err)
	}
	for k, v := range values {
		if s, ok := v.(string); ok {
			args[k] = s
		} else {
			args[k] = fmt.Sprintf("%v", v)
		}
	}
	return args, nil
}

// GetArgString is one argument ("" when missing).
func GetArgString(key string) string {
	args, _ := GetArgs()
	return args[key]
}

// GetArgStringDefault is one argument, or def when it is missing or empty.
func GetArgStringDefault(key, def string) string {
	if v := GetArgString(key); v != "" {
		return v
	}
	return def
}

// OutputResult writes the result; the last one written is the policy's.
func OutputResult(r Result) {
	if r.Violations == nil {
		r.Violations = []string{}
	}
	b, _ := json.Marshal(r)
	at := store(b)
	outputSet(at, uint64(len(b)))
}

func log(write func(uint64), format string, args ...any) {
	at := store([]byte(fmt.Sprintf(format, args...)))
	write(at)
	free(at)
}

// LogInfo writes a log line at info level (the engine shows it with the evaluation).
func LogInfo(format string, args ...any) { log(logInfo, format, args...) }

// LogDebug writes a log line at debug level.
func LogDebug(format string, args ...any) { log(logDebug, format, args...) }

// LogWarn writes a log line at warn level.
func LogWarn(format string, args ...any) { log(logWarn, format, args...) }

// LogError writes a log line at error level.
func LogError(format string, args ...any) { log(logError, format, args...) }

// LogTrace writes a log line at trace level.
func LogTrace(format string, args ...any) { log(logTrace, format, args...) }

// HTTPGet fetches url (its host must be allowed by the engine); a status other than 200 is an error.
func HTTPGet(url string) ([]byte, error) {
	req, _ := json.Marshal(map[string]any{"method": "GET", "url": url, "headers": map[string]string{}})
	at := store(req)
	body := load(httpRequest(at, 0))
	free(at)
	if status := httpStatusCode(); status != 200 {
		return nil, fmt.Errorf("%w with status %d", ErrHTTP, status)
	}
	return body, nil
}

// HTTPGetString is HTTPGet as text.
func HTTPGetString(url string) (string, error) {
	b, err := HTTPGet(url)
	return string(b), err
}

// HTTPGetJSON is HTTPGet decoded into v.
func HTTPGetJSON(url string, v any) error {
	b, err := HTTPGet(url)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// DiscoverReference is one artifact related to the discovered one.
type DiscoverReference struct {
	Digest   string            `json:"digest"`
	Kind     string            `json:"kind"`
	Metadata map[string]string `json:"metadata"`
}

// DiscoverResult is what the control plane knows of an artifact and what refers to it.
type DiscoverResult struct {
	Digest     string              `json:"digest"`
	Kind       string              `json:"kind"`
	References []DiscoverReference `json:"references"`
}

// Discover asks the control plane about an artifact by digest (and kind, when not empty).
func Discover(digest, kind string) (*DiscoverResult, error) {
	d := store([]byte(digest))
	var k uint64
	if kind != "" {
		k = store([]byte(kind))
	}
	offset := chainloopDiscover(d, k)
	if offset == 0 {
		return nil, fmt.Errorf("discover returned error (check if gRPC connection is configured)")
	}
	var result DiscoverResult
	if err := json.Unmarshal(load(offset), &result); err != nil {
		return nil, fmt.Errorf("failed to parse discover result: %w", err)
	}
	return &result, nil
}

// DiscoverByDigest is Discover without a kind.
func DiscoverByDigest(digest string) (*DiscoverResult, error) { return Discover(digest, "") }

package policyd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	policyenginev1 "github.com/wasm-policyd/wasm-policyd/clients/go/policyengine/v1"
)

// Client calls one daemon (or a load-balanced set of replicas behind one address).
type Client struct {
	conn *grpc.ClientConn
	api  policyenginev1.PolicyEngineServiceClient
}

type options struct {
	tls      *tls.Config
	token    string
	dialOpts []grpc.DialOption
	err      error
}

// An Option configures Dial.
type Option func(*options)

// WithTLS speaks TLS to the daemon; config.ServerName and RootCAs as for any TLS client. Without it the
// connection is plaintext, which suits a sidecar's unix socket or loopback.
func WithTLS(config *tls.Config) Option {
	return func(o *options) { o.tls = config }
}

// WithTLSFiles speaks TLS, trusting the CA bundle in caFile; with certFile and keyFile (both or
// neither) it also presents a client certificate, for a daemon that requires mTLS.
func WithTLSFiles(caFile, certFile, keyFile string) Option {
	return func(o *options) {
		config := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				o.err = fmt.Errorf("policyd: reading the CA bundle: %w", err)
				return
			}
			config.RootCAs = x509.NewCertPool()
			if !config.RootCAs.AppendCertsFromPEM(pem) {
				o.err = fmt.Errorf("policyd: %s holds no PEM certificate", caFile)
				return
			}
		}
		if certFile != "" || keyFile != "" {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				o.err = fmt.Errorf("policyd: loading the client certificate: %w", err)
				return
			}
			config.Certificates = []tls.Certificate{pair}
		}
		o.tls = config
	}
}

// WithToken sends a bearer token with every call: an admin token (load, unload, evaluate) or an evaluate token.
func WithToken(token string) Option {
	return func(o *options) { o.token = token }
}

// WithDialOptions adds grpc-go dial options (interceptors, keepalive, a custom resolver, ...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// Dial connects to a daemon at "unix:///path/to/socket" or "host:port". Like grpc.NewClient it does
// not wait for the connection: the first call does.
func Dial(target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	transport := insecure.NewCredentials()
	if o.tls != nil {
		transport = credentials.NewTLS(o.tls)
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(transport)}, o.dialOpts...)
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: o.tls != nil}))
	}
	if !strings.Contains(target, "://") {
		target = "dns:///" + target
	}
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("policyd: %w", err)
	}
	return &Client{conn: conn, api: policyenginev1.NewPolicyEngineServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// API is the generated client, for calls this package does not wrap.
func (c *Client) API() policyenginev1.PolicyEngineServiceClient { return c.api }

// LoadPolicy loads (or finds already loaded) a policy and returns what the daemon knows of it,
// its digest included.
func (c *Client) LoadPolicy(ctx context.Context, req *policyenginev1.LoadPolicyRequest) (*policyenginev1.Policy, error) {
	res, err := c.api.LoadPolicy(ctx, req)
	if err != nil {
		return nil, fromStatus(err)
	}
	return res.GetPolicy(), nil
}

// Evaluate evaluates a material against a loaded policy, named by name or digest. A policy that ran
// and found violations is a result, not an error.
func (c *Client) Evaluate(ctx context.Context, req *policyenginev1.EvaluateRequest) (*policyenginev1.EvaluateResponse, error) {
	res, err := c.api.Evaluate(ctx, req)
	if err != nil {
		return nil, fromStatus(err)
	}
	return res, nil
}

// BatchOutcome is one policy's outcome in an EvaluateBatch: Index is its position in the request's
// Policies, and either Response is set or Err is the *Error Evaluate would have returned for it.
type BatchOutcome struct {
	Index    int
	Response *policyenginev1.EvaluateResponse
	Err      error
}

// EvaluateBatch evaluates one material against several policies, as Chainloop applies a contract's
// policies to a material (the daemon builds the policy input once). Outcomes arrive as each policy
// finishes, in any order. The sequence yields a non-nil error, and ends, when the call itself fails;
// leaving the loop early cancels the policies not yet finished.
func (c *Client) EvaluateBatch(ctx context.Context, req *policyenginev1.EvaluateBatchRequest) iter.Seq2[BatchOutcome, error] {
	return func(yield func(BatchOutcome, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.api.EvaluateBatch(ctx, req)
		if err != nil {
			yield(BatchOutcome{}, fromStatus(err))
			return
		}
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(BatchOutcome{}, fromStatus(err))
				return
			}
			outcome := BatchOutcome{Index: int(m.GetIndex()), Response: m.GetResponse()}
			if s := m.GetError(); s != nil {
				outcome.Err = fromStatus(status.ErrorProto(s))
			}
			if !yield(outcome, nil) {
				return
			}
		}
	}
}

// EvaluateOrLoad evaluates by digest on replicas that may not have the policy: req.Policy is set to
// policy's digest, and when the daemon answers NOT_FOUND the policy is loaded with load and the
// evaluation retried once. This is the scale-out contract of stateless replicas.
func (c *Client) EvaluateOrLoad(ctx context.Context, digest string, load *policyenginev1.LoadPolicyRequest, req *policyenginev1.EvaluateRequest) (*policyenginev1.EvaluateResponse, error) {
	req.Policy = digest
	res, err := c.Evaluate(ctx, req)
	if !errors.Is(err, ErrNotFound) {
		return res, err
	}
	loaded, err := c.LoadPolicy(ctx, load)
	if err != nil {
		return nil, err
	}
	if loaded.GetDigest() != digest {
		return nil, fmt.Errorf("policyd: the load request gave a policy with digest %s, not %s", loaded.GetDigest(), digest)
	}
	return c.Evaluate(ctx, req)
}

// bearer sends "authorization: Bearer <token>". The daemon itself refuses plaintext on non-loopback
// addresses, so plaintext here means a unix socket or loopback.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

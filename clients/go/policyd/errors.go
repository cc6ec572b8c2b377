package policyd

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of the daemon's errors.
const ErrorDomain = "policyengine.v1"

// Sentinels for errors.Is: an *Error matches the one its code stands for.
var (
	// ErrNotFound: the policy (name or digest) is not loaded on this daemon.
	ErrNotFound = errors.New("policyd: policy not found")
	// ErrOverloaded: the daemon refused the call to protect the calls it has; retry with backoff.
	ErrOverloaded = errors.New("policyd: daemon overloaded")
	// ErrTimeout: the deadline passed, on the caller's side or in the policy.
	ErrTimeout = errors.New("policyd: deadline exceeded")
)

// Error is a failed call, with the daemon's reason (google.rpc.ErrorInfo) when it sent one. Get it with
// errors.As; the Message is Chainloop's user message and hint where Chainloop has one.
type Error struct {
	Code    codes.Code
	Reason  string // e.g. POLICY_NOT_FOUND, POLICY_PANIC, OVERLOADED, INVALID_MATERIAL
	Policy  string // the policy the error is about, when there is one
	Message string
	// Metadata is the rest of ErrorInfo's metadata.
	Metadata map[string]string
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("policyd: %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("policyd: %s (%s): %s", e.Code, e.Reason, e.Message)
}

// Is matches ErrNotFound, ErrOverloaded and ErrTimeout by code and reason.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == codes.NotFound
	case ErrOverloaded:
		return e.Reason == "OVERLOADED" || (e.Reason == "" && e.Code == codes.ResourceExhausted)
	case ErrTimeout:
		return e.Code == codes.DeadlineExceeded
	}
	return false
}

// GRPCStatus lets status.FromError and status.Code see the original status.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Message)
}

// fromStatus turns what grpc-go returns into an *Error; a context error stays wrapped so
// errors.Is(err, context.Canceled) keeps working.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message()}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			e.Reason = info.GetReason()
			e.Metadata = info.GetMetadata()
			e.Policy = e.Metadata["policy"]
		}
	}
	if st.Code() == codes.Canceled {
		return fmt.Errorf("%w: %w", e, context.Canceled)
	}
	return e
}

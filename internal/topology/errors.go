package topology

import "fmt"

// Kind classifies a rejected change; the API maps it to an HTTP status.
type Kind uint8

// Kinds of business errors.
const (
	KindInvalid  Kind = iota + 1 // the request is malformed or out of range
	KindNotFound                 // a referenced object does not exist
	KindConflict                 // the request collides with the state
	// KindPrecondition: the request's precondition (If-Match:
	// revision_number=N) no longer holds.
	KindPrecondition
)

// Error is a business error: the change was rejected and nothing changed.
// Type is the Neutron error type (IpAddressInUse, NetworkNotFound, ...).
type Error struct {
	Kind    Kind   `json:"kind"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

func invalid(format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Type: "InvalidInput", Message: "Invalid input for operation: " + fmt.Sprintf(format, args...)}
}

func notFound(typ, format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Type: typ, Message: fmt.Sprintf(format, args...)}
}

func conflict(typ, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Type: typ, Message: fmt.Sprintf(format, args...)}
}

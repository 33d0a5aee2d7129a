package dnsmsg

import "errors"

// Every error ParseQuery returns wraps one of the first three; the
// caller's answer to all of them is the same — let the query go on
// unchanged — but they say why.
var (
	// ErrNotQuery: the frame is not an Ethernet/IPv4/UDP datagram to
	// port 53 carrying a DNS query (QR=0), e.g. IPv6, TCP, a fragment,
	// or a response.
	ErrNotQuery = errors.New("dnsmsg: not an IPv4/UDP DNS query")
	// ErrMalformed: a header, length, checksum or name is wrong or
	// truncated, or a compression pointer points out of range or loops.
	ErrMalformed = errors.New("dnsmsg: malformed")
	// ErrUnsupported: a well-formed query this codec does not answer:
	// an opcode other than QUERY, other than one question, records other
	// than one OPT, EDNS version other than 0, or a name whose labels
	// cannot be written in dotted form.
	ErrUnsupported = errors.New("dnsmsg: unsupported query")

	// ErrBadAnswer: Reply's Answer does not fit the question (records of
	// another type, records with a non-zero RCode, an invalid name).
	ErrBadAnswer = errors.New("dnsmsg: answer does not fit the query")
	// ErrTooLarge: the reply exceeds the client's UDP payload size
	// (512 bytes without EDNS0).
	ErrTooLarge = errors.New("dnsmsg: reply larger than the client accepts")
)

package dhcpv4

import "errors"

var (
	// ErrNotDHCP is returned by ParseRequest for a frame that is not a
	// client's DHCPv4 message: another EtherType or protocol, other UDP
	// ports, a BOOTREPLY, no magic cookie, or a server's message type.
	ErrNotDHCP = errors.New("dhcpv4: not a DHCPv4 client message")
	// ErrTruncated is returned when a header, a length field or an
	// option runs past the end of the data.
	ErrTruncated = errors.New("dhcpv4: truncated")
	// ErrMalformed is returned for a field that cannot be valid: a bad
	// IPv4 header checksum, an option of the wrong length, a fragment.
	ErrMalformed = errors.New("dhcpv4: malformed")
	// ErrUnsupported is returned for valid messages this codec does not
	// handle: option overload (52), a hardware type other than Ethernet,
	// a relayed request (giaddr set).
	ErrUnsupported = errors.New("dhcpv4: unsupported")
	// ErrInvalidOption is returned by Options.Encode and Reply for an
	// option that cannot be encoded, and by DecodeOptions for bytes that
	// Options.Encode would not have produced.
	ErrInvalidOption = errors.New("dhcpv4: invalid option")
	// ErrTooLarge is returned by Reply when the answer would exceed what
	// the client said it accepts (option 57, at least 576 bytes).
	ErrTooLarge = errors.New("dhcpv4: reply larger than the client accepts")
)

// Package dnsmsg is a pure DNS codec for answering VMs' queries from
// OpenFlow punts: ParseQuery takes the Ethernet frame the switch punted
// (IPv4/UDP to port 53) and Reply builds the whole Ethernet frame that
// answers it. No I/O, no clock, no globals but sentinel errors.
//
// The reply is authoritative (AA=1) and offers recursion (RA=1): the
// address the VM sent to is its configured resolver, which answers
// every other name by passing the query on to a recursive resolver, so
// RA=1 tells the truth about that address and keeps stub resolvers and
// dig from warning that recursion is unavailable.
package dnsmsg

import (
	"net"
	"net/netip"
)

// Record types and the one class this codec writes.
const (
	TypeA     uint16 = 1
	TypeNS    uint16 = 2
	TypeCNAME uint16 = 5
	TypeSOA   uint16 = 6
	TypePTR   uint16 = 12
	TypeMX    uint16 = 15
	TypeTXT   uint16 = 16
	TypeAAAA  uint16 = 28
	TypeSRV   uint16 = 33
	TypeOPT   uint16 = 41
	TypeANY   uint16 = 255

	ClassINET uint16 = 1
)

// Response codes.
const (
	RCodeSuccess       uint8 = 0 // NOERROR; with no records, NODATA
	RCodeServerFailure uint8 = 2 // SERVFAIL
	RCodeNameError     uint8 = 3 // NXDOMAIN
	RCodeRefused       uint8 = 5 // REFUSED
)

// EDNSPayloadSize is the UDP payload size a reply's OPT record offers
// (the DNS flag day 2020 value).
const EDNSPayloadSize = 1232

// Question is a query's one question.
type Question struct {
	// Name is lower-cased ASCII without the trailing dot; the root is "".
	Name  string
	Type  uint16
	Class uint16
}

// Query is a DNS query punted by the switch, with the addressing needed
// to answer it. ParseQuery copies everything it keeps, so a Query does
// not alias the frame.
type Query struct {
	ID       uint16
	RD       bool
	Question Question
	// OPT: the query carried an EDNS0 OPT record (version 0); the reply
	// then carries one too, offering EDNSPayloadSize.
	OPT bool
	// UDPSize is the payload size the query's OPT offers (0 without OPT).
	UDPSize uint16

	EthSrc, EthDst net.HardwareAddr
	// Tagged: the frame carried one 802.1Q tag, TCI; the reply carries
	// the same tag.
	Tagged bool
	TCI    uint16

	IPSrc, IPDst     netip.Addr
	SrcPort, DstPort uint16

	// Raw is the DNS message. Reply echoes the question from it as sent
	// (letter case kept, for resolvers that use 0x20 randomisation);
	// a Query built by hand may leave it nil, and then Reply writes
	// Question.Name.
	Raw []byte
}

// Answer is what Reply answers a query with. Records must fit the
// question's type: addresses for A (IPv4) or AAAA (IPv6), names for
// PTR; for TypeANY both may be given. NODATA is RCode 0 with no records;
// NXDOMAIN is RCodeNameError with no records.
type Answer struct {
	Addrs []netip.Addr
	// PTR holds domain names, with or without the trailing dot.
	PTR   []string
	TTL   uint32
	RCode uint8
}

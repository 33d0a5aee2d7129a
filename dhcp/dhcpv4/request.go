package dhcpv4

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// Request is a client's DHCPv4 message as the answerer needs it. Its
// slices are its own: they do not alias the parsed frame.
type Request struct {
	// Type is option 53; one a client sends: MsgDiscover, MsgRequest,
	// MsgDecline, MsgRelease or MsgInform.
	Type  MessageType
	XID   uint32
	Flags uint16 // bit 0x8000 asks for a broadcast answer
	// CIAddr is the client's current address (BOUND, RENEWING,
	// REBINDING, INFORM), or 0.0.0.0.
	CIAddr netip.Addr
	// GIAddr is the relay agent's address, or 0.0.0.0.
	GIAddr netip.Addr
	// CHAddr is the client's hardware address: htype 1, hlen 6 only.
	CHAddr net.HardwareAddr

	RequestedIP netip.Addr // option 50, invalid if absent
	ServerID    netip.Addr // option 54, invalid if absent
	ParamList   []byte     // option 55, nil if absent
	ClientID    []byte     // option 61, nil if absent
	HostName    string     // option 12, empty if absent
	// MaxMessage is option 57, the largest IP datagram the client
	// accepts; 0 if absent. Reply never builds one above
	// max(576, MaxMessage).
	MaxMessage uint16

	// The frame's own addressing, needed to answer.
	EthSrc net.HardwareAddr
	// Tagged is set when the frame carried one 802.1Q tag; TCI is its
	// tag control information (PCP, DEI, VID). Reply tags its answer
	// the same way.
	Tagged bool
	TCI    uint16
	IPSrc  netip.Addr
	IPDst  netip.Addr
}

// Broadcast reports whether the client set the broadcast flag.
func (r Request) Broadcast() bool { return r.Flags&flagBroadcast != 0 }

// Header lengths.
const (
	ethLen  = 14
	vlanLen = 4
	ipv4Len = 20
	udpLen  = 8

	etherTypeIPv4 = 0x0800
	etherTypeVLAN = 0x8100
	protoUDP      = 17
)

// ParseRequest parses a client's DHCPv4 message out of an Ethernet frame:
// Ethernet II with at most one 802.1Q tag, IPv4 with any header length
// (header checksum checked, fragments refused), UDP from port 68 to 67
// (its checksum is not checked: a frame punted from a local VM may carry
// a partial checksum left for offload), then a BOOTREQUEST with the magic
// cookie and a client's message type. Trailing bytes beyond the IP total
// length (Ethernet padding) are ignored. An option repeated is
// concatenated (RFC 3396); pad options are skipped; options end at the
// end option or at the end of the message; an option whose length runs
// past the end is an error, as is option overload (52), which no client
// sends to a server that did not offer it.
func ParseRequest(frame []byte) (Request, error) {
	var r Request
	b := frame
	if len(b) < ethLen {
		return r, fmt.Errorf("%w: Ethernet header (%d bytes)", ErrTruncated, len(b))
	}
	r.EthSrc = net.HardwareAddr(clone(b[6:12]))
	etherType := binary.BigEndian.Uint16(b[12:14])
	b = b[ethLen:]
	if etherType == etherTypeVLAN {
		if len(b) < vlanLen {
			return Request{}, fmt.Errorf("%w: 802.1Q tag", ErrTruncated)
		}
		r.Tagged = true
		r.TCI = binary.BigEndian.Uint16(b[0:2])
		etherType = binary.BigEndian.Uint16(b[2:4])
		b = b[vlanLen:]
	}
	if etherType != etherTypeIPv4 {
		return Request{}, fmt.Errorf("%w: EtherType %#04x", ErrNotDHCP, etherType)
	}

	// IPv4.
	if len(b) < ipv4Len {
		return Request{}, fmt.Errorf("%w: IPv4 header (%d bytes)", ErrTruncated, len(b))
	}
	if v := b[0] >> 4; v != 4 {
		return Request{}, fmt.Errorf("%w: IP version %d", ErrNotDHCP, v)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < ipv4Len {
		return Request{}, fmt.Errorf("%w: IPv4 header length %d", ErrMalformed, ihl)
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if len(b) < ihl || len(b) < total {
		return Request{}, fmt.Errorf("%w: IPv4 packet (total length %d, header %d, have %d)", ErrTruncated, total, ihl, len(b))
	}
	if total < ihl {
		return Request{}, fmt.Errorf("%w: IPv4 total length %d < header length %d", ErrMalformed, total, ihl)
	}
	if frag := binary.BigEndian.Uint16(b[6:8]); frag&0x3fff != 0 {
		return Request{}, fmt.Errorf("%w: IPv4 fragment", ErrMalformed)
	}
	if b[9] != protoUDP {
		return Request{}, fmt.Errorf("%w: IP protocol %d", ErrNotDHCP, b[9])
	}
	if checksum(b[:ihl], 0) != 0 {
		return Request{}, fmt.Errorf("%w: IPv4 header checksum", ErrMalformed)
	}
	r.IPSrc = netip.AddrFrom4([4]byte(b[12:16]))
	r.IPDst = netip.AddrFrom4([4]byte(b[16:20]))
	b = b[ihl:total]

	// UDP.
	if len(b) < udpLen {
		return Request{}, fmt.Errorf("%w: UDP header", ErrTruncated)
	}
	sport, dport := binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	if sport != portClient || dport != portServer {
		return Request{}, fmt.Errorf("%w: UDP %d→%d", ErrNotDHCP, sport, dport)
	}
	ulen := int(binary.BigEndian.Uint16(b[4:6]))
	if ulen < udpLen {
		return Request{}, fmt.Errorf("%w: UDP length %d", ErrMalformed, ulen)
	}
	if ulen > len(b) {
		return Request{}, fmt.Errorf("%w: UDP length %d, IP payload %d", ErrTruncated, ulen, len(b))
	}
	b = b[udpLen:ulen]

	if err := r.parseBOOTP(b); err != nil {
		return Request{}, err
	}
	return r, nil
}

// parseBOOTP fills r from a BOOTP message.
func (r *Request) parseBOOTP(b []byte) error {
	if len(b) < bootpFixed+len(magicCookie) {
		return fmt.Errorf("%w: BOOTP message (%d bytes)", ErrTruncated, len(b))
	}
	if b[0] != bootRequest {
		return fmt.Errorf("%w: BOOTP op %d", ErrNotDHCP, b[0])
	}
	if [4]byte(b[bootpFixed:bootpFixed+4]) != magicCookie {
		return fmt.Errorf("%w: no magic cookie", ErrNotDHCP)
	}
	if b[1] != htypeEther || b[2] != 6 {
		return fmt.Errorf("%w: hardware type %d length %d (Ethernet only)", ErrUnsupported, b[1], b[2])
	}
	r.XID = binary.BigEndian.Uint32(b[4:8])
	r.Flags = binary.BigEndian.Uint16(b[10:12])
	r.CIAddr = netip.AddrFrom4([4]byte(b[12:16]))
	r.GIAddr = netip.AddrFrom4([4]byte(b[24:28]))
	r.CHAddr = net.HardwareAddr(clone(b[28:34]))

	// Options: a value repeated is concatenated (RFC 3396).
	var vals [256][]byte
	var seen [256]bool
	opts := b[bootpFixed+4:]
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == optPad {
			i++
			continue
		}
		if code == optEnd {
			break
		}
		if i+2 > len(opts) || i+2+int(opts[i+1]) > len(opts) {
			return fmt.Errorf("%w: option %d", ErrTruncated, code)
		}
		v := opts[i+2 : i+2+int(opts[i+1])]
		vals[code] = append(vals[code], v...)
		seen[code] = true
		i += 2 + len(v)
	}
	if seen[optOverload] {
		return fmt.Errorf("%w: option overload (52)", ErrUnsupported)
	}
	if !seen[optMessageType] {
		return fmt.Errorf("%w: no message type (option 53): BOOTP, not DHCP", ErrNotDHCP)
	}
	if len(vals[optMessageType]) != 1 {
		return fmt.Errorf("%w: option 53 length %d", ErrMalformed, len(vals[optMessageType]))
	}
	r.Type = MessageType(vals[optMessageType][0])
	if !r.Type.fromClient() {
		return fmt.Errorf("%w: %v", ErrNotDHCP, r.Type)
	}
	var err error
	if r.RequestedIP, err = addrOption(vals[:], seen[:], optRequestedIP); err != nil {
		return err
	}
	if r.ServerID, err = addrOption(vals[:], seen[:], optServerID); err != nil {
		return err
	}
	if seen[optMaxMessage] {
		if len(vals[optMaxMessage]) != 2 {
			return fmt.Errorf("%w: option 57 length %d", ErrMalformed, len(vals[optMaxMessage]))
		}
		r.MaxMessage = binary.BigEndian.Uint16(vals[optMaxMessage])
	}
	if seen[optParamList] {
		r.ParamList = clone(vals[optParamList])
	}
	if seen[optClientID] {
		r.ClientID = clone(vals[optClientID])
	}
	r.HostName = string(vals[optHostName])
	return nil
}

// addrOption returns option code as an IPv4 address, invalid if absent.
func addrOption(vals [][]byte, seen []bool, code byte) (netip.Addr, error) {
	if !seen[code] {
		return netip.Addr{}, nil
	}
	if len(vals[code]) != 4 {
		return netip.Addr{}, fmt.Errorf("%w: option %d length %d", ErrMalformed, code, len(vals[code]))
	}
	return netip.AddrFrom4([4]byte(vals[code])), nil
}

// clone copies b; never nil.
func clone(b []byte) []byte { return append([]byte{}, b...) }

// checksum is the Internet checksum (RFC 1071) of b, folded into sum;
// over data that carries its own checksum it is 0 when that is correct.
func checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

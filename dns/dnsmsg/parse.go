package dnsmsg

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

const (
	ethHeaderLen  = 14
	vlanTagLen    = 4
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	dnsHeaderLen  = 12

	etherTypeIPv4 = 0x0800
	etherTypeVLAN = 0x8100
	protoUDP      = 17
	dnsPort       = 53
)

// ParseQuery decodes a punted frame: Ethernet (at most one 802.1Q tag),
// IPv4 (header checksum verified; not a fragment), UDP to port 53, and
// a DNS query with QR=0, opcode QUERY, exactly one question, no answer
// or authority records and at most one additional record, an EDNS0 OPT.
// The UDP checksum is not verified: a guest with checksum offload hands
// the switch a partial one.
func ParseQuery(frame []byte) (Query, error) {
	var q Query
	if len(frame) < ethHeaderLen {
		return q, fmt.Errorf("%w: %d-byte frame is shorter than an Ethernet header", ErrNotQuery, len(frame))
	}
	dst, src := frame[0:6], frame[6:12]
	etherType := binary.BigEndian.Uint16(frame[12:14])
	p := frame[ethHeaderLen:]
	if etherType == etherTypeVLAN {
		if len(p) < vlanTagLen {
			return q, fmt.Errorf("%w: truncated 802.1Q tag", ErrMalformed)
		}
		q.Tagged, q.TCI = true, binary.BigEndian.Uint16(p[0:2])
		etherType = binary.BigEndian.Uint16(p[2:4])
		p = p[vlanTagLen:]
	}
	if etherType != etherTypeIPv4 {
		return q, fmt.Errorf("%w: ethertype %#04x", ErrNotQuery, etherType)
	}
	if dst[0]&1 != 0 {
		return q, fmt.Errorf("%w: sent to group MAC %s", ErrUnsupported, net.HardwareAddr(dst))
	}

	// IPv4.
	if len(p) < ipv4HeaderLen {
		return q, fmt.Errorf("%w: truncated IPv4 header", ErrMalformed)
	}
	if p[0]>>4 != 4 {
		return q, fmt.Errorf("%w: IP version %d under ethertype IPv4", ErrMalformed, p[0]>>4)
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if ihl < ipv4HeaderLen || total < ihl || total > len(p) {
		return q, fmt.Errorf("%w: IPv4 header length %d, total length %d, %d bytes present", ErrMalformed, ihl, total, len(p))
	}
	if ^checksum(0, p[:ihl]) != 0 {
		return q, fmt.Errorf("%w: bad IPv4 header checksum", ErrMalformed)
	}
	if frag := binary.BigEndian.Uint16(p[6:8]); frag&0x3fff != 0 {
		return q, fmt.Errorf("%w: IPv4 fragment", ErrNotQuery)
	}
	if p[9] != protoUDP {
		return q, fmt.Errorf("%w: IP protocol %d", ErrNotQuery, p[9])
	}
	ipSrc := netip.AddrFrom4([4]byte(p[12:16]))
	ipDst := netip.AddrFrom4([4]byte(p[16:20]))
	bcast := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	if ipDst.IsMulticast() || ipDst == bcast || ipDst.IsUnspecified() {
		return q, fmt.Errorf("%w: sent to %s", ErrUnsupported, ipDst)
	}
	if ipSrc.IsMulticast() || ipSrc == bcast || ipSrc.IsUnspecified() {
		return q, fmt.Errorf("%w: sent from %s", ErrUnsupported, ipSrc)
	}
	p = p[ihl:total] // drops Ethernet padding

	// UDP.
	if len(p) < udpHeaderLen {
		return q, fmt.Errorf("%w: truncated UDP header", ErrMalformed)
	}
	srcPort := binary.BigEndian.Uint16(p[0:2])
	dstPort := binary.BigEndian.Uint16(p[2:4])
	if dstPort != dnsPort {
		return q, fmt.Errorf("%w: UDP port %d", ErrNotQuery, dstPort)
	}
	ulen := int(binary.BigEndian.Uint16(p[4:6]))
	if ulen < udpHeaderLen || ulen > len(p) {
		return q, fmt.Errorf("%w: UDP length %d, %d bytes present", ErrMalformed, ulen, len(p))
	}
	msg := p[udpHeaderLen:ulen]

	if err := parseMessage(&q, msg); err != nil {
		return Query{}, err
	}
	q.EthDst = append(net.HardwareAddr(nil), dst...)
	q.EthSrc = append(net.HardwareAddr(nil), src...)
	q.IPSrc, q.IPDst = ipSrc, ipDst
	q.SrcPort, q.DstPort = srcPort, dstPort
	q.Raw = append([]byte(nil), msg...)
	return q, nil
}

// parseMessage decodes the DNS message of a query into q.
func parseMessage(q *Query, msg []byte) error {
	if len(msg) < dnsHeaderLen {
		return fmt.Errorf("%w: %d-byte DNS message is shorter than its header", ErrMalformed, len(msg))
	}
	flags := binary.BigEndian.Uint16(msg[2:4])
	if flags&flagQR != 0 {
		return fmt.Errorf("%w: DNS response (QR=1) sent to port 53", ErrNotQuery)
	}
	if op := (flags >> 11) & 0xf; op != 0 {
		return fmt.Errorf("%w: opcode %d", ErrUnsupported, op)
	}
	qd := binary.BigEndian.Uint16(msg[4:6])
	an := binary.BigEndian.Uint16(msg[6:8])
	ns := binary.BigEndian.Uint16(msg[8:10])
	ar := binary.BigEndian.Uint16(msg[10:12])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return fmt.Errorf("%w: %d questions, %d answers, %d authority, %d additional records", ErrUnsupported, qd, an, ns, ar)
	}
	q.ID = binary.BigEndian.Uint16(msg[0:2])
	q.RD = flags&flagRD != 0

	wire, off, err := readName(msg, dnsHeaderLen)
	if err != nil {
		return fmt.Errorf("question: %w", err)
	}
	name, err := dotted(wire)
	if err != nil {
		return fmt.Errorf("question: %w", err)
	}
	if len(msg) < off+4 {
		return fmt.Errorf("%w: truncated question", ErrMalformed)
	}
	q.Question = Question{
		Name:  name,
		Type:  binary.BigEndian.Uint16(msg[off : off+2]),
		Class: binary.BigEndian.Uint16(msg[off+2 : off+4]),
	}
	off += 4

	if ar == 1 {
		owner, next, err := readName(msg, off)
		if err != nil {
			return fmt.Errorf("additional record: %w", err)
		}
		if len(msg) < next+10 {
			return fmt.Errorf("%w: truncated additional record", ErrMalformed)
		}
		typ := binary.BigEndian.Uint16(msg[next : next+2])
		class := binary.BigEndian.Uint16(msg[next+2 : next+4])
		ttl := binary.BigEndian.Uint32(msg[next+4 : next+8])
		rdlen := int(binary.BigEndian.Uint16(msg[next+8 : next+10]))
		next += 10
		if len(msg) < next+rdlen {
			return fmt.Errorf("%w: truncated additional record data", ErrMalformed)
		}
		if typ != TypeOPT {
			return fmt.Errorf("%w: additional record of type %d", ErrUnsupported, typ)
		}
		if len(owner) != 1 {
			return fmt.Errorf("%w: OPT record not owned by the root", ErrMalformed)
		}
		if v := uint8(ttl >> 16); v != 0 {
			return fmt.Errorf("%w: EDNS version %d", ErrUnsupported, v)
		}
		if err := checkOptions(msg[next : next+rdlen]); err != nil {
			return err
		}
		q.OPT, q.UDPSize = true, class
		off = next + rdlen
	}
	if off != len(msg) {
		return fmt.Errorf("%w: %d bytes after the last record", ErrMalformed, len(msg)-off)
	}
	return nil
}

// checkOptions checks that an OPT record's data is a whole sequence of
// options (code, length, data).
func checkOptions(b []byte) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: truncated EDNS option", ErrMalformed)
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if len(b) < 4+n {
			return fmt.Errorf("%w: truncated EDNS option data", ErrMalformed)
		}
		b = b[4+n:]
	}
	return nil
}

// DNS header flag bits.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
)
